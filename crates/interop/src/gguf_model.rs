//! GGUF files (llama.cpp) of the Llama family, in and out.
//!
//! What differs from a Hugging Face folder, and how it is mapped:
//!
//! | GGUF (llama.cpp's convert_hf_to_gguf.py) | Hugging Face / the project |
//! |---|---|
//! | `token_embd`, `blk.N.attn_q`, `ffn_gate`, `output_norm`, `output`, ... | `model.embed_tokens`, `model.layers.N.self_attn.q_proj`, `mlp.gate_proj`, `model.norm`, `lm_head` |
//! | architecture `llama` (also Mistral, SmolLM): q and k rows permuted so that rotary pairs are adjacent (ggml's interleaved "normal" rope) | rotate-half rope: the permutation is undone on load, redone on export |
//! | architecture `qwen2`: NEOX rope, not permuted; q/k/v biases | `qkv_bias` |
//! | architecture `qwen3`: NEOX rope, not permuted; `attn_q_norm`, `attn_k_norm`; `attention.key_length` heads | `qk_norm`, `head_dim` |
//! | no `output.weight` | tied embeddings |
//! | Llama 3.1 scaling as a `rope_freqs.weight` tensor of per-pair divisors | `RopeScaling::Llama3`, recognised by recomputing the divisors (known presets, or the one the tensor's largest divisor and the context length imply) |
//! | `rope.scaling.type = linear`, `rope.scaling.factor` | `RopeScaling::Linear` |
//! | tokenizer as `tokenizer.ggml.{model, tokens, token_type, merges, pre}` (`gpt2`: byte-level BPE) or `{tokens, scores, token_type}` (`llama`: SentencePiece BPE) | a `tokenizer.json` rebuilt from them: byte-level BPE, or BPE with byte fallback whose merges are ranked by the pieces' scores |
//! | `tokenizer.ggml.add_bos_token`, `add_space_prefix` | a `TemplateProcessing` post-processor and `add_bos_token`; a `Prepend("▁")` normalizer |
//! | matrices in F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K (and Q5_*, Q2_K, Q3_K, Q5_K) | dequantised to f32 on load |
//!
//! Export writes F32 1-D tensors (norms, biases) and the matrices in the requested type; a
//! matrix whose rows are not whole blocks of that type falls back to Q8_0, then F16 (as
//! llama.cpp's quantiser does), and the export reports how many tensors each type got.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use gguf::{GgmlType, GgufFile, GgufWriter, Value};
use model::burn::prelude::Device;
use model::weights::{self, TensorSource, WeightsError};
use model::{Mlp, ModelConfig, Norm, Position, RopeScaling, Transformer};
use serde_json::{json, Value as Json};

use crate::error::{field_err, file_err, ImportError};
use crate::hf;

/// A GGUF file read into the project's model.
pub struct GgufModel {
    pub path: PathBuf,
    /// `general.architecture`.
    pub arch: String,
    pub config: ModelConfig,
    pub model: Transformer,
    /// A `tokenizer.json` rebuilt from the file's `tokenizer.ggml.*` metadata.
    pub tokenizer_json: String,
    pub chat_template: Option<String>,
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// Whether prompts start with the beginning-of-sequence token (`tokenizer.ggml.add_bos_token`).
    pub add_bos_token: bool,
    /// How many tensors the file stores in each ggml type.
    pub tensor_types: BTreeMap<String, usize>,
}

/// llama.cpp's tensor names and Hugging Face's: whole names, then the per-layer parts
/// (`blk.N.<gguf>.weight` ⇄ `model.layers.N.<hf>.weight`).
const WHOLE_NAMES: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];
const LAYER_PARTS: [(&str, &str); 11] = [
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// `name` in the other convention: `to_hf` from llama.cpp's to Hugging Face's, else back. None
/// for names with no counterpart.
fn rename(name: &str, to_hf: bool) -> Option<String> {
    let pick = |(gg, hf): (&'static str, &'static str)| if to_hf { (gg, hf) } else { (hf, gg) };
    if let Some((_, to)) = WHOLE_NAMES.into_iter().map(pick).find(|(from, _)| *from == name) {
        return Some(to.to_string());
    }
    let (prefix, to_prefix) = if to_hf { ("blk.", "model.layers.") } else { ("model.layers.", "blk.") };
    let (layer, rest) = name.strip_prefix(prefix)?.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, kind) = rest.rsplit_once('.')?;
    let (_, to) = LAYER_PARTS.into_iter().map(pick).find(|(from, _)| *from == part)?;
    Some(format!("{to_prefix}{layer}.{to}.{kind}"))
}

/// Hugging Face name of a llama.cpp tensor name.
fn hf_name(gg: &str) -> Option<String> {
    rename(gg, true)
}

/// llama.cpp tensor name of a Hugging Face name.
fn gguf_name(hf: &str) -> Option<String> {
    rename(hf, false)
}

