//! Other tools' model files, read into and written from the project's model.
//!
//! - [`hf`]: Hugging Face folders (`config.json`, `model.safetensors` or shards with
//!   `model.safetensors.index.json`, `tokenizer.json`, `tokenizer_config.json`) of the
//!   Llama family (Llama, SmolLM, Mistral, Qwen2, Qwen3), read and written.
//! - [`gguf_model`]: llama.cpp's GGUF files of the same family (architectures `llama` and
//!   `qwen2`, `qwen3`), quantised tensors dequantised on load, written in any type the `gguf` crate
//!   quantises.
//!
//! The project's own weights already use Hugging Face Llama names and the `[out, in]` layout of
//! linear weights (`model::weights`), and its rotary embedding is Hugging Face's rotate-half
//! one, so a Llama-layout folder maps onto `model::Transformer` tensor for tensor; what differs
//! between formats and families is listed where it is handled:
//!
//! | difference | where |
//! |---|---|
//! | Qwen2's biases on q/k/v (no other bias) | `ModelConfig::qkv_bias` |
//! | Qwen3's RMSNorm on each query and key head, before the rotation | `ModelConfig::qk_norm` (`self_attn.q_norm`, `k_norm`) |
//! | heads of another width than `hidden_size / num_attention_heads` (`head_dim`: Qwen3, Mistral NeMo) | `ModelConfig::head_dim` |
//! | tied embeddings (`tie_word_embeddings`; SmolLM, Qwen2 small) | no `lm_head.weight`; a stored copy is checked equal and dropped |
//! | `rope_theta` + `rope_scaling` (transformers 4) or `rope_parameters` (transformers 5) | [`hf::model_config`] |
//! | Llama 3.1 rope scaling, linear scaling | `model::RopeScaling` |
//! | Mistral's sliding window | exact up to the window: `max_seq_len` is capped at it |
//! | F16 / BF16 / F32 tensors | read as f32 (`model::weights`) |

pub mod error;
pub mod gguf_model;
pub mod hf;

pub use error::ImportError;

use std::path::{Path, PathBuf};

use model::burn::prelude::Device;
use model::Transformer;
use serde_json::json;

/// A model read from another tool's files, with what its tokenizer needs.
pub struct Imported {
    pub path: PathBuf,
    /// `"hf"` or `"gguf"`.
    pub format: &'static str,
    pub model: Transformer,
    /// `tokenizer.json`.
    pub tokenizer_json: String,
    /// A `tokenizer_config.json` holding the chat template, the special-token strings and the
    /// end-of-sequence ids (`eos_token_ids`, from `generation_config.json` or the GGUF).
    pub tokenizer_config_json: String,
}

/// Whether `path` is a GGUF file (by its magic bytes).
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    path.is_file() && std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"GGUF"
}

/// Whether `path` is something [`import`] reads: a Hugging Face folder or a GGUF file.
pub fn is_importable(path: &Path) -> bool {
    is_gguf(path) || hf::is_hf_folder(path)
}

fn tokenizer_config(
    chat_template: Option<&str>,
    bos: Option<&str>,
    eos: Option<&str>,
    eos_ids: &[u32],
    add_bos: Option<bool>,
) -> String {
    let mut c = json!({"eos_token_ids": eos_ids});
    if let Some(a) = add_bos {
        c["add_bos_token"] = json!(a);
    }
    if let Some(t) = chat_template {
        c["chat_template"] = json!(t);
    }
    if let Some(b) = bos {
        c["bos_token"] = json!(b);
    }
    if let Some(e) = eos {
        c["eos_token"] = json!(e);
    }
    serde_json::to_string_pretty(&c).expect("JSON values serialise")
}

/// Read a Hugging Face folder or a GGUF file into the project's model on `device`.
pub fn import(path: &Path, device: &Device) -> Result<Imported, ImportError> {
    if is_gguf(path) {
        let g = gguf_model::load(path, device)?;
        let tc = tokenizer_config(
            g.chat_template.as_deref(),
            g.bos_token.as_deref(),
            g.eos_token.as_deref(),
            &g.eos_token_ids,
            Some(g.add_bos_token),
        );
        return Ok(Imported {
            path: path.to_path_buf(),
            format: "gguf",
            model: g.model,
            tokenizer_json: g.tokenizer_json,
            tokenizer_config_json: tc,
        });
    }
    let h = hf::load(path, device)?;
    let tc = tokenizer_config(
        h.chat_template.as_deref(),
        h.bos_token.as_deref(),
        h.eos_token.as_deref(),
        &h.config.eos_token_ids,
        h.add_bos_token,
    );
    Ok(Imported {
        path: path.to_path_buf(),
        format: "hf",
        model: h.model,
        tokenizer_json: h.tokenizer_json,
        tokenizer_config_json: tc,
    })
}
