//! Round trip: f32 data → GgufWriter (quantise) → bytes → GgufFile → tensor_f32, for every type
//! the crate quantises, against per-element error bounds derived from the input alone and a
//! relative-RMS threshold per type. A further test shows the bounds reject plausible layout bugs.

mod common;

use gguf::{quantize, Array, GgmlType, GgufFile, GgufWriter, Value};
use half::{bf16, f16};

/// f16 values are normal down to 2^-14; below, spacing is 2^-24. Slack for scales there.
const F16_TINY: f32 = 6.0e-8;
/// Relative spacing of f16 (10-bit mantissa): rounding a scale up moves it by at most this.
const F16_ULP: f32 = 1.0 / 1024.0;

/// The per-element error bound of `dtype` for input `x` (one block's worth at a time).
fn bounds(dtype: GgmlType, x: &[f32]) -> Vec<f32> {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let tiny = 1e-6 * amax + 1e-30;
    let f16_err = |d: f32| (d - f16::from_f32(d).to_f32()).abs();
    match dtype {
        // ggml: d = amax/127, q = round(x/d), x̂ = q·f16(d).
        GgmlType::Q8_0 => {
            let d = amax / 127.0;
            vec![d / 2.0 + 127.0 * f16_err(d) + tiny; x.len()]
        }
        // ggml: d = x*/−8 (x* the signed max-magnitude value); q − 8 ∈ −8..=7, so values with
        // x/d > 7.5 (opposite sign to x*, near its magnitude) are clipped to 7·d.
        GgmlType::Q4_0 => {
            let max = x.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
            let d = max / -8.0;
            x.iter()
                .map(|&v| {
                    let t = if d != 0.0 { v / d } else { 0.0 };
                    d.abs() * (t - 7.0).max(0.5) + 8.0 * f16_err(d) + tiny
                })
                .collect()
        }
        // ggml: d = (max − min)/15, x̂ = q·f16(d) + f16(min); no clipping.
        GgmlType::Q4_1 => {
            let (lo, hi) = x.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            let d = (hi - lo) / 15.0;
            vec![d / 2.0 + 15.0 * f16_err(d) + f16_err(lo) + tiny; x.len()]
        }
        // This crate's quantiser (see gguf::quant::kquants): |err| ≤ (step_j + d)/2 where
        // step_j ≤ (hi_j − lo_j + dmin)/15, dmin ≈ max(−lo_j)/63, d ≈ max step/63.
        GgmlType::Q4_K => {
            let subs: Vec<(f32, f32)> = x
                .chunks(32)
                .map(|s| {
                    let lo = s.iter().fold(0f32, |a, &v| a.min(v));
                    let hi = s.iter().fold(f32::MIN, |a, &v| a.max(v));
                    (lo, hi)
                })
                .collect();
            let dmin = subs.iter().fold(0f32, |a, &(lo, _)| a.max(-lo)) / 63.0 * (1.0 + F16_ULP) + F16_TINY;
            let steps: Vec<f32> = subs.iter().map(|&(lo, hi)| (hi - lo + dmin) / 15.0).collect();
            let d = steps.iter().fold(0f32, |a, &s| a.max(s)) / 63.0 * (1.0 + F16_ULP) + F16_TINY;
            (0..x.len()).map(|e| (steps[e / 32] + d) / 2.0 + tiny).collect()
        }
        // This crate's quantiser: |err| ≤ (|step_j| + d)/2, step_j the smaller covering step.
        GgmlType::Q6_K => {
            let steps: Vec<f32> = x
                .chunks(16)
                .map(|s| {
                    let pos = s.iter().fold(0f32, |a, &v| a.max(v));
                    let neg = s.iter().fold(0f32, |a, &v| a.max(-v));
                    ((neg / 32.0).max(pos / 31.0)).min((pos / 32.0).max(neg / 31.0))
                })
                .collect();
            let d = steps.iter().fold(0f32, |a, &s| a.max(s)) / 127.0 * (1.0 + F16_ULP) + F16_TINY;
            (0..x.len()).map(|e| (steps[e / 16] + d) / 2.0 + tiny).collect()
        }
        other => panic!("no bound for {other}"),
    }
}

/// Worst error / bound over all elements (≤ 1 passes) and the relative RMS error.
fn measure(dtype: GgmlType, x: &[f32], y: &[f32]) -> (f32, f64) {
    let block = dtype.block_size();
    let mut worst = 0f32;
    for (xb, yb) in x.chunks(block).zip(y.chunks(block)) {
        for ((&a, &b), bound) in xb.iter().zip(yb).zip(bounds(dtype, xb)) {
            worst = worst.max((a - b).abs() / bound);
        }
    }
    let err: f64 = x.iter().zip(y).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
    let norm: f64 = x.iter().map(|&a| (a as f64).powi(2)).sum();
    (worst, (err / norm).sqrt())
}

