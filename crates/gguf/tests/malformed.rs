//! Malformed input: every corruption gives an error that says what and where, never a panic,
//! and absurd counts are refused before anything is allocated.

mod common;

use gguf::{Error, GgmlType, GgufFile, GgufWriter, Value};

/// A small valid file with metadata of several types and a few tensors.
fn valid_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama").unwrap();
    w.add_metadata("llama.block_count", 2u32).unwrap();
    w.add_metadata("llama.rope.freq_base", 10000f32).unwrap();
    w.add_metadata("tokenizer.ggml.tokens", vec!["<s>", "a", "b"]).unwrap();
    w.add_metadata("t.nested", vec![gguf::Array::from(vec![1i64, 2])]).unwrap();
    w.add_metadata("t.flag", true).unwrap();
    let x = common::test_values(3, 512, 1.0);
    w.add_tensor_f32("q8", &[2, 32], &x[..64], GgmlType::Q8_0).unwrap();
    w.add_tensor_f32("q4k", &[1, 256], &x[..256], GgmlType::Q4_K).unwrap();
    w.add_tensor_f32("q6k", &[256], &x[256..], GgmlType::Q6_K).unwrap();
    w.add_tensor_f32("f16", &[4], &x[..4], GgmlType::F16).unwrap();
    w.to_bytes()
}

/// Reads everything a caller could ask for; must not panic whatever the file holds.
fn exercise(file: &GgufFile) {
    for (key, _) in file.metadata() {
        let _ = file.get_str(key);
        let _ = file.get_u32(key);
        let _ = file.get_usize(key);
        let _ = file.get_str_array(key);
    }
    for t in file.tensors() {
        let _ = file.tensor_bytes(&t.name).unwrap();
        let _ = file.tensor_f32(&t.name);
        let _ = t.shape();
    }
}

/// The start of a file: magic, version, tensor count, metadata count.
fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&n_tensors.to_le_bytes());
    b.extend_from_slice(&n_kv.to_le_bytes());
    b
}

fn push_str(b: &mut Vec<u8>, s: &[u8]) {
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s);
}

