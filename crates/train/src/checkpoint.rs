//! Checkpoints: one folder per saved step, written atomically.
//!
//! ```text
//! <out_dir>/checkpoints/step-000200/
//!     model.safetensors   weights, Hugging Face Llama names and layout (portable)
//!     config.json         the full resolved config (model architecture + run recipe)
//!     optimizer.bpk       optimiser state (burn's format, keyed by the model's stable param ids)
//!     tokenizer.json      the tokenizer the model was trained with
//!     tokenizer_config.json  only for an imported model's tokenizer: its chat template,
//!                         special-token strings and end-of-sequence ids (Hugging Face's file)
//!     state.json          step, sampler RNG state, tokens seen, and the size and SHA-256 of
//!                         every file above
//! ```
//!
//! Atomicity: the folder is written under a temporary name, every file is fsynced, then the
//! folder is renamed into place, so a crash leaves either the old set of checkpoints or the
//! new one, never a half-written folder under a real name. Loading re-hashes every file against
//! `state.json`, so a truncated or edited checkpoint is refused with the file named.
//!
//! [`load`] also reads another tool's model, a Hugging Face folder or a GGUF file
//! (`interop::import`), as a step-0 checkpoint with no optimiser state: every stage that starts
//! from a checkpoint starts from an imported model the same way.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::SamplerState;
use crate::error::{io_err, TrainError};

/// Bumped when the folder layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FileEntry {
    pub bytes: u64,
    pub sha256: String,
}

/// `state.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TrainState {
    pub format_version: u32,
    /// Optimiser steps completed.
    pub step: usize,
    /// Training tokens consumed so far.
    pub tokens_seen: u64,
    pub sampler: SamplerState,
    /// Last validation loss, if any.
    pub val_loss: Option<f64>,
    /// Training wall time up to this checkpoint, summed over every process that ran the run
    /// (a resumed run adds its own time to the time of the run it resumed).
    #[serde(default)]
    pub train_seconds: f64,
    pub files: BTreeMap<String, FileEntry>,
}

impl TrainState {
    /// The state of a stage's checkpoint after `step` steps, its sampler at `(seed, position)`
    /// (file hashes are filled in by [`save`]).
    pub fn at(step: usize, tokens_seen: u64, seed: u64, position: u128, train_seconds: f64) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            step,
            tokens_seen,
            sampler: crate::data::SamplerState { seed, word_pos: position },
            val_loss: None,
            train_seconds,
            files: Default::default(),
        }
    }
}

