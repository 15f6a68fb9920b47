//! Hugging Face model folders of the Llama family, in and out.
//!
//! A folder as `save_pretrained` writes it:
//!
//! ```text
//! config.json                      architecture (model_type llama | mistral | qwen2)
//! model.safetensors                weights (F32, F16 or BF16), or shards
//! model.safetensors.index.json       with their weight_map
//! tokenizer.json                   the tokenizer (Hugging Face `tokenizers` format)
//! tokenizer_config.json            special tokens and, in transformers 4, the chat template
//! chat_template.jinja              the chat template (transformers 5)
//! generation_config.json           end-of-sequence ids, among others
//! ```
//!
//! Reading maps `config.json` onto a [`ModelConfig`] ([`model_config`]) and loads every tensor
//! by name: the project's parameter names are Hugging Face's. Writing ([`export`]) is the
//! inverse for the configurations that have a Hugging Face equivalent (RMSNorm, SwiGLU, RoPE,
//! no biases or q/k/v biases only, dense, no QK-norm, no muP, no MLA) and refuses the others,
//! naming the field.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use model::burn::prelude::Device;
use model::weights::{self, TensorSource};
use model::{Mlp, ModelConfig, Norm, Position, RopeScaling, Transformer};
use safetensors::SafeTensors;
use serde_json::{json, Value};

use crate::error::{field_err, file_err, ImportError};

/// The model families read and written, by `config.json`'s `model_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Llama 1-3, SmolLM, TinyLlama, ... (`LlamaForCausalLM`).
    Llama,
    /// Mistral 7B and its kin (`MistralForCausalLM`): Llama with a sliding window.
    Mistral,
    /// Qwen2 / Qwen2.5 (`Qwen2ForCausalLM`): Llama with biases on q, k and v.
    Qwen2,
    /// Qwen3 (`Qwen3ForCausalLM`): Llama with an RMSNorm on each query and key head (before
    /// the rotation) and heads usually wider than `hidden_size / num_attention_heads`.
    Qwen3,
}

impl Family {
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
        }
    }

    fn architecture(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForCausalLM",
            Family::Mistral => "MistralForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Qwen3 => "Qwen3ForCausalLM",
        }
    }
}

/// What a folder's `config.json` and `generation_config.json` say, resolved.
#[derive(Clone, Debug)]
pub struct HfConfig {
    pub family: Family,
    pub model: ModelConfig,
    /// Token ids that end a sequence (`eos_token_id`, a number or a list; the generation
    /// config's take precedence).
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
    /// The dtype the weights are stored in (`torch_dtype` or `dtype`), for information.
    pub dtype: Option<String>,
}

/// A Hugging Face folder read into the project's model.
pub struct HfModel {
    pub dir: PathBuf,
    pub config: HfConfig,
    pub model: Transformer,
    /// `tokenizer.json`, verbatim.
    pub tokenizer_json: String,
    /// The chat template (Jinja), from `chat_template.jinja` or `tokenizer_config.json`.
    pub chat_template: Option<String>,
    /// `tokenizer_config.json`'s `bos_token` / `eos_token` strings, for the chat template.
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// `tokenizer_config.json`'s `add_bos_token`, when it says.
    pub add_bos_token: Option<bool>,
}

fn read_json(path: &Path) -> Result<Value, ImportError> {
    let text = fs::read_to_string(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| file_err(path, format!("not valid JSON: {e}")))
}

