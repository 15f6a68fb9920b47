//! The reader against an independent implementation: tests/fixtures/reference.gguf was written
//! by gguf-py (llama.cpp's Python package) and reference_f32.bin holds gguf-py's own
//! dequantisation of each tensor (see tests/fixtures/make_fixtures.py, which made them).

use std::path::PathBuf;

use gguf::{quantize, Array, GgmlType, GgufFile, Value};
use serde_json::Value as Json;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

struct Fixture {
    file: GgufFile,
    manifest: Json,
    blob: Vec<f32>,
}

fn load() -> Fixture {
    let file = GgufFile::open(fixture("reference.gguf")).unwrap();
    let manifest: Json = serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap();
    let blob = std::fs::read(fixture("reference_f32.bin"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Fixture { file, manifest, blob }
}

fn slice<'a>(blob: &'a [f32], at: &Json) -> &'a [f32] {
    let offset = at["offset"].as_u64().unwrap() as usize;
    let len = at["len"].as_u64().unwrap() as usize;
    &blob[offset..offset + len]
}

/// Compares a metadata value with the manifest's JSON description of it.
fn matches(value: &Value, ty: &str, want: &Json) -> bool {
    match (value, ty) {
        (Value::U8(v), "UINT8") => want.as_u64() == Some(*v as u64),
        (Value::I8(v), "INT8") => want.as_i64() == Some(*v as i64),
        (Value::U16(v), "UINT16") => want.as_u64() == Some(*v as u64),
        (Value::I16(v), "INT16") => want.as_i64() == Some(*v as i64),
        (Value::U32(v), "UINT32") => want.as_u64() == Some(*v as u64),
        (Value::I32(v), "INT32") => want.as_i64() == Some(*v as i64),
        (Value::U64(v), "UINT64") => want.as_u64() == Some(*v),
        (Value::I64(v), "INT64") => want.as_i64() == Some(*v),
        (Value::F32(v), "FLOAT32") => want.as_f64() == Some(*v as f64),
        (Value::F64(v), "FLOAT64") => want.as_f64() == Some(*v),
        (Value::Bool(v), "BOOL") => want.as_bool() == Some(*v),
        (Value::String(v), "STRING") => want.as_str() == Some(v.as_str()),
        (Value::Array(a), _) => {
            let inner = ty.strip_prefix("ARRAY[").and_then(|t| t.strip_suffix(']')).expect("array type in manifest");
            let items = want.as_array().expect("array value in manifest");
            array_items(a).len() == items.len()
                && array_items(a).iter().zip(items).all(|(v, w)| {
                    // Nested arrays in the fixture hold i32s (gguf-py's type for Python ints).
                    let ty = if inner == "ARRAY" { "ARRAY[INT32]" } else { inner };
                    matches(v, ty, w)
                })
        }
        _ => false,
    }
}

fn array_items(a: &Array) -> Vec<Value> {
    match a {
        Array::String(v) => v.iter().cloned().map(Value::String).collect(),
        Array::F32(v) => v.iter().copied().map(Value::F32).collect(),
        Array::I32(v) => v.iter().copied().map(Value::I32).collect(),
        Array::Array(v) => v.iter().cloned().map(Value::Array).collect(),
        other => panic!("fixture has no {:?} arrays", other.element_type()),
    }
}

#[test]
fn metadata_matches_what_gguf_py_wrote() {
    let f = load();
    assert_eq!(f.file.version(), 3);
    assert_eq!(f.file.alignment(), 64);
    let want = f.manifest["metadata"].as_array().unwrap();
    assert_eq!(f.file.metadata().len(), want.len());
    for ((key, value), w) in f.file.metadata().iter().zip(want) {
        assert_eq!(key, w["key"].as_str().unwrap(), "keys in file order");
        let ty = w["type"].as_str().unwrap();
        assert!(matches(value, ty, &w["value"]), "`{key}`: {value:?} is not {ty} {}", w["value"]);
    }
    // Typed getters on the same data.
    assert_eq!(f.file.get_str("general.architecture").unwrap(), "fixture");
    assert_eq!(f.file.get_u32("fixture.u32").unwrap(), 4_000_000_000);
    assert_eq!(f.file.get_f32("fixture.f32").unwrap(), 1234.5678f32);
    assert!(f.file.get_bool("fixture.bool").unwrap());
    assert_eq!(f.file.get_str_array("fixture.strings").unwrap(), ["<s>", "</s>", "déjà", ""]);
    assert_eq!(f.file.get_f32_array("fixture.f32s").unwrap(), [0.5, -1.25, 1e-3]);
    assert_eq!(f.file.get_i32_array("fixture.i32s").unwrap(), [1, -2, 3, i32::MAX]);
    assert_eq!(f.file.get_usize("fixture.u16").unwrap(), 60000);
    let nested = f.file.get_array("fixture.nested").unwrap();
    assert_eq!(nested, &Array::Array(vec![Array::I32(vec![1, 2]), Array::I32(vec![3]), Array::I32(vec![4, 5, 6])]));
}

#[test]
fn dequantisation_matches_gguf_py() {
    let f = load();
    let tensors = f.manifest["tensors"].as_array().unwrap();
    assert_eq!(f.file.tensors().len(), tensors.len());
    for (info, t) in f.file.tensors().iter().zip(tensors) {
        let name = t["name"].as_str().unwrap();
        assert_eq!(info.name, name, "tensors in file order");
        assert_eq!(info.dtype.name(), t["type"].as_str().unwrap());
        let shape: Vec<usize> = t["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let (got_shape, got) = f.file.tensor_f32(name).unwrap();
        assert_eq!(got_shape, shape, "{name}: row-major shape");
        let want = slice(&f.blob, &t["expected"]);
        assert_eq!(got.len(), want.len(), "{name}");
        let mut worst = 0f32;
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let rel = (g - w).abs() / w.abs().max(1e-30);
            assert!(g == w || rel <= 1e-6, "{name}[{i}]: reader gives {g}, gguf-py gives {w}");
            worst = worst.max(if g == w { 0.0 } else { rel });
        }
        println!("{name} ({}): {} values, worst relative difference {worst:e}", info.dtype, got.len());
    }
}

/// Where gguf-py quantised (BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), this crate's quantiser must
/// produce the very same bytes from the same f32 input: both follow ggml's reference rounding.
#[test]
fn quantisation_matches_gguf_py_bytes() {
    let f = load();
    let mut checked = Vec::new();
    for t in f.manifest["tensors"].as_array().unwrap() {
        let Some(source) = t.get("source") else {
            continue;
        };
        let name = t["name"].as_str().unwrap();
        let info = f.file.tensor(name).unwrap();
        let ours = quantize(info.dtype, slice(&f.blob, source)).unwrap();
        let theirs = f.file.tensor_bytes(name).unwrap();
        let differing = ours.iter().zip(theirs).filter(|(a, b)| a != b).count();
        assert_eq!(ours.len(), theirs.len(), "{name}");
        assert_eq!(differing, 0, "{name}: {differing} of {} bytes differ from gguf-py's", ours.len());
        checked.push(info.dtype);
    }
    use GgmlType::*;
    assert_eq!(checked, [BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1]);
}