/// Relative RMS thresholds, about 1.5× what this crate gives on the test data (measured:
/// Q8_0 0.0064, Q4_0 0.094, Q4_1 0.085, Q4_K 0.090, Q6_K 0.021). A wrong nibble order or scale
/// gives a relative RMS of 0.4–2 (see `bounds_reject_plausible_layout_bugs`).
fn rms_threshold(dtype: GgmlType) -> f64 {
    match dtype {
        GgmlType::Q8_0 => 0.01,
        GgmlType::Q6_K => 0.03,
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q4_K => 0.15,
        other => panic!("no threshold for {other}"),
    }
}

const TYPES: [GgmlType; 8] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
];

fn metadata() -> Vec<(&'static str, Value)> {
    vec![
        ("general.architecture", Value::from("test")),
        ("t.u8", Value::U8(250)),
        ("t.i8", Value::I8(-7)),
        ("t.u16", Value::U16(65535)),
        ("t.i16", Value::I16(-32768)),
        ("t.u32", Value::U32(123_456_789)),
        ("t.i32", Value::I32(-123_456_789)),
        ("t.f32", Value::F32(-0.125)),
        ("t.bool", Value::Bool(false)),
        ("t.string", Value::from("naïve ✓")),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(1e-300)),
        ("t.tokens", Value::from(vec!["<s>", "", "▁the"])),
        ("t.scores", Value::from(vec![0.5f32, -1.0, f32::MIN_POSITIVE])),
        ("t.ids", Value::from(vec![1i32, -2, i32::MAX])),
        ("t.flags", Value::from(vec![true, false])),
        ("t.empty", Value::from(Vec::<u64>::new())),
        (
            "t.nested",
            Value::from(vec![
                Array::from(vec![1u16, 2]),
                Array::from(vec!["a".to_string()]),
                Array::Array(vec![Array::from(vec![3.5f64])]),
            ]),
        ),
    ]
}

#[test]
fn every_type_round_trips_within_its_bound() {
    let shape = [4usize, 512];
    let mut writer = GgufWriter::new();
    for (key, value) in metadata() {
        writer.add_metadata(key, value).unwrap();
    }
    let mut inputs = Vec::new();
    for (i, &dtype) in TYPES.iter().enumerate() {
        let x = common::test_values(1000 + i as u64, shape[0] * shape[1], 0.02);
        writer.add_tensor_f32(format!("w.{}", dtype.name()), &shape, &x, dtype).unwrap();
        inputs.push(x);
    }
    let file = GgufFile::from_bytes(writer.to_bytes()).unwrap();

    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    let expected: Vec<(String, Value)> = metadata().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    assert_eq!(file.metadata(), expected.as_slice());
    assert_eq!(file.tensors().len(), TYPES.len());

    for (&dtype, x) in TYPES.iter().zip(&inputs) {
        let name = format!("w.{}", dtype.name());
        let info = file.tensor(&name).unwrap();
        assert_eq!(info.dims, vec![512, 4], "ggml order is the reverse of the shape");
        assert_eq!(info.dtype, dtype);
        assert_eq!(info.offset % 32, 0);
        let (got_shape, y) = file.tensor_f32(&name).unwrap();
        assert_eq!(got_shape, shape.to_vec());
        assert_eq!(y.len(), x.len());
        match dtype {
            GgmlType::F32 => assert_eq!(&y, x),
            GgmlType::F16 => {
                let want: Vec<f32> = x.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
                assert_eq!(y, want);
            }
            GgmlType::BF16 => {
                let want: Vec<f32> = x.iter().map(|&v| bf16::from_f32(v).to_f32()).collect();
                assert_eq!(y, want);
            }
            _ => {
                let (worst, rms) = measure(dtype, x, &y);
                let max_err = x.iter().zip(&y).fold(0f32, |a, (p, q)| a.max((p - q).abs()));
                println!(
                    "{dtype}: max |err| = {max_err:.3e} (σ = 0.02), worst err/bound = {worst:.3}, \
                     relative RMS = {rms:.4}"
                );
                assert!(worst <= 1.0, "{dtype}: an error exceeds its bound by {worst}×");
                assert!(rms < rms_threshold(dtype), "{dtype}: relative RMS {rms}");
            }
        }
    }
}

#[test]
fn quantised_zero_and_constant_blocks_are_exact_enough() {
    for dtype in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q6_K] {
        let zeros = vec![0f32; 256];
        let y = gguf::dequantize(dtype, &quantize(dtype, &zeros).unwrap()).unwrap();
        assert!(y.iter().all(|&v| v == 0.0), "{dtype}: zeros do not stay zero");
        let constant = vec![-1.5f32; 256];
        let y = gguf::dequantize(dtype, &quantize(dtype, &constant).unwrap()).unwrap();
        let worst = y.iter().fold(0f32, |a, &v| a.max((v + 1.5).abs()));
        assert!(worst < 2e-3, "{dtype}: constant block off by {worst}");
    }
}

