//! GGUF files: ones laid out as llama.cpp's converter lays them out, written by gguf-py
//! (tests/golden/make_hf_golden.py), give transformers' logits; the project's own exports read
//! back exactly (F32) or with exactly the dequantisation error of their type.

use std::path::PathBuf;

use gguf::GgmlType;
use interop::{gguf_model, hf};
use model::burn::prelude::*;
use model::{engine, weights, ModelConfig, Position, RopeScaling, Transformer};
use safetensors::SafeTensors;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn device() -> Device {
    engine::training_device(&Device::flex())
}

fn expected(name: &str) -> (Vec<u32>, Vec<f32>) {
    let bytes = std::fs::read(golden(&format!("{name}.expected.safetensors"))).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ids = st.tensor("ids").unwrap();
    let ids = ids.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32).collect();
    let logits = st.tensor("logits").unwrap();
    (ids, logits.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

fn logits(model: &Transformer, ids: &[u32]) -> Vec<f32> {
    let x = Tensor::<2, Int>::from_data(
        TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, ids.len()]),
        &device(),
    );
    model.forward(x).try_into_vec_as::<f32>().unwrap()
}

fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// `model` with every matrix replaced by `f(name, values)`.
fn with_matrices(model: &Transformer, f: impl Fn(&str, &[f32]) -> Vec<f32>) -> Transformer {
    let tensors: Vec<_> = weights::named_tensors(model)
        .into_iter()
        .map(|(n, s, v)| {
            let v = if s.len() == 2 { f(&n, &v) } else { v };
            (n, s, v)
        })
        .collect();
    let bytes = weights::tensors_to_safetensors(&tensors, &Default::default());
    weights::load_safetensors(Transformer::new(model.config(), &device()), &bytes).unwrap()
}

fn round_trip(ty: GgmlType, v: &[f32]) -> Vec<f32> {
    gguf::dequantize(ty, &gguf::quantize(ty, v).unwrap()).unwrap()
}

fn text_ids(tokenizer_json: &str) -> Vec<u32> {
    let tok = tokenizers::Tokenizer::from_bytes(tokenizer_json.as_bytes()).unwrap();
    let text = "Ilona Varsk was born in Lormet in 1948. She works as a cartographer.\nQuestion: Where was Ilona born?";
    tok.encode(text, false).unwrap().get_ids().to_vec()
}

#[test]
fn llama_gguf_with_permuted_rows_and_rope_freqs_gives_transformers_logits() {
    let g = gguf_model::load(&golden("llama.gguf"), &device()).unwrap();
    let h = hf::load(&golden("llama"), &device()).unwrap();
    assert_eq!(g.arch, "llama");
    assert_eq!(g.config, h.config.model, "the same architecture as the folder, rope scaling recovered from rope_freqs");
    assert!(matches!(
        g.config.position,
        Position::Rope {
            scaling: Some(RopeScaling::Llama3 { factor: 8.0, original_max_position_embeddings: 16.0, .. }),
            ..
        }
    ));
    let (ids, want) = expected("llama");
    assert_eq!(text_ids(&g.tokenizer_json), ids, "the tokenizer rebuilt from tokenizer.ggml.*");
    let rebuilt = tokenizers::Tokenizer::from_bytes(g.tokenizer_json.as_bytes()).unwrap();
    assert_eq!(rebuilt.token_to_id("<|im_end|>"), Some(2), "special tokens keep their ids");
    assert_eq!(rebuilt.encode("<|im_start|>user", false).unwrap().get_ids()[0], 1);
    assert_eq!(g.chat_template, h.chat_template);
    assert_eq!((g.bos_token_id, g.eos_token_ids.clone()), (Some(0), vec![2]));
    assert_eq!(g.eos_token.as_deref(), Some("<|im_end|>"));
    // The file's matrices are F16: the folder's weights rounded to f16 give the same logits.
    let f16 = with_matrices(&h.model, |_, v| round_trip(GgmlType::F16, v));
    let got = logits(&g.model, &ids);
    let e = rel_err(&got, &logits(&f16, &ids));
    assert!(e < 1e-5, "llama.gguf vs the f16-rounded folder: relative error {e}");
    let e = rel_err(&got, &want);
    assert!(e < 5e-3, "llama.gguf vs transformers: relative error {e}");
}