/// `config.json` (and optionally `generation_config.json`'s end-of-sequence ids) as a resolved
/// architecture. `path` names the file in errors.
pub fn model_config(cfg: &Value, path: &Path) -> Result<HfConfig, ImportError> {
    let bad = |field: &str, message: String| field_err(path, field, message);
    let model_type = cfg.get("model_type").and_then(Value::as_str).unwrap_or("");
    let family = match model_type {
        "llama" => Family::Llama,
        "mistral" => Family::Mistral,
        "qwen2" => Family::Qwen2,
        "qwen3" => Family::Qwen3,
        other => {
            return Err(bad(
                "model_type",
                format!("is `{other}`; supported: llama (Llama, SmolLM, TinyLlama), mistral, qwen2, qwen3"),
            ))
        }
    };
    let usize_of = |field: &str| -> Result<Option<usize>, ImportError> {
        match cfg.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| bad(field, format!("should be a non-negative integer, is {v}"))),
        }
    };
    let f64_of = |v: &Value, field: &str| -> Result<Option<f64>, ImportError> {
        match v.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x.as_f64().map(Some).ok_or_else(|| bad(field, format!("should be a number, is {x}"))),
        }
    };
    let bool_of = |field: &str| cfg.get(field).and_then(Value::as_bool);
    let need =
        |field: &str| -> Result<usize, ImportError> { usize_of(field)?.ok_or_else(|| bad(field, "is missing".into())) };

    let d_model = need("hidden_size")?;
    let n_heads = need("num_attention_heads")?;
    let n_kv_heads = usize_of("num_key_value_heads")?.unwrap_or(n_heads);
    // Heads of another width than hidden_size / num_attention_heads (Qwen3, Mistral NeMo);
    // left unset when they are that width, as the project's own configs leave it.
    let head_dim = usize_of("head_dim")?.filter(|&k| n_heads == 0 || k * n_heads != d_model);
    match cfg.get("hidden_act").and_then(Value::as_str) {
        None | Some("silu") => {}
        Some(other) => return Err(bad("hidden_act", format!("is `{other}`; only `silu` (SwiGLU) is supported"))),
    }
    if bool_of("mlp_bias") == Some(true) {
        return Err(bad("mlp_bias", "is true; MLP biases are not supported".into()));
    }
    // Llama's attention_bias puts biases on q, k, v and o; Qwen2 has them on q, k, v only.
    if bool_of("attention_bias") == Some(true) {
        return Err(bad(
            "attention_bias",
            "is true (biases on q, k, v and o); only Qwen2's q/k/v biases are supported".into(),
        ));
    }

    // Rotary positions: transformers 5 writes `rope_parameters`, 4 wrote `rope_theta` and
    // `rope_scaling`.
    let (rope, rope_field) = match cfg.get("rope_parameters") {
        Some(p @ Value::Object(_)) => (p.clone(), "rope_parameters"),
        _ => {
            let mut p = cfg.get("rope_scaling").filter(|v| v.is_object()).cloned().unwrap_or_else(|| json!({}));
            if let Some(t) = cfg.get("rope_theta") {
                p["rope_theta"] = t.clone();
            }
            (p, "rope_scaling")
        }
    };
    let theta = f64_of(&rope, "rope_theta")?.unwrap_or(10_000.0);
    let rope_type = rope.get("rope_type").or_else(|| rope.get("type")).and_then(Value::as_str).unwrap_or("default");
    let factor = || -> Result<f64, ImportError> {
        f64_of(&rope, "factor")?.ok_or_else(|| bad(&format!("{rope_field}.factor"), "is missing".into()))
    };
    let scaling = match rope_type {
        "default" => None,
        "linear" => Some(RopeScaling::Linear { factor: factor()? }),
        "llama3" => {
            let get = |f: &str| -> Result<f64, ImportError> {
                f64_of(&rope, f)?.ok_or_else(|| bad(&format!("{rope_field}.{f}"), "is missing".into()))
            };
            Some(RopeScaling::Llama3 {
                factor: factor()?,
                low_freq_factor: get("low_freq_factor")?,
                high_freq_factor: get("high_freq_factor")?,
                original_max_position_embeddings: get("original_max_position_embeddings")?,
            })
        }
        other => {
            return Err(bad(
                &format!("{rope_field}.rope_type"),
                format!("is `{other}`; supported: default, linear, llama3"),
            ))
        }
    };

    let mut max_seq_len = usize_of("max_position_embeddings")?.unwrap_or(2048);
    // A sliding window changes nothing while the context fits in it: cap the context there.
    let window = match family {
        Family::Mistral => usize_of("sliding_window")?,
        Family::Qwen2 | Family::Qwen3 if bool_of("use_sliding_window") == Some(true) => usize_of("sliding_window")?,
        _ => None,
    };
    if let Some(w) = window {
        max_seq_len = max_seq_len.min(w.max(1));
    }

    let model = ModelConfig {
        vocab_size: need("vocab_size")?,
        d_model,
        n_layers: need("num_hidden_layers")?,
        n_heads,
        n_kv_heads,
        d_ff: need("intermediate_size")?,
        max_seq_len,
        norm: Norm::Rms,
        norm_eps: f64_of(cfg, "rms_norm_eps")?.unwrap_or(1e-6),
        mlp: Mlp::Swiglu,
        position: Position::Rope { theta, scaling },
        tie_embeddings: bool_of("tie_word_embeddings").unwrap_or(false),
        qk_norm: family == Family::Qwen3,
        parallel_residual: false,
        bias: false,
        qkv_bias: family == Family::Qwen2,
        init_std: f64_of(cfg, "initializer_range")?.unwrap_or(0.02),
        moe: None,
        mla: None,
        mup_base_width: None,
        head_dim,
    };
    model.validate().map_err(|e| bad(e.field, e.message))?;
    let ids = token_ids;
    Ok(HfConfig {
        family,
        model,
        eos_token_ids: ids(cfg.get("eos_token_id")),
        bos_token_id: ids(cfg.get("bos_token_id")).first().copied(),
        dtype: cfg.get("torch_dtype").or_else(|| cfg.get("dtype")).and_then(Value::as_str).map(str::to_string),
    })
}