/// One tensor info.
fn push_tensor(b: &mut Vec<u8>, name: &str, dims: &[u64], type_id: u32, offset: u64) {
    push_str(b, name.as_bytes());
    b.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    dims.iter().for_each(|d| b.extend_from_slice(&d.to_le_bytes()));
    b.extend_from_slice(&type_id.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
}

fn parse_err(bytes: Vec<u8>) -> Error {
    GgufFile::from_bytes(bytes).expect_err("malformed file accepted")
}

#[test]
fn the_valid_file_parses() {
    let file = GgufFile::from_bytes(valid_file()).unwrap();
    exercise(&file);
    assert_eq!(file.get_u32("llama.block_count").unwrap(), 2);
}

#[test]
fn bad_magic_and_versions() {
    let mut b = valid_file();
    b[..4].copy_from_slice(b"GGML");
    let e = parse_err(b);
    assert!(matches!(e, Error::BadMagic { found } if &found == b"GGML"), "{e}");
    assert!(e.to_string().contains("not a GGUF file"));

    for (version, hint) in [(1, "version 1"), (4, ""), (3u32.swap_bytes(), "big-endian")] {
        let e = parse_err(header(version, 0, 0));
        assert!(matches!(e, Error::UnsupportedVersion { .. }), "{e}");
        assert!(e.to_string().contains(hint), "{e}");
    }
    assert!(GgufFile::from_bytes(header(2, 0, 0)).is_ok(), "version 2 is read");
    let e = parse_err(b"GG".to_vec());
    assert!(matches!(e, Error::Truncated { offset: 0, .. }), "{e}");
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let bytes = valid_file();
    let file = GgufFile::from_bytes(bytes.clone()).unwrap();
    let data_end = file.tensors().iter().map(|t| file.data_offset() + t.offset + t.n_bytes).max().unwrap();
    for len in 0..bytes.len() {
        match GgufFile::from_bytes(bytes[..len].to_vec()) {
            Ok(f) => {
                assert!(len as u64 >= data_end, "truncated to {len} bytes yet accepted");
                exercise(&f);
            }
            Err(e) => {
                let msg = e.to_string();
                match e {
                    Error::Truncated { offset, .. } | Error::CountTooLarge { offset, .. } => {
                        assert!(offset <= len as u64, "{msg}")
                    }
                    Error::TensorOutOfBounds { len: l, .. } => assert_eq!(l, len as u64),
                    other => panic!("truncation to {len} bytes gave an unexpected error: {other}"),
                }
            }
        }
    }
}

#[test]
fn random_corruption_never_panics() {
    let bytes = valid_file();
    let header_end = GgufFile::from_bytes(bytes.clone()).unwrap().data_offset() as usize;
    let mut rng = common::Rng::new(0xF022);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..4000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            // Mostly the header, where the structure is; sometimes anywhere.
            let at = if rng.below(4) > 0 { rng.below(header_end) } else { rng.below(b.len()) };
            match rng.below(3) {
                0 => b[at] ^= 1 << rng.below(8),
                1 => b[at] = rng.next_u64() as u8,
                _ => b[at] = [0x00, 0xFF, 0x7F, 0x80][rng.below(4)],
            }
        }
        if rng.below(8) == 0 {
            b.truncate(rng.below(b.len()));
        }
        match GgufFile::from_bytes(b) {
            Ok(f) => {
                exercise(&f);
                ok += 1;
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
    }
    println!("corrupted files: {ok} still parsed, {err} refused");
    assert!(err > 1000, "corruption was mostly not noticed: {err} errors");
}

#[test]
fn absurd_counts_are_refused_before_allocating() {
    let e = parse_err(header(3, u64::MAX, 0));
    assert!(matches!(e, Error::CountTooLarge { .. }), "{e}");
    assert!(e.to_string().contains("tensor count"), "{e}");

    let e = parse_err(header(3, 0, u64::MAX / 2));
    assert!(matches!(e, Error::CountTooLarge { offset: 16, .. }), "{e}");

    // A key claiming to be 2^60 bytes long.
    let mut b = header(3, 0, 1);
    b.extend_from_slice(&(1u64 << 60).to_le_bytes());
    b.extend_from_slice(b"abcdefghijklmnop");
    let e = parse_err(b);
    assert!(matches!(e, Error::CountTooLarge { offset: 24, .. }), "{e}");
    assert!(e.to_string().contains("key of metadata pair #0"), "{e}");

    // An array of u64 claiming 2^40 elements.
    let mut b = header(3, 0, 1);
    push_str(&mut b, b"big");
    b.extend_from_slice(&9u32.to_le_bytes());
    b.extend_from_slice(&10u32.to_le_bytes());
    b.extend_from_slice(&(1u64 << 40).to_le_bytes());
    b.extend_from_slice(&[0; 64]);
    let e = parse_err(b);
    assert!(matches!(e, Error::CountTooLarge { .. }), "{e}");
    assert!(e.to_string().contains("`big`"), "{e}");

    // Arrays nested 100 deep.
    let mut b = header(3, 0, 1);
    push_str(&mut b, b"deep");
    b.extend_from_slice(&9u32.to_le_bytes());
    for _ in 0..100 {
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
    }
    b.extend_from_slice(&[0; 64]);
    let e = parse_err(b);
    assert!(matches!(e, Error::TooDeep { .. }), "{e}");

    // Dimensions whose product overflows.
    let mut b = header(3, 1, 0);
    push_tensor(&mut b, "huge", &[1 << 40, 1 << 40], 0, 0);
    let e = parse_err(b);
    assert!(matches!(e, Error::ShapeOverflow { .. }), "{e}");

    // Plausible dimensions, but far more data than the file holds.
    let mut b = header(3, 1, 0);
    push_tensor(&mut b, "big", &[4096, 4096], 0, 0);
    let e = parse_err(b);
    assert!(matches!(e, Error::TensorOutOfBounds { ref tensor, .. } if tensor == "big"), "{e}");

    let mut b = header(3, 1, 0);
    push_tensor(&mut b, "five", &[1, 1, 1, 1, 1], 0, 0);
    let e = parse_err(b);
    assert!(matches!(e, Error::TooManyDims { n_dims: 5, .. }), "{e}");
}

#[test]
fn bad_values_name_their_key_and_offset() {
    // Unknown value type.
    let mut b = header(3, 0, 1);
    push_str(&mut b, b"k");
    b.extend_from_slice(&13u32.to_le_bytes());
    let e = parse_err(b);
    assert!(matches!(e, Error::UnknownValueType { id: 13, offset: 33, .. }), "{e}");
    assert!(e.to_string().contains("`k`"), "{e}");

    // A bool that is 2.
    let mut b = header(3, 0, 1);
    push_str(&mut b, b"flag");
    b.extend_from_slice(&7u32.to_le_bytes());
    b.push(2);
    let e = parse_err(b);
    assert!(matches!(e, Error::InvalidBool { byte: 2, .. }), "{e}");

    // A key that is not UTF-8.
    let mut b = header(3, 0, 1);
    push_str(&mut b, &[0x66, 0xFF, 0x66]);
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    let e = parse_err(b);
    assert!(matches!(e, Error::InvalidUtf8 { offset: 24, .. }), "{e}");

    // The same key twice.
    let mut b = header(3, 0, 2);
    for _ in 0..2 {
        push_str(&mut b, b"dup");
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
    }
    let e = parse_err(b);
    assert!(matches!(e, Error::DuplicateKey { ref key } if key == "dup"), "{e}");

    // Alignment: zero, not a power of two, wrong type.
    for (ty, value) in [(4u32, 0u32.to_le_bytes().to_vec()), (4, 48u32.to_le_bytes().to_vec())] {
        let mut b = header(3, 0, 1);
        push_str(&mut b, b"general.alignment");
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&value);
        assert!(matches!(parse_err(b), Error::BadAlignment { .. }));
    }
    let mut b = header(3, 0, 1);
    push_str(&mut b, b"general.alignment");
    b.extend_from_slice(&10u32.to_le_bytes());
    b.extend_from_slice(&64u64.to_le_bytes());
    let e = parse_err(b);
    assert!(matches!(e, Error::WrongType { .. }), "{e}");
    assert!(e.to_string().contains("general.alignment"), "{e}");
}