/// Rows of a `[heads·K, ...]` tensor (row length `cols`) from rotate-half order to ggml's
/// interleaved order (`inverse = false`, what convert_hf_to_gguf.py does to q and k of the
/// llama architecture) or back (`inverse = true`). Within each head, rotate-half row
/// `s·K/2 + j` (half `s`, pair `j`) is interleaved row `2j + s`.
fn permute_rows(data: &[f32], heads: usize, cols: usize, inverse: bool) -> Vec<f32> {
    let rows = data.len() / cols;
    let k = rows / heads;
    let mut out = vec![0f32; data.len()];
    for h in 0..heads {
        for s in 0..2 {
            for j in 0..k / 2 {
                let half_row = h * k + s * (k / 2) + j;
                let pair_row = h * k + 2 * j + s;
                let (from, to) = if inverse { (pair_row, half_row) } else { (half_row, pair_row) };
                out[to * cols..(to + 1) * cols].copy_from_slice(&data[from * cols..(from + 1) * cols]);
            }
        }
    }
    out
}

/// The file's tensors under Hugging Face names, q and k un-permuted for the llama architecture.
struct Tensors<'a> {
    file: &'a GgufFile,
    /// HF name → GGUF name.
    names: BTreeMap<String, String>,
    /// GGUF names with no counterpart (reported as unused).
    unknown: Vec<String>,
    /// Un-permute q (`n_heads`) and k (`n_kv_heads`) rows.
    permuted: Option<(usize, usize)>,
}

impl TensorSource for Tensors<'_> {
    fn names(&self) -> Vec<String> {
        self.names.keys().cloned().chain(self.unknown.iter().cloned()).collect()
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let gg = self.names.get(name)?;
        self.file.tensor(gg).ok().map(|t| t.shape())
    }
    fn read(&self, name: &str) -> Result<Vec<f32>, WeightsError> {
        let gg = self.names.get(name).ok_or_else(|| WeightsError::Missing { name: name.into() })?;
        let (shape, values) = self
            .file
            .tensor_f32(gg)
            .map_err(|e| WeightsError::Read { name: format!("{name} ({gg})"), message: e.to_string() })?;
        let cols = if shape.len() == 2 { shape[1] } else { 1 };
        Ok(match self.permuted {
            Some((h, _)) if name.ends_with("self_attn.q_proj.weight") || name.ends_with("self_attn.q_proj.bias") => {
                permute_rows(&values, h, cols, true)
            }
            Some((_, kv)) if name.ends_with("self_attn.k_proj.weight") || name.ends_with("self_attn.k_proj.bias") => {
                permute_rows(&values, kv, cols, true)
            }
            _ => values,
        })
    }
}

/// Known Llama 3.x rope scalings, tried against a file's `rope_freqs.weight`.
const LLAMA3_PRESETS: [(f64, f64, f64, f64); 2] = [(8.0, 1.0, 4.0, 8192.0), (32.0, 1.0, 4.0, 8192.0)];

/// The divisors llama.cpp stores in `rope_freqs.weight` for a rope scaling.
fn rope_divisors(theta: f64, k: usize, scaling: &RopeScaling) -> Vec<f32> {
    (0..k / 2)
        .map(|i| {
            let inv = theta.powf(-(2.0 * i as f64) / k as f64);
            (inv / scaling.apply(inv)) as f32
        })
        .collect()
}