/// Plausible implementation bugs, each applied to correct output or bytes: the bounds above
/// must reject every one, or they would not be testing anything.
#[test]
fn bounds_reject_plausible_layout_bugs() {
    let x = common::test_values(77, 1024, 1.0);
    // Every bug breaks the per-element bound; bugs that move values around (not just
    // rescale them slightly) also break the RMS threshold.
    let check = |dtype: GgmlType, y: &[f32], bug: &str, breaks_rms: bool| {
        let (worst, rms) = measure(dtype, &x, y);
        println!("{dtype} with `{bug}`: worst err/bound {worst:.2}, relative RMS {rms:.3}");
        assert!(worst > 1.0, "{dtype}: the bound misses the bug `{bug}` (worst {worst})");
        if breaks_rms {
            assert!(rms > rms_threshold(dtype), "{dtype}: RMS misses `{bug}` ({rms})");
        }
    };

    // Q4_0 with element pairs (2j, 2j+1) in byte j instead of (j, j+16).
    let bytes = quantize(GgmlType::Q4_0, &x).unwrap();
    let y = gguf::dequantize(GgmlType::Q4_0, &bytes).unwrap();
    let mut interleaved = y.clone();
    for (b, out) in y.chunks(32).zip(interleaved.chunks_mut(32)) {
        for j in 0..16 {
            out[2 * j] = b[j];
            out[2 * j + 1] = b[j + 16];
        }
    }
    check(GgmlType::Q4_0, &interleaved, "interleaved nibbles", true);

    // Q4_1 without its min.
    let bytes = quantize(GgmlType::Q4_1, &x).unwrap();
    let mut y = gguf::dequantize(GgmlType::Q4_1, &bytes).unwrap();
    for (b, out) in bytes.chunks(20).zip(y.chunks_mut(32)) {
        let m = f16::from_bits(u16::from_le_bytes([b[2], b[3]])).to_f32();
        out.iter_mut().for_each(|v| *v -= m);
    }
    check(GgmlType::Q4_1, &y, "min ignored", true);

    // Q8_0 quantised with d = amax/128 instead of /127 (values shrink by 1/128).
    let y: Vec<f32> = gguf::dequantize(GgmlType::Q8_0, &quantize(GgmlType::Q8_0, &x).unwrap())
        .unwrap()
        .iter()
        .map(|v| v * 127.0 / 128.0)
        .collect();
    check(GgmlType::Q8_0, &y, "d = amax/128", false);

    // Q4_K with scale and min nibbles of sub-blocks 4–7 swapped in the packed scales.
    let mut bytes = quantize(GgmlType::Q4_K, &x).unwrap();
    for b in bytes.chunks_mut(144) {
        for s in &mut b[12..16] {
            *s = s.rotate_left(4);
        }
    }
    let y = gguf::dequantize(GgmlType::Q4_K, &bytes).unwrap();
    check(GgmlType::Q4_K, &y, "scale/min swap", true);

    // Q6_K with the high 2 bits of k = 1 and k = 2 swapped in qh.
    let mut bytes = quantize(GgmlType::Q6_K, &x).unwrap();
    for b in bytes.chunks_mut(210) {
        for q in &mut b[128..192] {
            let (k1, k2) = ((*q >> 2) & 3, (*q >> 4) & 3);
            *q = (*q & 0b1100_0011) | (k2 << 2) | (k1 << 4);
        }
    }
    let y = gguf::dequantize(GgmlType::Q6_K, &bytes).unwrap();
    check(GgmlType::Q6_K, &y, "qh bit order", true);
}

#[test]
fn write_file_is_atomic_and_opens_by_path() {
    let dir = std::env::temp_dir().join(format!("gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.gguf");
    let mut writer = GgufWriter::new();
    writer.add_metadata("general.alignment", 64u32).unwrap();
    writer.add_metadata("general.name", "tiny").unwrap();
    let x = common::test_values(5, 2 * 256, 1.0);
    writer.add_tensor_f32("a", &[2, 256], &x, GgmlType::Q6_K).unwrap();
    writer.add_tensor_f32("b", &[3], &[1.0, 2.0, 3.0], GgmlType::F32).unwrap();
    writer.add_tensor_f32("c", &[], &[4.0], GgmlType::F16).unwrap();
    writer.write_file(&path).unwrap();

    let leftovers: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n != "model.gguf").collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes, writer.to_bytes());

    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.alignment(), 64);
    assert_eq!(file.data_offset() % 64, 0);
    assert!(file.tensors().iter().all(|t| t.offset % 64 == 0));
    assert_eq!(file.get_str("general.name").unwrap(), "tiny");
    assert_eq!(file.tensor_f32("b").unwrap(), (vec![3], vec![1.0, 2.0, 3.0]));
    assert_eq!(file.tensor_f32("c").unwrap(), (vec![], vec![4.0]));
    let raw = file.tensor_bytes("a").unwrap();
    assert_eq!(raw, quantize(GgmlType::Q6_K, &x).unwrap().as_slice());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn raw_bytes_tensors_are_written_verbatim() {
    let mut writer = GgufWriter::new();
    let bytes: Vec<u8> = (0..2 * 110).map(|i| (i * 7 % 251) as u8).collect();
    writer.add_tensor_bytes("q3", &[2, 256], GgmlType::Q3_K, bytes.clone()).unwrap();
    let file = GgufFile::from_bytes(writer.to_bytes()).unwrap();
    assert_eq!(file.tensor_bytes("q3").unwrap(), bytes.as_slice());
    assert_eq!(file.tensor("q3").unwrap().n_bytes, 220);
}