#[test]
fn qwen3_gguf_with_wide_heads_and_qk_norm_gives_transformers_logits() {
    let g = gguf_model::load(&golden("qwen3.gguf"), &device()).unwrap();
    let h = hf::load(&golden("qwen3"), &device()).unwrap();
    assert_eq!(g.arch, "qwen3");
    assert_eq!(g.config, h.config.model, "head_dim from attention.key_length, qk_norm from attn_q_norm");
    let (ids, want) = expected("qwen3");
    assert_eq!(text_ids(&g.tokenizer_json), ids);
    let f16 = with_matrices(&h.model, |_, v| round_trip(GgmlType::F16, v));
    let got = logits(&g.model, &ids);
    let e = rel_err(&got, &logits(&f16, &ids));
    assert!(e < 1e-5, "qwen3.gguf vs the f16-rounded folder: relative error {e}");
    let e = rel_err(&got, &want);
    assert!(e < 5e-3, "qwen3.gguf vs transformers: relative error {e}");
}

#[test]
fn qwen2_gguf_quantised_by_gguf_py_has_exactly_q8_0_error() {
    let g = gguf_model::load(&golden("qwen2.gguf"), &device()).unwrap();
    let h = hf::load(&golden("qwen2"), &device()).unwrap();
    assert_eq!(g.arch, "qwen2");
    assert_eq!(g.config, h.config.model);
    assert_eq!(g.tensor_types.get("Q8_0"), Some(&13), "{:?}", g.tensor_types);
    let (ids, want) = expected("qwen2");
    assert_eq!(text_ids(&g.tokenizer_json), ids);
    // Expected: every matrix through Q8_0 (F16 where rows are not whole blocks).
    let q = with_matrices(&h.model, |name, v| {
        round_trip(if name.contains("down_proj") { GgmlType::F16 } else { GgmlType::Q8_0 }, v)
    });
    let got = logits(&g.model, &ids);
    let e = rel_err(&got, &logits(&q, &ids));
    assert!(e < 1e-5, "qwen2.gguf vs the Q8_0-rounded folder: relative error {e}");
    let e = rel_err(&got, &want);
    // Measured 4.2%: weights of std 0.2 in a model this small move the logits visibly.
    assert!(e > 1e-4 && e < 0.1, "qwen2.gguf vs transformers: relative error {e} (Q8_0 should cost a little)");
}

#[test]
fn f32_export_reads_back_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["llama", "qwen2", "qwen3"] {
        let h = hf::load(&golden(name), &device()).unwrap();
        let spec = hf::ExportSpec {
            tokenizer_json: &h.tokenizer_json,
            chat_template: h.chat_template.as_deref(),
            bos_token: h.bos_token.as_deref(),
            eos_token: h.eos_token.as_deref(),
            eos_token_ids: &h.config.eos_token_ids,
            bos_token_id: h.config.bos_token_id,
            add_bos_token: h.add_bos_token,
        };
        let path = dir.path().join(format!("{name}.gguf"));
        let report = gguf_model::export(&h.model, &spec, GgmlType::F32, name, &path).unwrap();
        assert!(report.bytes > 0);
        let e = gguf_model::export(&h.model, &spec, GgmlType::F32, name, &path).err().unwrap().to_string();
        assert!(e.contains("already exists"), "{e}");
        let g = gguf_model::load(&path, &device()).unwrap();
        assert_eq!(g.config, h.config.model, "{name}");
        assert_eq!(g.chat_template, h.chat_template);
        assert_eq!(text_ids(&g.tokenizer_json), text_ids(&h.tokenizer_json));
        for ((na, sa, va), (nb, sb, vb)) in
            weights::named_tensors(&h.model).iter().zip(&weights::named_tensors(&g.model))
        {
            assert_eq!((na, sa), (nb, sb));
            assert!(va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits()), "{name}: {na} changed");
        }
    }
}