#[test]
fn ggml_types_are_named_in_errors() {
    // Q5_K (13) reads; removed and unknown ids are refused with their names.
    let mut b = header(3, 1, 0);
    push_tensor(&mut b, "t", &[256], 31, 0);
    let e = parse_err(b);
    assert!(matches!(e, Error::RemovedGgmlType { id: 31, name: "Q4_0_4_4", .. }), "{e}");
    assert!(e.to_string().contains("Q4_0_4_4"), "{e}");

    let mut b = header(3, 1, 0);
    push_tensor(&mut b, "t", &[256], 99, 0);
    let e = parse_err(b);
    assert!(matches!(e, Error::UnknownGgmlType { id: 99, .. }), "{e}");

    // A row that is not a whole number of blocks.
    let mut b = header(3, 1, 0);
    push_tensor(&mut b, "odd", &[33, 2], GgmlType::Q8_0.id(), 0);
    let e = parse_err(b);
    assert!(matches!(e, Error::NotBlockMultiple { len: 33, block: 32, .. }), "{e}");

    // A known type without a dequantiser reads as bytes and names itself in tensor_f32.
    let mut w = GgufWriter::new();
    w.add_tensor_bytes("iq", &[256], GgmlType::IQ2_XXS, vec![0; 66]).unwrap();
    let file = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(file.tensor_bytes("iq").unwrap().len(), 66);
    let e = file.tensor_f32("iq").unwrap_err();
    assert!(matches!(e, Error::Unsupported { dtype: GgmlType::IQ2_XXS, .. }), "{e}");
    assert!(e.to_string().contains("IQ2_XXS") && e.to_string().contains("`iq`"), "{e}");

    assert_eq!(gguf::ggml_type_name(13), Some("Q5_K"));
    assert_eq!(gguf::ggml_type_name(4), Some("Q4_2"));
    assert_eq!(gguf::ggml_type_name(1000), None);
    for &t in GgmlType::ALL {
        assert_eq!(GgmlType::from_id(t.id()), Some(t));
    }
}