/// Read a GGUF file into the project's model on `device`.
pub fn load(path: &Path, device: &Device) -> Result<GgufModel, ImportError> {
    let file = GgufFile::open(path).map_err(|e| file_err(path, e.to_string()))?;
    let bad = |field: &str, message: String| field_err(path, field, message);
    let arch = file.get_str("general.architecture").map_err(|e| file_err(path, e.to_string()))?.to_string();
    if !matches!(arch.as_str(), "llama" | "qwen2" | "qwen3") {
        return Err(bad(
            "general.architecture",
            format!("is `{arch}`; supported: llama (Llama, Mistral, SmolLM), qwen2, qwen3"),
        ));
    }
    let key = |k: &str| format!("{arch}.{k}");
    let need = |k: &str| file.get_usize(&key(k)).map_err(|e| bad(&key(k), e.to_string()));
    let opt_usize = |k: &str| file.get(&key(k)).map(|_| need(k)).transpose();
    let opt_f64 = |k: &str| -> Result<Option<f64>, ImportError> {
        match file.get(&key(k)) {
            None => Ok(None),
            // The shortest decimal that reads back as this f32 (1e-5, not 9.99999974e-6): what the
            // writer meant, as Hugging Face configs write it.
            Some(Value::F32(x)) => Ok(Some(x.to_string().parse().unwrap_or(*x as f64))),
            Some(Value::F64(x)) => Ok(Some(*x)),
            Some(other) => Err(bad(&key(k), format!("should be a float, is {}", other.value_type()))),
        }
    };

    let d_model = need("embedding_length")?;
    let n_heads = need("attention.head_count")?;
    let n_kv_heads = opt_usize("attention.head_count_kv")?.unwrap_or(n_heads);
    // The head width: `attention.key_length` (Qwen3's heads are wider than embedding / heads),
    // else embedding / heads; values and the rotation span the whole head.
    let k = opt_usize("attention.key_length")?.unwrap_or(if n_heads > 0 { d_model / n_heads } else { 0 });
    for field in ["rope.dimension_count", "attention.value_length"] {
        if let Some(v) = opt_usize(field)? {
            if v != k {
                return Err(bad(
                    &key(field),
                    format!("= {v}, but only heads whose keys, values and rotation are all {k} wide are supported"),
                ));
            }
        }
    }
    let head_dim = (k * n_heads != d_model).then_some(k);
    let embed = file
        .tensor("token_embd.weight")
        .map_err(|_| file_err(path, "has no token_embd.weight: not a language model"))?
        .shape();
    let vocab_size = embed[0];
    let theta = opt_f64("rope.freq_base")?.unwrap_or(10_000.0);
    let mut scaling = match file.get(&key("rope.scaling.type")) {
        None => None,
        Some(Value::String(t)) if t == "none" => None,
        Some(Value::String(t)) if t == "linear" => {
            Some(RopeScaling::Linear { factor: opt_f64("rope.scaling.factor")?.unwrap_or(1.0) })
        }
        Some(other) => {
            return Err(bad(
                &key("rope.scaling.type"),
                format!("is {other:?}; supported: none, linear (and llama3 via rope_freqs)"),
            ))
        }
    };
    let max_seq_len = opt_usize("context_length")?.unwrap_or(2048);
    let rope_freqs = file.tensors().iter().any(|t| t.name == "rope_freqs.weight");
    if rope_freqs {
        let (_, divisors) = file.tensor_f32("rope_freqs.weight").map_err(|e| file_err(path, e.to_string()))?;
        let top = divisors.iter().cloned().fold(1f32, f32::max) as f64;
        let mut candidates: Vec<RopeScaling> =
            LLAMA3_PRESETS
                .iter()
                .map(|&(factor, low_freq_factor, high_freq_factor, original_max_position_embeddings)| {
                    RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings }
                })
                .collect();
        // Every Llama 3.x uses low 1 and high 4; the original context is a power of two.
        for n in 4..=20 {
            candidates.push(RopeScaling::Llama3 {
                factor: top,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: f64::from(1u32 << n),
            });
        }
        let fits = |s: &RopeScaling| {
            let want = rope_divisors(theta, k, s);
            want.len() == divisors.len() && want.iter().zip(&divisors).all(|(a, b)| (a - b).abs() <= 1e-4 * b.abs())
        };
        scaling = Some(candidates.into_iter().find(fits).ok_or_else(|| {
            file_err(
                path,
                "rope_freqs.weight matches no Llama 3 rope scaling this importer knows (factor, low 1, high 4)",
            )
        })?);
    }

    let tied = !file.tensors().iter().any(|t| t.name == "output.weight");
    let qkv_bias = file.tensors().iter().any(|t| t.name.ends_with("attn_q.bias"));
    let qk_norm = file.tensors().iter().any(|t| t.name.ends_with("attn_q_norm.weight"));
    let config = ModelConfig {
        vocab_size,
        d_model,
        n_layers: need("block_count")?,
        n_heads,
        n_kv_heads,
        d_ff: need("feed_forward_length")?,
        max_seq_len,
        norm: Norm::Rms,
        norm_eps: opt_f64("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
        mlp: Mlp::Swiglu,
        position: Position::Rope { theta, scaling },
        tie_embeddings: tied,
        qk_norm,
        parallel_residual: false,
        bias: false,
        qkv_bias,
        init_std: 0.02,
        moe: None,
        mla: None,
        mup_base_width: None,
        head_dim,
    };
    config.validate().map_err(|e| bad(e.field, e.message))?;

    let mut names = BTreeMap::new();
    let mut unknown = Vec::new();
    let mut tensor_types: BTreeMap<String, usize> = BTreeMap::new();
    for t in file.tensors() {
        *tensor_types.entry(t.dtype.name().to_string()).or_default() += 1;
        if t.name == "rope_freqs.weight" {
            continue;
        }
        match hf_name(&t.name) {
            Some(h) => {
                names.insert(h, t.name.clone());
            }
            None => unknown.push(t.name.clone()),
        }
    }
    let source = Tensors { file: &file, names, unknown, permuted: (arch == "llama").then_some((n_heads, n_kv_heads)) };
    let model = weights::load_from(Transformer::new(&config, device), &source)
        .map_err(|source| ImportError::Weights { path: path.to_path_buf(), source })?;

    let tok = tokenizer_from_metadata(&file, path)?;
    let id = |k: &str| file.get(k).and_then(Value::as_integer).map(|v| v as u32);
    let bos_token_id = id("tokenizer.ggml.bos_token_id");
    let eos_token_ids: Vec<u32> = id("tokenizer.ggml.eos_token_id").into_iter().collect();
    let token = |i: Option<u32>| i.and_then(|i| tok.tokens.get(i as usize).cloned());
    Ok(GgufModel {
        path: path.to_path_buf(),
        arch,
        bos_token: token(bos_token_id),
        eos_token: token(eos_token_ids.first().copied()),
        config,
        model,
        tokenizer_json: tok.json,
        chat_template: file.get_str("tokenizer.chat_template").ok().map(str::to_string),
        eos_token_ids,
        bos_token_id,
        add_bos_token: tok.add_bos,
        tensor_types,
    })
}

