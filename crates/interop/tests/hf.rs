//! Hugging Face folders written by `transformers` itself (tests/golden/make_hf_golden.py): the
//! imported model gives transformers' logits, the tokenizer gives its ids, and an export read
//! back is the same model.

use std::path::{Path, PathBuf};

use interop::hf;
use model::burn::prelude::*;
use model::{engine, weights, Position, RopeScaling};
use safetensors::SafeTensors;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn device() -> Device {
    engine::training_device(&Device::flex())
}

fn expected(name: &str) -> (Vec<u32>, Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(golden(&format!("{name}.expected.safetensors"))).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ids = st.tensor("ids").unwrap();
    let ids = ids.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32).collect();
    let logits = st.tensor("logits").unwrap();
    let values = logits.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (ids, logits.shape().to_vec(), values)
}

fn logits(model: &model::Transformer, ids: &[u32]) -> Vec<f32> {
    let d = device();
    let x = Tensor::<2, Int>::from_data(
        TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, ids.len()]),
        &d,
    );
    model.forward(x).try_into_vec_as::<f32>().unwrap()
}

/// max |a − b| / max |b|
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn check(name: &str) -> hf::HfModel {
    let m = hf::load(&golden(name), &device()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (ids, shape, want) = expected(name);

    // The tokenizer: the same ids as transformers for the same text.
    let tok = tokenizers::Tokenizer::from_bytes(m.tokenizer_json.as_bytes()).unwrap();
    let text = "Ilona Varsk was born in Lormet in 1948. She works as a cartographer.\nQuestion: Where was Ilona born?";
    assert_eq!(tok.encode(text, false).unwrap().get_ids(), ids.as_slice(), "{name}: token ids");

    let got = logits(&m.model, &ids);
    assert_eq!(shape, vec![ids.len(), m.config.model.vocab_size]);
    let e = rel_err(&got, &want);
    assert!(e < 1e-4, "{name}: logits differ from transformers', relative error {e}");
    // A test that could not fail would pass with the wrong rotary layout; this one cannot.
    assert!(want.iter().map(|x| x.abs()).fold(0f32, f32::max) > 1.0, "{name}: the golden logits are degenerate");
    m
}

#[test]
fn llama_sharded_f32_with_llama3_rope_scaling() {
    let m = check("llama");
    assert_eq!(m.config.family, hf::Family::Llama);
    assert!(matches!(
        m.config.model.position,
        Position::Rope { theta: 500000.0, scaling: Some(RopeScaling::Llama3 { .. }) }
    ));
    assert!(!m.config.model.tie_embeddings);
    assert_eq!(m.config.model.n_kv_heads, 2);
    assert_eq!(m.config.eos_token_ids, vec![2]);
    assert!(m.chat_template.as_deref().unwrap().contains("<|im_start|>"));
}

#[test]
fn qwen2_bf16_tied_with_qkv_biases() {
    let m = check("qwen2");
    assert_eq!(m.config.family, hf::Family::Qwen2);
    assert!(m.config.model.qkv_bias && !m.config.model.bias && m.config.model.tie_embeddings);
    assert_eq!(m.config.dtype.as_deref(), Some("bfloat16"));
}

#[test]
fn qwen3_wide_heads_with_qk_norm() {
    let m = check("qwen3");
    assert_eq!(m.config.family, hf::Family::Qwen3);
    let c = &m.config.model;
    assert!(c.qk_norm && !c.qkv_bias && !c.tie_embeddings);
    assert_eq!((c.head_dim, c.head_dim()), (Some(16), 16), "heads twice hidden_size / num_attention_heads");
    let shapes: std::collections::BTreeMap<String, Vec<usize>> =
        weights::named_tensors(&m.model).into_iter().map(|(n, s, _)| (n, s)).collect();
    assert_eq!(shapes["model.layers.0.self_attn.q_proj.weight"], vec![64, 32]);
    assert_eq!(shapes["model.layers.0.self_attn.o_proj.weight"], vec![32, 64]);
    assert_eq!(shapes["model.layers.0.self_attn.q_norm.weight"], vec![16]);
}

#[test]
fn mistral_f16_sliding_window() {
    let m = check("mistral");
    assert_eq!(m.config.family, hf::Family::Mistral);
    assert_eq!(m.config.model.max_seq_len, 64, "the window (4096) is wider than the context");
}

/// Without the llama3 frequency scaling the logits are measurably different: the golden file
/// tests the scaling, not only the rest.
#[test]
fn llama_rope_scaling_matters() {
    let m = hf::load(&golden("llama"), &device()).unwrap();
    let (ids, _, want) = expected("llama");
    let mut cfg = m.config.model.clone();
    cfg.position = Position::rope(500000.0);
    let plain = weights::load_safetensors(
        model::Transformer::new(&cfg, &device()),
        &weights::to_safetensors(&m.model, &Default::default()),
    )
    .unwrap();
    let e = rel_err(&logits(&plain, &ids), &want);
    assert!(e > 1e-3, "plain rope is as close as scaled rope ({e})");
}

#[test]
fn export_then_import_is_identity() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["llama", "qwen2", "qwen3"] {
        let m = hf::load(&golden(name), &device()).unwrap();
        let out = dir.path().join(name);
        let spec = hf::ExportSpec {
            tokenizer_json: &m.tokenizer_json,
            chat_template: m.chat_template.as_deref(),
            bos_token: m.bos_token.as_deref(),
            eos_token: m.eos_token.as_deref(),
            eos_token_ids: &m.config.eos_token_ids,
            bos_token_id: m.config.bos_token_id,
            add_bos_token: m.add_bos_token,
        };
        hf::export(&m.model, &spec, &out).unwrap();
        // Never overwritten.
        assert!(hf::export(&m.model, &spec, &out).unwrap_err().to_string().contains("already exists"));
        let back = hf::load(&out, &device()).unwrap();
        assert_eq!(back.config.model, m.config.model, "{name}: config");
        assert_eq!(back.config.family, m.config.family);
        assert_eq!(back.config.eos_token_ids, m.config.eos_token_ids);
        assert_eq!(back.chat_template, m.chat_template);
        assert_eq!(back.tokenizer_json, m.tokenizer_json);
        let (a, b) = (weights::named_tensors(&m.model), weights::named_tensors(&back.model));
        assert_eq!(a.len(), b.len());
        for ((na, sa, va), (nb, sb, vb)) in a.iter().zip(&b) {
            assert_eq!((na, sa), (nb, sb));
            assert!(va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits()), "{name}: {na} changed");
        }
    }
}