/// Token ids written as one number or a list (`eos_token_id` in config.json and
/// generation_config.json).
fn token_ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).map(|n| n as u32).collect(),
        _ => Vec::new(),
    }
}

/// Whether `dir` looks like a Hugging Face model folder (it has a `config.json` with a
/// `model_type`).
pub fn is_hf_folder(dir: &Path) -> bool {
    dir.is_dir() && read_json(&dir.join("config.json")).ok().and_then(|v| v.get("model_type").cloned()).is_some()
}

/// The safetensors files of a folder: the shards its index names, in order, or the one
/// `model.safetensors`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let v = read_json(&index)?;
        let map = v
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| field_err(&index, "weight_map", "is missing or not an object"))?;
        let mut files: Vec<String> = Vec::new();
        for (name, file) in map {
            let file =
                file.as_str().ok_or_else(|| field_err(&index, &format!("weight_map.{name}"), "is not a file name"))?;
            if file.contains('/') || file.contains("..") {
                return Err(field_err(&index, &format!("weight_map.{name}"), format!("`{file}` leaves the folder")));
            }
            if !files.iter().any(|f| f == file) {
                files.push(file.to_string());
            }
        }
        files.sort();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    if dir.join("pytorch_model.bin").exists() {
        return Err(file_err(
            dir,
            "has only pytorch_model.bin (pickle); convert it to safetensors first (transformers: save_pretrained(..., safe_serialization=True))",
        ));
    }
    Err(file_err(dir, "has no model.safetensors and no model.safetensors.index.json"))
}

/// Tensors of a folder the model does not hold and that carry nothing: rotary tables some
/// older checkpoints store.
fn ignorable(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
}

/// The shards of a checkpoint, renamed where needed: ignorable tensors dropped, and a stored
/// `lm_head.weight` dropped when the embeddings are tied (after checking it equals them).
struct Folder<'a> {
    shards: &'a [SafeTensors<'a>],
    tied: bool,
}

impl TensorSource for Folder<'_> {
    fn names(&self) -> Vec<String> {
        self.shards.names().into_iter().filter(|n| !ignorable(n) && !(self.tied && n == "lm_head.weight")).collect()
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.shards.shape(name)
    }
    fn read(&self, name: &str) -> Result<Vec<f32>, weights::WeightsError> {
        self.shards.read(name)
    }
}