/// A model wide enough for every type's blocks (rows of 256), exported in each quantised type:
/// every matrix reads back as exactly quantise-then-dequantise of the original, and the model's
/// logits move by an amount that orders the types by their bits.
#[test]
fn quantised_exports_read_back_with_their_dequantisation_error() {
    let h = hf::load(&golden("qwen2"), &device()).unwrap();
    let cfg = ModelConfig {
        d_model: 256,
        n_heads: 4,
        n_kv_heads: 2,
        d_ff: 512,
        n_layers: 1,
        init_std: 0.05,
        ..h.config.model.clone()
    };
    let model = Transformer::seeded(&cfg, &device(), 7);
    let spec = hf::ExportSpec {
        tokenizer_json: &h.tokenizer_json,
        chat_template: None,
        bos_token: None,
        eos_token: None,
        eos_token_ids: &[2],
        bos_token_id: Some(0),
        add_bos_token: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let (ids, _) = expected("qwen2");
    let exact = logits(&model, &ids);
    let mut errors = Vec::new();
    for ty in [GgmlType::Q8_0, GgmlType::Q6_K, GgmlType::Q4_K, GgmlType::Q4_1, GgmlType::Q4_0] {
        let path = dir.path().join(format!("{}.gguf", ty.name()));
        let report = gguf_model::export(&model, &spec, ty, "test", &path).unwrap();
        // Tied embeddings and one layer: the embedding and seven projections.
        assert_eq!(report.tensor_types.get(ty.name()), Some(&8), "{ty:?}: {:?}", report.tensor_types);
        let g = gguf_model::load(&path, &device()).unwrap();
        assert_eq!(g.tensor_types.get(ty.name()), Some(&8));
        let original = weights::named_tensors(&model);
        for ((name, shape, want), (_, _, got)) in original.iter().zip(&weights::named_tensors(&g.model)) {
            let expect = if shape.len() == 2 { round_trip(ty, want) } else { want.clone() };
            assert!(expect.iter().zip(got).all(|(a, b)| a.to_bits() == b.to_bits()), "{ty:?}: {name}");
        }
        errors.push((ty, rel_err(&logits(&g.model, &ids), &exact)));
    }
    eprintln!("logit relative error by type: {errors:?}");
    // More bits, less error: Q8_0 < Q6_K < the 4-bit types, all small.
    let e = |t: GgmlType| errors.iter().find(|(x, _)| *x == t).unwrap().1;
    assert!(e(GgmlType::Q8_0) < e(GgmlType::Q6_K) && e(GgmlType::Q6_K) < e(GgmlType::Q4_K), "{errors:?}");
    // Measured: Q8_0 1.5%, Q6_K 4.8%, Q4_K 19.7%, Q4_1 20.8%, Q4_0 22.9% of the largest logit.
    assert!(e(GgmlType::Q8_0) < 0.05 && e(GgmlType::Q4_0) < 0.5, "{errors:?}");
}

#[test]
fn broken_gguf_files_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(golden("qwen2.gguf")).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let e = gguf_model::load(&cut, &device()).err().unwrap().to_string();
    assert!(e.contains("cut.gguf"), "{e}");
    let header = dir.path().join("header.gguf");
    std::fs::write(&header, &bytes[..40]).unwrap();
    let e = gguf_model::load(&header, &device()).err().unwrap().to_string();
    assert!(e.contains("header.gguf") && e.contains("byte"), "{e}");
    let e = gguf_model::load(&golden("llama/config.json"), &device()).err().unwrap().to_string();
    assert!(e.contains("config.json") && e.contains("not a GGUF file"), "{e}");
}

/// `spm.expected.json`: texts and the ids they encode to.
fn spm_cases() -> (Vec<(String, Vec<u32>, Option<String>)>, String) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden("spm.expected.json")).unwrap()).unwrap();
    let cases = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ids = c["ids"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect();
            (c["text"].as_str().unwrap().to_string(), ids, c["decoded"].as_str().map(str::to_string))
        })
        .collect();
    (cases, v["chat_template"].as_str().unwrap().to_string())
}