/// ggml token types (llama.cpp's `llama_token_type`).
const TOKEN_NORMAL: i32 = 1;
const TOKEN_UNKNOWN: i32 = 2;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;
const TOKEN_UNUSED: i32 = 5;
const TOKEN_BYTE: i32 = 6;

/// SentencePiece's space marker (U+2581).
const SPACE: &str = "\u{2581}";

/// Pre-tokenizer split patterns by `tokenizer.ggml.pre` (llama.cpp's names), for those that
/// are not plain GPT-2 byte-level.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

struct GgufTokenizer {
    json: String,
    tokens: Vec<String>,
    /// Whether a prompt starts with the beginning-of-sequence token
    /// (`tokenizer.ggml.add_bos_token`; llama.cpp's default: yes for SentencePiece, no for BPE).
    add_bos: bool,
}

fn byte_level(use_regex: bool) -> Json {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

fn split(pattern: &str) -> Json {
    json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false})
}

/// A `tokenizer.json` from a GGUF file's tokenizer metadata: byte-level BPE (`gpt2`) or
/// SentencePiece (`llama`).
fn tokenizer_from_metadata(file: &GgufFile, path: &Path) -> Result<GgufTokenizer, ImportError> {
    let bad = |field: &str, message: String| field_err(path, field, message);
    let model = file.get_str("tokenizer.ggml.model").map_err(|e| bad("tokenizer.ggml.model", e.to_string()))?;
    let tokens =
        file.get_str_array("tokenizer.ggml.tokens").map_err(|e| bad("tokenizer.ggml.tokens", e.to_string()))?;
    let types: Vec<i32> = match file.get_i32_array("tokenizer.ggml.token_type") {
        Ok(t) if t.len() == tokens.len() => t.to_vec(),
        Ok(t) => {
            return Err(bad(
                "tokenizer.ggml.token_type",
                format!("has {} entries for {} tokens", t.len(), tokens.len()),
            ))
        }
        Err(_) => vec![TOKEN_NORMAL; tokens.len()],
    };
    let flag = |key: &str, default: bool| file.get_bool(key).unwrap_or(default);
    let id = |key: &str| file.get(key).and_then(Value::as_integer).and_then(|v| usize::try_from(v).ok());
    let spm = match model {
        "gpt2" => false,
        "llama" => true,
        other => {
            return Err(bad(
                "tokenizer.ggml.model",
                format!("is `{other}`; supported: `gpt2` (byte-level BPE: Llama 3, Qwen2, SmolLM, GPT-2) and `llama` (SentencePiece BPE: Llama 2, Mistral, TinyLlama)"),
            ))
        }
    };
    let add_bos = flag("tokenizer.ggml.add_bos_token", spm);
    let add_eos = flag("tokenizer.ggml.add_eos_token", false);
    let mut tokenizer = if spm {
        let scores =
            file.get_f32_array("tokenizer.ggml.scores").map_err(|e| bad("tokenizer.ggml.scores", e.to_string()))?;
        if scores.len() != tokens.len() {
            return Err(bad(
                "tokenizer.ggml.scores",
                format!("has {} entries for {} tokens", scores.len(), tokens.len()),
            ));
        }
        let unk = id("tokenizer.ggml.unknown_token_id")
            .or_else(|| types.iter().position(|&t| t == TOKEN_UNKNOWN))
            .and_then(|i| tokens.get(i));
        sentencepiece_json(
            tokens,
            scores,
            &types,
            unk.map(String::as_str),
            flag("tokenizer.ggml.add_space_prefix", true),
        )
    } else {
        let merges =
            file.get_str_array("tokenizer.ggml.merges").map_err(|e| bad("tokenizer.ggml.merges", e.to_string()))?;
        byte_level_json(tokens, merges, &types, file.get_str("tokenizer.ggml.pre").unwrap_or("default"))
            .map_err(|message| bad("tokenizer.ggml.pre", message))?
    };
    // What `tokenizer(text)` adds in transformers: the post-processor a Hugging Face
    // tokenizer.json of the same model has.
    let special = |key: &str, on: bool| on.then(|| id(key)).flatten().and_then(|i| tokens.get(i).map(|t| (t, i)));
    let (bos, eos) = (special("tokenizer.ggml.bos_token_id", add_bos), special("tokenizer.ggml.eos_token_id", add_eos));
    if bos.is_some() || eos.is_some() {
        tokenizer["post_processor"] = template_processing(bos, eos);
    }
    Ok(GgufTokenizer {
        json: serde_json::to_string(&tokenizer).expect("JSON values serialise"),
        tokens: tokens.to_vec(),
        add_bos: bos.is_some(),
    })
}