/// Read a Hugging Face folder into the project's model on `device`.
pub fn load(dir: &Path, device: &Device) -> Result<HfModel, ImportError> {
    let config_path = dir.join("config.json");
    let mut config = model_config(&read_json(&config_path)?, &config_path)?;
    let gen_path = dir.join("generation_config.json");
    if gen_path.exists() {
        let g = read_json(&gen_path)?;
        if g.get("eos_token_id").is_some_and(|v| v.is_number() || v.is_array()) {
            config.eos_token_ids = token_ids(g.get("eos_token_id"));
        }
    }

    let files = weight_files(dir)?;
    let bytes: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(f).map_err(|e| file_err(f, format!("cannot read: {e}"))))
        .collect::<Result<_, _>>()?;
    let shards: Vec<SafeTensors<'_>> = bytes
        .iter()
        .zip(&files)
        .map(|(b, f)| {
            SafeTensors::deserialize(b).map_err(|e| file_err(f, format!("not a valid safetensors file: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let tied = config.model.tie_embeddings;
    if tied && shards.shape("lm_head.weight").is_some() {
        let weights_err = |source| ImportError::Weights { path: dir.to_path_buf(), source };
        let head = shards.read("lm_head.weight").map_err(weights_err)?;
        let embed = shards.read("model.embed_tokens.weight").map_err(weights_err)?;
        if head != embed {
            return Err(field_err(
                &config_path,
                "tie_word_embeddings",
                "is true but lm_head.weight differs from model.embed_tokens.weight",
            ));
        }
    }
    let source = Folder { shards: &shards, tied };
    let model = weights::load_from(Transformer::new(&config.model, device), &source)
        .map_err(|source| ImportError::Weights { path: dir.to_path_buf(), source })?;

    let tok_path = dir.join("tokenizer.json");
    let tokenizer_json = fs::read_to_string(&tok_path).map_err(|e| file_err(&tok_path, format!("cannot read: {e}")))?;
    let tc_path = dir.join("tokenizer_config.json");
    let tc = if tc_path.exists() { read_json(&tc_path)? } else { json!({}) };
    let token_text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    let jinja = dir.join("chat_template.jinja");
    let chat_template = if jinja.exists() {
        Some(fs::read_to_string(&jinja).map_err(|e| file_err(&jinja, format!("cannot read: {e}")))?)
    } else {
        match tc.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            // A list of named templates: the one named "default".
            Some(Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        }
    };
    Ok(HfModel {
        dir: dir.to_path_buf(),
        config,
        model,
        tokenizer_json,
        chat_template,
        bos_token: token_text(tc.get("bos_token")),
        eos_token: token_text(tc.get("eos_token")),
        add_bos_token: tc.get("add_bos_token").and_then(Value::as_bool),
    })
}

/// The Hugging Face `config.json` of an architecture, or why it has none (the field).
pub fn config_json(cfg: &ModelConfig, eos_token_ids: &[u32], bos_token_id: Option<u32>) -> Result<Value, ImportError> {
    let refuse = |field: &str, why: &str| {
        Err(ImportError::Export(format!(
            "`{field}` {why}; a Hugging Face Llama, Qwen2 or Qwen3 model has no such option"
        )))
    };
    if cfg.norm != Norm::Rms {
        return refuse("norm", "is LayerNorm");
    }
    if cfg.mlp != Mlp::Swiglu {
        return refuse("mlp", "is not SwiGLU");
    }
    let Position::Rope { theta, scaling } = cfg.position else {
        return refuse("position", "is learned");
    };
    if cfg.bias {
        return refuse("bias", "is true (biases on every linear layer)");
    }
    if cfg.qk_norm && cfg.qkv_bias {
        return refuse(
            "qk_norm",
            "is true with qkv_bias (Qwen3 normalises queries and keys, Qwen2 biases them; none does both)",
        );
    }
    if cfg.parallel_residual {
        return refuse("parallel_residual", "is true");
    }
    if cfg.moe.is_some() {
        return refuse("moe", "is set");
    }
    if cfg.mla.is_some() {
        return refuse("mla", "is set");
    }
    if cfg.mup_base_width.is_some() {
        return refuse("mup_base_width", "is set (muP scales logits and attention)");
    }
    let family = match (cfg.qk_norm, cfg.qkv_bias) {
        (true, _) => Family::Qwen3,
        (false, true) => Family::Qwen2,
        (false, false) => Family::Llama,
    };
    let rope_scaling = match scaling {
        None => Value::Null,
        Some(RopeScaling::Linear { factor }) => json!({"rope_type": "linear", "factor": factor}),
        Some(RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings }) => {
            json!({"rope_type": "llama3", "factor": factor, "low_freq_factor": low_freq_factor,
                   "high_freq_factor": high_freq_factor,
                   "original_max_position_embeddings": original_max_position_embeddings})
        }
    };
    let eos = match eos_token_ids {
        [one] => json!(one),
        many => json!(many),
    };
    Ok(json!({
        "architectures": [family.architecture()],
        "model_type": family.model_type(),
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.d_ff,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim(),
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": theta,
        "rope_scaling": rope_scaling,
        "tie_word_embeddings": cfg.tie_embeddings,
        "attention_bias": false,
        "mlp_bias": false,
        "initializer_range": cfg.init_std,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    }))
}

/// What an exported folder carries besides the weights.
pub struct ExportSpec<'a> {
    /// `tokenizer.json` text.
    pub tokenizer_json: &'a str,
    /// A Jinja chat template for `chat_template.jinja` and `tokenizer_config.json`.
    pub chat_template: Option<&'a str>,
    pub bos_token: Option<&'a str>,
    pub eos_token: Option<&'a str>,
    pub eos_token_ids: &'a [u32],
    pub bos_token_id: Option<u32>,
    /// Whether prompts start with `bos_token` (`add_bos_token`), when known.
    pub add_bos_token: Option<bool>,
}

/// Write `model` as a Hugging Face folder at `dir` (F32 weights). The folder is written under
/// a temporary name beside it and renamed into place, so `dir` appears only when complete; an
/// existing `dir` is refused, never overwritten.
pub fn export(model: &Transformer, spec: &ExportSpec<'_>, dir: &Path) -> Result<(), ImportError> {
    let config = config_json(model.config(), spec.eos_token_ids, spec.bos_token_id)?;
    if dir.exists() {
        return Err(file_err(dir, "already exists; choose a new folder (an export never overwrites)"));
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| file_err(parent, format!("cannot create: {e}")))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "export".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp).map_err(|e| file_err(&tmp, format!("cannot create: {e}")))?;
    let result = (|| -> Result<(), ImportError> {
        let write = |file: &str, bytes: &[u8]| -> Result<(), ImportError> {
            let p = tmp.join(file);
            let mut f = fs::File::create(&p).map_err(|e| file_err(&p, format!("cannot create: {e}")))?;
            std::io::Write::write_all(&mut f, bytes).map_err(|e| file_err(&p, format!("cannot write: {e}")))?;
            f.sync_all().map_err(|e| file_err(&p, format!("cannot sync: {e}")))
        };
        let pretty = |v: &Value| serde_json::to_vec_pretty(v).expect("JSON values serialise");
        write("config.json", &pretty(&config))?;
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        write("model.safetensors", &weights::to_safetensors(model, &meta))?;
        write("tokenizer.json", spec.tokenizer_json.as_bytes())?;
        let mut tc = json!({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": model.config().max_seq_len,
                            "clean_up_tokenization_spaces": false});
        if let Some(b) = spec.bos_token {
            tc["bos_token"] = json!(b);
        }
        if let Some(e) = spec.eos_token {
            tc["eos_token"] = json!(e);
        }
        if let Some(a) = spec.add_bos_token {
            tc["add_bos_token"] = json!(a);
        }
        if let Some(t) = spec.chat_template {
            tc["chat_template"] = json!(t);
            write("chat_template.jinja", t.as_bytes())?;
        }
        write("tokenizer_config.json", &pretty(&tc))?;
        let gen = json!({"bos_token_id": spec.bos_token_id, "eos_token_id": config["eos_token_id"]});
        write("generation_config.json", &pretty(&gen))?;
        fs::rename(&tmp, dir).map_err(|e| file_err(dir, format!("cannot move the finished folder into place: {e}")))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}