#[test]
fn sentencepiece_gguf_tokenizes_as_sentencepiece_and_gives_transformers_logits() {
    let imported = interop::import(&golden("spm.gguf"), &device()).unwrap();
    let tok =
        tokenizer::Tokenizer::foreign(imported.tokenizer_json.as_bytes(), &imported.tokenizer_config_json, "spm.gguf")
            .unwrap();
    let (cases, template) = spm_cases();
    assert!(cases.len() >= 10);
    for (text, ids, decoded) in &cases {
        assert_eq!(&tok.encode(text), ids, "ids of {text:?}");
        if let Some(d) = decoded {
            assert_eq!(&tok.decode(ids), d, "decoding {text:?}");
            let bytes: Vec<u8> = ids.iter().flat_map(|&i| tok.token_bytes(i).unwrap()).collect();
            // Pieces write a space as `▁` and the first one carries the dummy prefix.
            assert_eq!(String::from_utf8(bytes).unwrap(), if d.is_empty() { String::new() } else { format!(" {d}") });
        }
    }
    // Byte fallback is exercised (é, 日本語, 🙂 are not pieces) and digits stay single.
    let unicode = &cases.iter().find(|c| c.0.starts_with("Unicode")).unwrap().1;
    assert!(unicode.iter().any(|&i| tok.id_to_token(i).unwrap().starts_with("<0x")), "byte tokens used");

    // Prompts start with <s> (add_bos_token), once even when a chat template writes it.
    assert_eq!(tok.bos_prefix(), Some(1));
    assert_eq!(tok.encode_prompt("Ilona"), [vec![1], tok.encode("Ilona")].concat());
    let chat =
        tok.render_chat(&[tokenizer::Message::new(tokenizer::Role::User, "Where was Ilona born?")], true).unwrap();
    assert!(chat.starts_with("<s>[INST] "), "{chat}");
    let ids = tok.encode_prompt(&chat);
    assert_eq!(ids.iter().filter(|&&i| i == 1).count(), 1, "one BOS: {ids:?}");
    assert_eq!(tok.chat_template().unwrap().source(), template);
    assert_eq!(tok.end_ids(), vec![2]);

    // The model: transformers' logits for the prompt with BOS.
    let (ids, want) = expected("spm");
    assert_eq!(ids, tok.encode_prompt(&cases[0].0), "the prompt transformers was given");
    let e = rel_err(&logits(&imported.model, &ids), &want);
    assert!(e < 1e-4, "spm.gguf vs transformers: relative error {e}");
}

#[test]
fn sentencepiece_tokenizer_exports_to_gguf_and_back_unchanged() {
    let g = gguf_model::load(&golden("spm.gguf"), &device()).unwrap();
    assert!(g.add_bos_token);
    let spec = hf::ExportSpec {
        tokenizer_json: &g.tokenizer_json,
        chat_template: g.chat_template.as_deref(),
        bos_token: g.bos_token.as_deref(),
        eos_token: g.eos_token.as_deref(),
        eos_token_ids: &g.eos_token_ids,
        bos_token_id: g.bos_token_id,
        add_bos_token: Some(true),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again.gguf");
    gguf_model::export(&g.model, &spec, GgmlType::F32, "again", &path).unwrap();
    let back = gguf_model::load(&path, &device()).unwrap();
    let file = gguf::GgufFile::open(&path).unwrap();
    assert_eq!(file.get_str("tokenizer.ggml.model").unwrap(), "llama");
    let original = gguf::GgufFile::open(golden("spm.gguf")).unwrap();
    assert_eq!(
        file.get_str_array("tokenizer.ggml.tokens").unwrap(),
        original.get_str_array("tokenizer.ggml.tokens").unwrap()
    );
    assert_eq!(
        file.get_i32_array("tokenizer.ggml.token_type").unwrap(),
        original.get_i32_array("tokenizer.ggml.token_type").unwrap()
    );
    assert!(file.get_bool("tokenizer.ggml.add_bos_token").unwrap());
    let a = tokenizers::Tokenizer::from_bytes(g.tokenizer_json.as_bytes()).unwrap();
    let b = tokenizers::Tokenizer::from_bytes(back.tokenizer_json.as_bytes()).unwrap();
    for (text, ids, _) in spm_cases().0 {
        assert_eq!(b.encode(text.as_str(), false).unwrap().get_ids(), ids.as_slice(), "{text:?} after export");
        assert_eq!(a.encode(text.as_str(), true).unwrap().get_ids(), b.encode(text.as_str(), true).unwrap().get_ids());
    }
    // A Hugging Face export carries the same tokenizer and says add_bos_token.
    let folder = dir.path().join("hf");
    hf::export(&g.model, &spec, &folder).unwrap();
    let h = hf::load(&folder, &device()).unwrap();
    assert_eq!(h.add_bos_token, Some(true));
    assert_eq!(h.tokenizer_json, g.tokenizer_json);
}