/// A `TemplateProcessing` post-processor putting `bos` before and `eos` after each sequence.
fn template_processing(bos: Option<(&String, usize)>, eos: Option<(&String, usize)>) -> Json {
    let tok = |t: &String| json!({"SpecialToken": {"id": t, "type_id": 0}});
    let seq = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    let wrap = |id: &str, type_id: u32| -> Vec<Json> {
        bos.iter().map(|(t, _)| tok(t)).chain([seq(id, type_id)]).chain(eos.iter().map(|(t, _)| tok(t))).collect()
    };
    let mut specials = serde_json::Map::new();
    for (t, i) in bos.iter().chain(eos.iter()) {
        specials.insert(t.to_string(), json!({"id": t, "ids": [i], "tokens": [t]}));
    }
    json!({"type": "TemplateProcessing", "single": wrap("A", 0),
           "pair": wrap("A", 0).into_iter().chain(wrap("B", 1)).collect::<Vec<_>>(),
           "special_tokens": specials})
}

/// Added tokens: control (special) and user-defined (not special) ones, and SentencePiece's
/// unknown token; every token is in the model's vocabulary too (as Hugging Face stores them),
/// so `tokenizers` keeps their ids instead of numbering them after the vocabulary.
fn vocab_and_added(tokens: &[String], types: &[i32]) -> (serde_json::Map<String, Json>, Vec<Json>) {
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let ty = types.get(i).copied().unwrap_or(TOKEN_NORMAL);
        // A piece listed twice maps to its last id, as in llama.cpp's `token_to_id`.
        vocab.insert(t.clone(), json!(i));
        if matches!(ty, TOKEN_CONTROL | TOKEN_USER_DEFINED | TOKEN_UNKNOWN) {
            added.push(json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": false, "special": ty != TOKEN_USER_DEFINED}));
        }
    }
    (vocab, added)
}

/// A byte-level BPE `tokenizer.json` (`tokenizer.ggml.model = gpt2`).
fn byte_level_json(tokens: &[String], merges: &[String], types: &[i32], pre: &str) -> Result<Json, String> {
    let pre_tokenizer = match pre {
        "default" | "gpt2" | "gpt-2" => byte_level(true),
        "llama3" | "llama-v3" | "llama-bpe" | "smaug-bpe" => {
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]})
        }
        "qwen2" | "deepseek-r1-qwen" => {
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]})
        }
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        other => return Err(format!("is `{other}`; supported: gpt2, llama-bpe, qwen2, smollm")),
    };
    let (vocab, added) = vocab_and_added(tokens, types);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    }))
}

/// A SentencePiece BPE `tokenizer.json` (`tokenizer.ggml.model = llama`), laid out as the
/// Llama 2 tokenizer.json on the Hugging Face hub: a `▁` prepended to each text fragment and
/// spaces replaced by `▁` (llama.cpp's `add_space_prefix`, done after every special token as
/// llama.cpp and transformers' legacy Llama tokenizer do), a BPE model with byte fallback
/// (`<0xNN>` tokens), and merges derived from the scores.
///
/// SentencePiece merges the adjacent pair whose concatenation is the normal piece of highest
/// score; a BPE model applies its lowest-ranked merge first. So every split of each normal
/// piece into two normal pieces is a merge, ranked by the piece's score (highest first), then
/// by the piece's id and the halves' ids (as transformers' `SentencePieceExtractor` does).
fn sentencepiece_json(tokens: &[String], scores: &[f32], types: &[i32], unk: Option<&str>, space_prefix: bool) -> Json {
    let normal: HashMap<&str, usize> =
        tokens.iter().enumerate().filter(|&(i, _)| types[i] == TOKEN_NORMAL).map(|(i, t)| (t.as_str(), i)).collect();
    let mut ranked: Vec<(f32, usize, usize, usize, &str, &str)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if types[i] != TOKEN_NORMAL {
            continue;
        }
        for (cut, _) in t.char_indices().skip(1) {
            let (l, r) = t.split_at(cut);
            if let (Some(&li), Some(&ri)) = (normal.get(l), normal.get(r)) {
                ranked.push((scores[i], i, li, ri, l, r));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2, a.3).cmp(&(b.1, b.2, b.3))));
    let merges: Vec<Json> = ranked.iter().map(|m| json!([m.4, m.5])).collect();
    let (vocab, added) = vocab_and_added(tokens, types);
    let replace = |from: &str, to: &str| json!({"type": "Replace", "pattern": {"String": from}, "content": to});
    let mut normalizers = Vec::new();
    if space_prefix {
        normalizers.push(json!({"type": "Prepend", "prepend": SPACE}));
    }
    normalizers.push(replace(" ", SPACE));
    let mut decoders = vec![replace(SPACE, " "), json!({"type": "ByteFallback"}), json!({"type": "Fuse"})];
    if space_prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    })
}