#[test]
fn missing_things_and_wrong_types_name_the_key() {
    let file = GgufFile::from_bytes(valid_file()).unwrap();
    let e = file.get_u32("llama.nope").unwrap_err();
    assert!(matches!(e, Error::MissingKey { .. }) && e.to_string().contains("llama.nope"));
    let e = file.get_u32("general.architecture").unwrap_err();
    assert_eq!(e.to_string(), "metadata key `general.architecture` holds string, expected u32");
    let e = file.get_str_array("t.nested").unwrap_err();
    assert!(e.to_string().contains("array of array"), "{e}");
    let e = file.tensor_f32("missing").unwrap_err();
    assert!(matches!(e, Error::MissingTensor { .. }) && e.to_string().contains("missing"));
}

#[test]
fn quantiser_and_writer_refuse_bad_input() {
    let e = gguf::quantize(GgmlType::Q8_0, &[0.0; 33]).unwrap_err();
    assert!(matches!(e, Error::NotBlockMultiple { len: 33, block: 32, .. }), "{e}");
    let mut x = vec![0.0; 32];
    x[5] = f32::NAN;
    let e = gguf::quantize(GgmlType::Q4_0, &x).unwrap_err();
    assert!(matches!(e, Error::NonFinite { index: 5, .. }), "{e}");
    let e = gguf::quantize(GgmlType::Q8_0, &[1e30; 32]).unwrap_err();
    assert!(matches!(e, Error::ScaleOverflow { block: 0, .. }), "{e}");
    let e = gguf::quantize(GgmlType::IQ4_NL, &[0.0; 32]).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    let e = gguf::dequantize(GgmlType::Q4_K, &[0; 145]).unwrap_err();
    assert!(matches!(e, Error::NotBlockMultiple { len: 145, block: 144, .. }), "{e}");

    let mut w = GgufWriter::new();
    w.add_tensor_f32("a", &[32], &[0.0; 32], GgmlType::Q8_0).unwrap();
    let e = w.add_tensor_f32("a", &[32], &[0.0; 32], GgmlType::Q8_0).unwrap_err();
    assert!(matches!(e, Error::DuplicateTensor { .. }), "{e}");
    let e = w.add_tensor_f32("b", &[2, 32], &[0.0; 32], GgmlType::F32).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { expected: 64, got: 32, .. }), "{e}");
    let e = w.add_tensor_f32("c", &[32, 2], &[0.0; 64], GgmlType::Q8_0).unwrap_err();
    assert!(matches!(e, Error::NotBlockMultiple { len: 2, .. }), "{e}");
    let e = w.add_tensor_bytes("d", &[32], GgmlType::Q8_0, vec![0; 33]).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { expected: 34, got: 33, .. }), "{e}");
    let e = w.add_tensor_f32("x".repeat(64), &[1], &[0.0], GgmlType::F32).unwrap_err();
    assert!(matches!(e, Error::NameTooLong { len: 64, .. }), "{e}");
    let e = w.add_metadata("general.alignment", 64u64).unwrap_err();
    assert!(matches!(e, Error::WrongKeyType { .. }), "{e}");
    let e = w.add_metadata("general.alignment", 24u32).unwrap_err();
    assert!(matches!(e, Error::BadAlignment { value: 24 }), "{e}");
    w.add_metadata("k", Value::Bool(true)).unwrap();
    let e = w.add_metadata("k", 1u8).unwrap_err();
    assert!(matches!(e, Error::DuplicateKey { .. }), "{e}");

    let e = GgufFile::open("/nonexistent/model.gguf").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/model.gguf"), "{e}");
}