/// The payload of a checkpoint, in memory.
pub struct Payload {
    pub model_safetensors: Vec<u8>,
    pub config_json: String,
    pub optimizer: Vec<u8>,
    pub tokenizer_json: String,
    /// An imported model's `tokenizer_config.json` (`tokenizer::Tokenizer::config_json`).
    pub tokenizer_config_json: Option<String>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `bytes` to `path` durably: temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_err(dir, "cannot create folder", e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(path, "cannot write", e)
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

pub fn checkpoints_dir(out_dir: &Path) -> PathBuf {
    out_dir.join("checkpoints")
}

fn step_dir_name(step: usize) -> String {
    format!("step-{step:06}")
}

/// Save a checkpoint for `state.step` and keep only the newest `keep` checkpoints.
pub fn save(out_dir: &Path, payload: &Payload, mut state: TrainState, keep: usize) -> Result<PathBuf, TrainError> {
    let root = checkpoints_dir(out_dir);
    fs::create_dir_all(&root).map_err(|e| io_err(&root, "cannot create checkpoint folder", e))?;
    let final_dir = root.join(step_dir_name(state.step));
    let tmp_dir = root.join(format!(".{}.tmp-{}", step_dir_name(state.step), std::process::id()));
    let _ = fs::remove_dir_all(&tmp_dir);
    fs::create_dir_all(&tmp_dir).map_err(|e| io_err(&tmp_dir, "cannot create", e))?;
    let mut files: Vec<(&str, &[u8])> = vec![
        ("model.safetensors", &payload.model_safetensors),
        ("config.json", payload.config_json.as_bytes()),
        ("optimizer.bpk", &payload.optimizer),
        ("tokenizer.json", payload.tokenizer_json.as_bytes()),
    ];
    if let Some(tc) = &payload.tokenizer_config_json {
        files.push(("tokenizer_config.json", tc.as_bytes()));
    }
    state.format_version = FORMAT_VERSION;
    state.files.clear();
    for (name, bytes) in files {
        let p = tmp_dir.join(name);
        write_synced(&p, bytes).map_err(|e| io_err(&p, "cannot write", e))?;
        state.files.insert(name.to_string(), FileEntry { bytes: bytes.len() as u64, sha256: sha256_hex(bytes) });
    }
    let state_json = serde_json::to_vec_pretty(&state).expect("state serialises");
    let p = tmp_dir.join("state.json");
    write_synced(&p, &state_json).map_err(|e| io_err(&p, "cannot write", e))?;
    if final_dir.exists() {
        // Re-saving the same step (e.g. a resumed run's final save): move the old one aside first.
        let old = root.join(format!(".{}.old-{}", step_dir_name(state.step), std::process::id()));
        fs::rename(&final_dir, &old).map_err(|e| io_err(&final_dir, "cannot replace", e))?;
        fs::rename(&tmp_dir, &final_dir).map_err(|e| io_err(&final_dir, "cannot rename into place", e))?;
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(&tmp_dir, &final_dir).map_err(|e| io_err(&final_dir, "cannot rename into place", e))?;
    }
    if let Ok(d) = fs::File::open(&root) {
        let _ = d.sync_all();
    }
    // Retention: newest `keep` complete checkpoints survive.
    let mut all = list(out_dir);
    all.sort();
    if keep > 0 && all.len() > keep {
        for (_, dir) in &all[..all.len() - keep] {
            let _ = fs::remove_dir_all(dir);
        }
    }
    Ok(final_dir)
}

/// Complete checkpoints under `out_dir` as (step, folder), unordered.
pub fn list(out_dir: &Path) -> Vec<(usize, PathBuf)> {
    let root = checkpoints_dir(out_dir);
    let Ok(rd) = fs::read_dir(&root) else { return Vec::new() };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let step = name.strip_prefix("step-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect()
}

/// The newest checkpoint folder, if any.
pub fn latest(out_dir: &Path) -> Option<PathBuf> {
    list(out_dir).into_iter().max_by_key(|(s, _)| *s).map(|(_, p)| p)
}

/// A checkpoint read back and verified.
pub struct Loaded {
    pub dir: PathBuf,
    pub state: TrainState,
    pub payload: Payload,
}

fn ck_err(dir: &Path, message: impl Into<String>) -> TrainError {
    TrainError::Checkpoint { path: dir.to_path_buf(), message: message.into() }
}

impl Loaded {
    /// The architecture (`config.json`'s `model` section, which every stage writes) and the
    /// tokenizer of this checkpoint, refused when they do not belong together.
    pub fn model_and_tokenizer(&self) -> Result<(model::ModelConfig, tokenizer::Tokenizer), TrainError> {
        let dir = &self.dir;
        let cfg: serde_json::Value = serde_json::from_str(&self.payload.config_json)
            .map_err(|e| ck_err(&dir.join("config.json"), format!("not JSON: {e}")))?;
        let mcfg: model::ModelConfig = serde_json::from_value(cfg.get("model").cloned().unwrap_or_default())
            .map_err(|e| ck_err(&dir.join("config.json"), format!("no valid `model` section: {e}")))?;
        let origin = dir.join("tokenizer.json").display().to_string();
        let tok = tokenizer::Tokenizer::from_parts(
            self.payload.tokenizer_json.as_bytes(),
            self.payload.tokenizer_config_json.as_deref(),
            &origin,
        )
        .map_err(|e| ck_err(&dir.join("tokenizer.json"), e.to_string()))?;
        // An imported model's vocabulary may be padded past its tokenizer's (for speed).
        let fits =
            if tok.is_foreign() { tok.vocab_size() <= mcfg.vocab_size } else { tok.vocab_size() == mcfg.vocab_size };
        if !fits {
            return Err(ck_err(
                dir,
                format!(
                    "the tokenizer has {} tokens but the model {}: they do not belong together",
                    tok.vocab_size(),
                    mcfg.vocab_size
                ),
            ));
        }
        Ok((mcfg, tok))
    }
}

/// A checkpoint folder's `state.json` (step, sampler, validation loss, file hashes), checked for
/// its format version; the other files are not read.
pub fn read_state(dir: &Path) -> Result<TrainState, TrainError> {
    if !dir.is_dir() {
        return Err(ck_err(dir, "no such checkpoint folder"));
    }
    let state_path = dir.join("state.json");
    let raw = fs::read(&state_path)
        .map_err(|e| ck_err(dir, format!("cannot read state.json: {e}; not a complete checkpoint")))?;
    let state: TrainState = serde_json::from_slice(&raw)
        .map_err(|e| ck_err(dir, format!("state.json is not valid ({e}); the checkpoint is truncated or corrupt")))?;
    if state.format_version != FORMAT_VERSION {
        return Err(ck_err(
            dir,
            format!("format version {} is not the supported {FORMAT_VERSION}", state.format_version),
        ));
    }
    Ok(state)
}

/// An imported model (Hugging Face folder or GGUF file) as a step-0 checkpoint in memory.
fn load_imported(path: &Path) -> Result<Loaded, TrainError> {
    let device = model::engine::device(model::engine::Backend::Cpu).map_err(TrainError::Engine)?;
    let imported = interop::import(path, &device).map_err(|e| ck_err(path, e.to_string()))?;
    let cfg = imported.model.config().clone();
    let config_json = serde_json::to_string_pretty(&serde_json::json!({
        "model": cfg,
        "imported_from": {"path": path.display().to_string(), "format": imported.format},
    }))
    .expect("configs serialise");
    let model_safetensors = model::weights::to_safetensors(&imported.model, &Default::default());
    Ok(Loaded {
        dir: path.to_path_buf(),
        state: TrainState::at(0, 0, 0, 0, 0.0),
        payload: Payload {
            model_safetensors,
            config_json,
            optimizer: Vec::new(),
            tokenizer_json: imported.tokenizer_json,
            tokenizer_config_json: Some(imported.tokenizer_config_json),
        },
    })
}

/// Read a checkpoint folder, verifying every file's size and hash against `state.json`; or an
/// imported model (a Hugging Face folder or a GGUF file, see the module doc).
pub fn load(dir: &Path) -> Result<Loaded, TrainError> {
    if !dir.join("state.json").is_file() && interop::is_importable(dir) {
        return load_imported(dir);
    }
    let state = read_state(dir)?;
    let read = |name: &str| -> Result<Vec<u8>, TrainError> {
        let entry = state.files.get(name).ok_or_else(|| ck_err(dir, format!("state.json does not list {name}")))?;
        let p = dir.join(name);
        let bytes = fs::read(&p).map_err(|e| ck_err(dir, format!("cannot read {name}: {e}")))?;
        if bytes.len() as u64 != entry.bytes {
            return Err(ck_err(
                dir,
                format!(
                    "{name} has {} bytes but {} were written: the file is truncated or was replaced",
                    bytes.len(),
                    entry.bytes
                ),
            ));
        }
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(ck_err(
                dir,
                format!("{name} does not match its SHA-256 in state.json: the file is corrupt or was replaced"),
            ));
        }
        Ok(bytes)
    };
    let model_safetensors = read("model.safetensors")?;
    let config_json = String::from_utf8(read("config.json")?).map_err(|_| ck_err(dir, "config.json is not UTF-8"))?;
    let optimizer = read("optimizer.bpk")?;
    let tokenizer_json =
        String::from_utf8(read("tokenizer.json")?).map_err(|_| ck_err(dir, "tokenizer.json is not UTF-8"))?;
    let tokenizer_config_json = if state.files.contains_key("tokenizer_config.json") {
        Some(
            String::from_utf8(read("tokenizer_config.json")?)
                .map_err(|_| ck_err(dir, "tokenizer_config.json is not UTF-8"))?,
        )
    } else {
        None
    };
    Ok(Loaded {
        dir: dir.to_path_buf(),
        state,
        payload: Payload { model_safetensors, config_json, optimizer, tokenizer_json, tokenizer_config_json },
    })
}