/// The `tokenizer.ggml.*` metadata of a `tokenizer.json`: a byte-level BPE one as `gpt2`, a
/// SentencePiece-style one (byte fallback, `▁` for spaces: Llama 2, Mistral) as `llama` with
/// scores that rank its merges. `add_bos` is `tokenizer.ggml.add_bos_token`.
fn tokenizer_metadata(
    tokenizer_json: &str,
    vocab_size: usize,
    add_bos: Option<bool>,
) -> Result<Vec<(String, Value)>, ImportError> {
    let refuse = |why: String| ImportError::Export(format!("tokenizer.json {why}"));
    let tok: Json = serde_json::from_str(tokenizer_json).map_err(|e| refuse(format!("is not JSON: {e}")))?;
    if tok["model"]["type"] != "BPE" {
        return Err(refuse("is not a BPE tokenizer".into()));
    }
    let spm = tok["model"]["byte_fallback"].as_bool() == Some(true);
    let unk = tok["model"]["unk_token"].as_str();
    let mut tokens: Vec<Option<String>> = vec![None; vocab_size];
    let mut types = vec![TOKEN_NORMAL; vocab_size];
    let mut place = |id: u64, text: &str, ty: i32| -> Result<(), ImportError> {
        let slot = tokens
            .get_mut(id as usize)
            .ok_or_else(|| refuse(format!("has token id {id} beyond the model's vocabulary of {vocab_size}")))?;
        *slot = Some(text.to_string());
        types[id as usize] = ty;
        Ok(())
    };
    let vocab = tok["model"]["vocab"].as_object().ok_or_else(|| refuse("has no model.vocab".into()))?;
    let is_byte_token = |t: &str| t.len() == 6 && t.starts_with("<0x") && t.ends_with('>');
    for (t, id) in vocab {
        let ty = if spm && is_byte_token(t) { TOKEN_BYTE } else { TOKEN_NORMAL };
        place(id.as_u64().ok_or_else(|| refuse(format!("gives `{t}` a non-integer id")))?, t, ty)?;
    }
    for a in tok["added_tokens"].as_array().into_iter().flatten() {
        let content = a["content"].as_str().unwrap_or_default();
        let ty = match a["special"].as_bool().unwrap_or(false) {
            _ if spm && Some(content) == unk => TOKEN_UNKNOWN,
            true => TOKEN_CONTROL,
            false => TOKEN_USER_DEFINED,
        };
        place(a["id"].as_u64().unwrap_or(u64::MAX), content, ty)?;
    }
    // Ids the tokenizer does not use (a vocabulary padded for speed) get placeholder names.
    let tokens: Vec<String> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.unwrap_or_else(|| {
                types[i] = TOKEN_UNUSED;
                format!("[PAD{i}]")
            })
        })
        .collect();
    let merges: Vec<String> = tok["model"]["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match m {
            Json::String(s) => s.clone(),
            Json::Array(pair) => pair.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(" "),
            _ => String::new(),
        })
        .collect();
    let mut meta: Vec<(String, Value)> = if spm {
        let (norm, pre) = (&tok["normalizer"], &tok["pre_tokenizer"]);
        let parts = |v: &Json, key: &str| -> Vec<Json> {
            match v[key].as_array() {
                Some(list) => list.clone(),
                None if v.is_object() => vec![v.clone()],
                None => Vec::new(),
            }
        };
        let norms = parts(norm, "normalizers");
        let metaspace = parts(pre, "pretokenizers").into_iter().find(|p| p["type"] == "Metaspace");
        let replaces_spaces = metaspace.is_some()
            || norms.iter().any(|n| n["type"] == "Replace" && n["pattern"]["String"] == " " && n["content"] == SPACE);
        if !replaces_spaces {
            return Err(refuse(
                "is a byte-fallback BPE that does not write spaces as `▁`; llama.cpp's SentencePiece tokenizer could not reproduce it".into(),
            ));
        }
        let space_prefix = norms.iter().any(|n| n["type"] == "Prepend" && n["prepend"] == SPACE)
            || metaspace.is_some_and(|m| {
                m["prepend_scheme"].as_str().map_or(m["add_prefix_space"].as_bool().unwrap_or(true), |s| s != "never")
            });
        // A normal piece's score ranks the first merge that makes it (SentencePiece merges the
        // pair making the piece of highest score); pieces no merge makes come after them all.
        let mut rank: HashMap<String, usize> = HashMap::new();
        for (r, m) in merges.iter().enumerate() {
            rank.entry(m.replacen(' ', "", 1)).or_insert(r);
        }
        let scores: Vec<f32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| match (types[i], rank.get(t)) {
                (TOKEN_NORMAL, Some(&r)) => -(r as f32),
                (TOKEN_NORMAL, None) => -((merges.len() + i) as f32),
                _ => 0.0,
            })
            .collect();
        let unk_id = unk.and_then(|u| tokens.iter().position(|t| t == u));
        let mut meta: Vec<(String, Value)> = vec![
            ("tokenizer.ggml.model".into(), "llama".into()),
            ("tokenizer.ggml.pre".into(), "default".into()),
            ("tokenizer.ggml.tokens".into(), Value::Array(gguf::Array::String(tokens))),
            ("tokenizer.ggml.scores".into(), Value::Array(gguf::Array::F32(scores))),
            ("tokenizer.ggml.token_type".into(), Value::Array(gguf::Array::I32(types))),
            ("tokenizer.ggml.add_space_prefix".into(), Value::Bool(space_prefix)),
        ];
        if let Some(u) = unk_id {
            meta.push(("tokenizer.ggml.unknown_token_id".into(), (u as u32).into()));
        }
        meta
    } else {
        let pre = &tok["pre_tokenizer"];
        let is_byte_level =
            |v: &Json, regex: bool| v["type"] == "ByteLevel" && v["use_regex"].as_bool().unwrap_or(true) == regex;
        let seq = pre["pretokenizers"].as_array().cloned().unwrap_or_default();
        let split_pattern = |v: &Json| v["pattern"]["Regex"].as_str().map(str::to_string);
        let pre_name = if is_byte_level(pre, true) {
            "gpt2"
        } else if seq.len() == 2
            && is_byte_level(&seq[1], false)
            && split_pattern(&seq[0]).as_deref() == Some(LLAMA3_SPLIT)
        {
            "llama-bpe"
        } else if seq.len() == 2
            && is_byte_level(&seq[1], false)
            && split_pattern(&seq[0]).as_deref() == Some(QWEN2_SPLIT)
        {
            "qwen2"
        } else if seq.len() == 2 && seq[0]["type"] == "Digits" && is_byte_level(&seq[1], true) {
            "smollm"
        } else {
            return Err(refuse(
                "has a pre-tokenizer llama.cpp has no name for (supported: GPT-2 byte-level, Llama 3, Qwen2, SmolLM, SentencePiece byte-fallback)"
                    .into(),
            ));
        };
        vec![
            ("tokenizer.ggml.model".into(), "gpt2".into()),
            ("tokenizer.ggml.pre".into(), pre_name.into()),
            ("tokenizer.ggml.tokens".into(), Value::Array(gguf::Array::String(tokens))),
            ("tokenizer.ggml.token_type".into(), Value::Array(gguf::Array::I32(types))),
            ("tokenizer.ggml.merges".into(), Value::Array(gguf::Array::String(merges))),
        ]
    };
    if let Some(flag) = add_bos {
        meta.push(("tokenizer.ggml.add_bos_token".into(), Value::Bool(flag)));
    }
    Ok(meta)
}