#[test]
fn unsupported_and_malformed_configs_name_the_field() {
    let p = Path::new("config.json");
    let base = serde_json::json!({"model_type": "llama", "hidden_size": 32, "num_attention_heads": 4,
        "num_hidden_layers": 2, "intermediate_size": 48, "vocab_size": 100});
    assert!(hf::model_config(&base, p).is_ok());
    let with = |k: &str, v: serde_json::Value| {
        let mut c = base.clone();
        c[k] = v;
        hf::model_config(&c, p).unwrap_err().to_string()
    };
    assert!(with("model_type", "gpt_neox".into()).contains("model_type"));
    assert!(with("hidden_act", "gelu".into()).contains("hidden_act"));
    assert!(with("head_dim", 0.into()).contains("head_dim"));
    let mut wide = base.clone();
    wide["head_dim"] = 16.into();
    assert_eq!(hf::model_config(&wide, p).unwrap().model.head_dim(), 16, "heads wider than hidden / heads");
    wide["head_dim"] = 8.into();
    assert_eq!(hf::model_config(&wide, p).unwrap().model.head_dim, None, "the usual width is left unset");
    assert!(with("hidden_size", "32".into()).contains("hidden_size"));
    assert!(with("attention_bias", true.into()).contains("attention_bias"));
    assert!(with("rope_scaling", serde_json::json!({"type": "yarn", "factor": 4.0})).contains("yarn"));
    assert!(with("num_key_value_heads", 3.into()).contains("n_kv_heads"));
    // transformers 4's rope keys.
    let mut v4 = base.clone();
    v4["rope_theta"] = 1e6.into();
    v4["rope_scaling"] = serde_json::json!({"type": "linear", "factor": 2.0});
    let c = hf::model_config(&v4, p).unwrap();
    assert_eq!(c.model.position, Position::Rope { theta: 1e6, scaling: Some(RopeScaling::Linear { factor: 2.0 }) });
}

#[test]
fn broken_folders_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let to = dir.path().join(name);
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(golden("qwen2")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
        to
    };
    let d = copy("truncated");
    let w = d.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let e = hf::load(&d, &device()).err().unwrap().to_string();
    assert!(e.contains("model.safetensors"), "{e}");

    let d = copy("nojson");
    std::fs::write(d.join("config.json"), "{ not json").unwrap();
    let e = hf::load(&d, &device()).err().unwrap().to_string();
    assert!(e.contains("config.json") && e.contains("JSON"), "{e}");

    let d = copy("wrongshape");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    c["intermediate_size"] = 40.into();
    std::fs::write(d.join("config.json"), c.to_string()).unwrap();
    let e = hf::load(&d, &device()).err().unwrap().to_string();
    assert!(e.contains("mlp") && e.contains("shape"), "{e}");

    let e = hf::load(&dir.path().join("absent"), &device()).err().unwrap().to_string();
    assert!(e.contains("config.json"), "{e}");
}
