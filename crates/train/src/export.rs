//! A model (a checkpoint of this project, or an imported one) written in another tool's format:
//! a Hugging Face folder that transformers loads, or a GGUF file for llama.cpp.
//!
//! The tokenizer goes along: `tokenizer.json` as is, and a chat template. An imported model
//! keeps its own; an ascent model gets [`ASCENT_CHAT_TEMPLATE`], the project's chat format
//! written as Jinja, so `apply_chat_template` in transformers renders exactly what
//! `tokenizer::render_chat` renders, and its end-of-sequence ids are `<|end|>` and `<|eos|>`.

use std::path::Path;

use model::Transformer;
use tokenizer::{Special, Tokenizer};

use crate::error::TrainError;

/// The project's chat format (`tokenizer::chat`) as a Hugging Face chat template.
pub const ASCENT_CHAT_TEMPLATE: &str = "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

/// The on-disk formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A Hugging Face folder (F32 safetensors).
    Hf,
    /// A GGUF file with matrices in the given type.
    Gguf(gguf::GgmlType),
}

impl Format {
    /// `hf`, or `gguf` with a type name (`f32`, `f16`, `bf16`, `q8_0`, `q6_k`, `q5_0`, `q5_1`,
    /// `q4_k`, `q4_0`, `q4_1`).
    pub fn parse(format: &str, quant: &str) -> Result<Self, String> {
        match format {
            "hf" => Ok(Format::Hf),
            "gguf" => {
                let t = gguf::GgmlType::ALL
                    .iter()
                    .find(|t| t.name().eq_ignore_ascii_case(quant) && t.can_quantize())
                    .ok_or_else(|| {
                    format!("--quant `{quant}`: one of f32, f16, bf16, q8_0, q6_k, q5_0, q5_1, q4_k, q4_0, q4_1")
                })?;
                Ok(Format::Gguf(*t))
            }
            other => Err(format!("--format `{other}`: `hf` or `gguf`")),
        }
    }
}

/// The special-token strings and end ids of a tokenizer, as an export records them.
struct TokenizerFacts {
    chat_template: Option<String>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    eos_token_ids: Vec<u32>,
    bos_token_id: Option<u32>,
    add_bos_token: Option<bool>,
}

fn facts(tok: &Tokenizer) -> TokenizerFacts {
    match tok.config_json() {
        None => TokenizerFacts {
            chat_template: Some(ASCENT_CHAT_TEMPLATE.to_string()),
            bos_token: Some(Special::Bos.text().to_string()),
            eos_token: Some(Special::End.text().to_string()),
            eos_token_ids: vec![Special::End.id(), Special::Eos.id()],
            bos_token_id: Some(Special::Bos.id()),
            add_bos_token: None,
        },
        Some(_) => {
            let (bos, eos) = tok.special_strings();
            TokenizerFacts {
                chat_template: tok.chat_template().map(|t| t.source().to_string()),
                bos_token_id: bos.and_then(|b| tok.token_to_id(b)),
                bos_token: bos.map(str::to_string),
                eos_token: eos.map(str::to_string),
                eos_token_ids: tok.end_ids(),
                add_bos_token: Some(tok.bos_prefix().is_some()),
            }
        }
    }
}

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    pub bytes: u64,
    /// Tensors per storage type (GGUF), or `F32` for a Hugging Face folder.
    pub tensor_types: std::collections::BTreeMap<String, usize>,
}

/// Write `model` with `tok` to `out` in `format`; `name` goes into GGUF's `general.name`.
/// `out` must not exist: an export never overwrites.
pub fn export(
    model: &Transformer,
    tok: &Tokenizer,
    format: Format,
    name: &str,
    out: &Path,
) -> Result<Exported, TrainError> {
    let f = facts(tok);
    let tokenizer_json = tok.to_json_string().map_err(|e| TrainError::Data(e.to_string()))?;
    let spec = interop::hf::ExportSpec {
        tokenizer_json: &tokenizer_json,
        chat_template: f.chat_template.as_deref(),
        bos_token: f.bos_token.as_deref(),
        eos_token: f.eos_token.as_deref(),
        eos_token_ids: &f.eos_token_ids,
        bos_token_id: f.bos_token_id,
        add_bos_token: f.add_bos_token,
    };
    let fail = |e: interop::ImportError| TrainError::Checkpoint { path: out.to_path_buf(), message: e.to_string() };
    match format {
        Format::Hf => {
            interop::hf::export(model, &spec, out).map_err(fail)?;
            let bytes = std::fs::read_dir(out)
                .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
                .unwrap_or(0);
            let n = model::weights::named_tensors(model).len();
            Ok(Exported { bytes, tensor_types: [("F32".to_string(), n)].into() })
        }
        Format::Gguf(t) => {
            let r = interop::gguf_model::export(model, &spec, t, name, out).map_err(fail)?;
            Ok(Exported { bytes: r.bytes, tensor_types: r.tensor_types })
        }
    }
}