/// The ggml type a matrix of rows `cols` wide gets when `wanted` is asked for: `wanted` when
/// the rows are whole blocks of it, else Q8_0, else F16.
fn matrix_type(wanted: GgmlType, cols: usize) -> GgmlType {
    [wanted, GgmlType::Q8_0, GgmlType::F16].into_iter().find(|t| cols % t.block_size() == 0).unwrap_or(GgmlType::F32)
}

/// What an export wrote: tensors per ggml type.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub tensor_types: BTreeMap<String, usize>,
    pub bytes: u64,
}

/// Write `model` as a GGUF file at `path` (atomically; an existing file is refused) with its
/// matrices in `matrix: GgmlType` (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K, Q5_0, Q5_1).
pub fn export(
    model: &Transformer,
    spec: &hf::ExportSpec<'_>,
    matrix: GgmlType,
    name: &str,
    path: &Path,
) -> Result<ExportReport, ImportError> {
    let cfg = model.config();
    // The same architectures as a Hugging Face export, checked the same way.
    hf::config_json(cfg, spec.eos_token_ids, spec.bos_token_id)?;
    if !matrix.can_quantize() {
        return Err(ImportError::Export(format!("cannot write matrices as {}", matrix.name())));
    }
    if path.exists() {
        return Err(file_err(path, "already exists; choose a new file name (an export never overwrites)"));
    }
    let arch = match (cfg.qk_norm, cfg.qkv_bias) {
        (true, _) => "qwen3",
        (false, true) => "qwen2",
        (false, false) => "llama",
    };
    let Position::Rope { theta, scaling } = cfg.position else { unreachable!("checked by config_json") };
    let k = cfg.head_dim();
    let mut w = GgufWriter::new();
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), arch.into()),
        ("general.name".into(), name.into()),
        (format!("{arch}.context_length"), (cfg.max_seq_len as u32).into()),
        (format!("{arch}.embedding_length"), (cfg.d_model as u32).into()),
        (format!("{arch}.block_count"), (cfg.n_layers as u32).into()),
        (format!("{arch}.feed_forward_length"), (cfg.d_ff as u32).into()),
        (format!("{arch}.attention.head_count"), (cfg.n_heads as u32).into()),
        (format!("{arch}.attention.head_count_kv"), (cfg.n_kv_heads as u32).into()),
        (format!("{arch}.attention.layer_norm_rms_epsilon"), (cfg.norm_eps as f32).into()),
        (format!("{arch}.rope.freq_base"), (theta as f32).into()),
        (format!("{arch}.rope.dimension_count"), (k as u32).into()),
        (format!("{arch}.attention.key_length"), (k as u32).into()),
        (format!("{arch}.attention.value_length"), (k as u32).into()),
    ];
    if let Some(RopeScaling::Linear { factor }) = scaling {
        meta.push((format!("{arch}.rope.scaling.type"), "linear".into()));
        meta.push((format!("{arch}.rope.scaling.factor"), (factor as f32).into()));
    }
    meta.extend(tokenizer_metadata(spec.tokenizer_json, cfg.vocab_size, spec.add_bos_token)?);
    if let Some(b) = spec.bos_token_id {
        meta.push(("tokenizer.ggml.bos_token_id".into(), b.into()));
    }
    if let Some(&e) = spec.eos_token_ids.first() {
        meta.push(("tokenizer.ggml.eos_token_id".into(), e.into()));
    }
    if let Some(t) = spec.chat_template {
        meta.push(("tokenizer.chat_template".into(), t.into()));
    }
    for (key, value) in meta {
        w.add_metadata(key.clone(), value).map_err(|e| ImportError::Export(format!("metadata {key}: {e}")))?;
    }
    let mut report = ExportReport::default();
    if let Some(s @ RopeScaling::Llama3 { .. }) = &scaling {
        let div = rope_divisors(theta, k, s);
        w.add_tensor_f32("rope_freqs.weight", &[div.len()], &div, GgmlType::F32)
            .map_err(|e| ImportError::Export(format!("rope_freqs.weight: {e}")))?;
        *report.tensor_types.entry("F32".into()).or_default() += 1;
    }
    let counts: HashMap<&str, usize> = HashMap::from([("q_proj", cfg.n_heads), ("k_proj", cfg.n_kv_heads)]);
    for (hf, shape, values) in weights::named_tensors(model) {
        let gg = gguf_name(&hf).ok_or_else(|| ImportError::Export(format!("tensor {hf} has no GGUF name")))?;
        let cols = *shape.last().unwrap_or(&1);
        let proj = hf.split('.').rev().nth(1).unwrap_or("");
        let values = match counts.get(proj) {
            Some(&heads) if arch == "llama" => {
                permute_rows(&values, heads, if shape.len() == 2 { cols } else { 1 }, false)
            }
            _ => values,
        };
        let ty = if shape.len() == 1 { GgmlType::F32 } else { matrix_type(matrix, cols) };
        w.add_tensor_f32(&gg, &shape, &values, ty).map_err(|e| ImportError::Export(format!("{gg}: {e}")))?;
        *report.tensor_types.entry(ty.name().to_string()).or_default() += 1;
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| file_err(parent, format!("cannot create: {e}")))?;
    w.write_file(path).map_err(|e| file_err(path, e.to_string()))?;
    report.bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        for hf in [
            "model.embed_tokens.weight",
            "model.norm.weight",
            "lm_head.weight",
            "model.layers.3.self_attn.q_proj.bias",
            "model.layers.0.mlp.down_proj.weight",
            "model.layers.11.post_attention_layernorm.weight",
        ] {
            let gg = gguf_name(hf).unwrap();
            assert_eq!(hf_name(&gg).as_deref(), Some(hf), "{gg}");
        }
        assert_eq!(gguf_name("model.layers.2.self_attn.k_proj.weight").as_deref(), Some("blk.2.attn_k.weight"));
        assert_eq!(hf_name("blk.0.ffn_gate_exps.weight"), None);
    }

    #[test]
    fn permutation_pairs_the_halves_and_inverts() {
        // One head of K = 4, one column: rotate-half rows [a0 a1 | b0 b1] become [a0 b0 a1 b1].
        let x = [0.0, 1.0, 10.0, 11.0, 100.0, 101.0, 110.0, 111.0];
        let p = permute_rows(&x, 2, 1, false);
        assert_eq!(p, vec![0.0, 10.0, 1.0, 11.0, 100.0, 110.0, 101.0, 111.0]);
        assert_eq!(permute_rows(&p, 2, 1, true), x.to_vec());
    }

    #[test]
    fn fallback_types() {
        assert_eq!(matrix_type(GgmlType::Q4_K, 512), GgmlType::Q4_K);
        assert_eq!(matrix_type(GgmlType::Q4_K, 96), GgmlType::Q8_0);
        assert_eq!(matrix_type(GgmlType::Q8_0, 48), GgmlType::F16);
    }
}
