//! The pretraining recipe as a TOML file: every field has a default and a comment, unknown
//! fields are refused, and [`PretrainConfig::resolve`] turns the raw file into a checked
//! [`Resolved`] config (the model's vocabulary filled in from the tokenizer, the architecture
//! preset expanded, every range checked) before any work starts.

use std::path::{Path, PathBuf};

use model::{MlaConfig, Mlp, ModelConfig, MoeConfig, Norm, Position};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Everything `ascent pretrain` reads.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    /// Fixes weights, data order and sampling: the same seed gives the same run.
    pub seed: u64,
    /// Folder for checkpoints, metrics.jsonl and the tokenizer.
    pub out_dir: PathBuf,
    /// Compute backend: "cpu" (always), "wgpu" or "cuda" (need the cargo feature).
    pub backend: String,
    /// Compute threads for the CPU backend; 0 = one per core.
    pub threads: usize,
    pub model: ModelSection,
    pub data: DataSection,
    pub optim: OptimSection,
    pub schedule: ScheduleSection,
    pub train: TrainSection,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            seed: 1337,
            out_dir: PathBuf::from("runs/pretrain"),
            backend: "cpu".into(),
            threads: 0,
            model: ModelSection::default(),
            data: DataSection::default(),
            optim: OptimSection::default(),
            schedule: ScheduleSection::default(),
            train: TrainSection::default(),
        }
    }
}

/// Architecture: a preset at a size, with any field overridden.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// "llama" (RMSNorm, SwiGLU, RoPE, GQA) or "gpt2" (LayerNorm, GELU, learned positions, MHA).
    pub preset: String,
    /// Residual width; 128 trains in minutes on two CPU cores.
    pub d_model: usize,
    /// Blocks.
    pub n_layers: usize,
    /// Query heads; must divide d_model.
    pub n_heads: usize,
    /// Overrides of the preset; unset keeps the preset's choice.
    pub n_kv_heads: Option<usize>,
    pub d_ff: Option<usize>,
    /// Defaults to train.seq_len.
    pub max_seq_len: Option<usize>,
    pub norm: Option<Norm>,
    pub norm_eps: Option<f64>,
    pub mlp: Option<Mlp>,
    pub position: Option<Position>,
    pub tie_embeddings: Option<bool>,
    pub qk_norm: Option<bool>,
    pub parallel_residual: Option<bool>,
    pub bias: Option<bool>,
    pub init_std: Option<f64>,
    /// A mixture of experts in place of the dense MLP (`[model.moe] experts = 4, top_k = 1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeConfig>,
    /// Multi-head latent attention (`[model.mla] kv_rank = 32, rope_dim = 16`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mla: Option<MlaConfig>,
    /// muP relative to this width: hidden matrices initialised and trained at rates scaled by
    /// `base / d_model`, logits by the same (a learning rate tuned at the base width transfers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mup_base_width: Option<usize>,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            preset: "llama".into(),
            d_model: 128,
            n_layers: 4,
            n_heads: 4,
            n_kv_heads: None,
            d_ff: None,
            max_seq_len: None,
            norm: None,
            norm_eps: None,
            mlp: None,
            position: None,
            tie_embeddings: None,
            qk_norm: None,
            parallel_residual: None,
            bias: None,
            init_std: None,
            moe: None,
            mla: None,
            mup_base_width: None,
        }
    }
}

/// Where the tokens come from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// "builtin" (a small generated corpus shipped in the binary) or a path to a UTF-8 text
    /// file whose documents are separated by blank lines.
    pub corpus: String,
    /// Fraction of documents held out for validation loss (when `val_corpus` is empty).
    pub val_fraction: f64,
    /// A separate validation text file (same format as `corpus`); empty = hold out
    /// `val_fraction` of the corpus documents. With a file every corpus document trains.
    pub val_corpus: String,
    /// An existing tokenizer.json to use; empty = train a byte-level BPE on the corpus.
    pub tokenizer: String,
    /// Vocabulary size when training the tokenizer (512 suits a small single-domain corpus).
    pub vocab_size: usize,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            corpus: "builtin".into(),
            val_fraction: 0.05,
            val_corpus: String::new(),
            tokenizer: String::new(),
            vocab_size: 512,
        }
    }
}

/// Which optimiser a stage uses ([`crate::optim::optimizer`]).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    /// AdamW (decoupled weight decay, Loshchilov & Hutter 2019).
    #[default]
    Adamw,
    /// Lion (Chen et al. 2023): the sign of an interpolated momentum, decoupled weight decay;
    /// `beta1`/`beta2` are its interpolation and momentum decays. At scale it is usually run at a
    /// rate 3-10× below AdamW's with more weight decay; tune both together.
    Lion,
    /// Muon (Jordan et al. 2024) for the hidden 2-D matrices (attention and MLP projections):
    /// Nesterov momentum 0.95 orthogonalised by 5 Newton–Schulz steps, its rate scaled by
    /// `0.2·√max(rows, cols)` to match AdamW's update size (Liu et al. 2025), so one `lr` serves
    /// both; AdamW for embeddings, norms, biases and the head.
    Muon,
    /// Sophia (Liu et al. 2023): momentum (`beta1`) divided by a diagonal Hessian estimate
    /// (EMA `beta2`, refreshed every `sophia_every` steps from labels sampled from the model),
    /// clipped to ±1 per coordinate. Pretraining only.
    Sophia,
}

impl OptimKind {
    fn is_adamw(&self) -> bool {
        *self == Self::Adamw
    }

    /// The peak learning rate a config that names this optimiser and no `lr` gets. AdamW's 2e-3
    /// suits sub-million-parameter models; Lion's sign update and Sophia's clipped one move
    /// every coordinate by up to the full rate, so they start 3× and 2× lower (Chen et al.
    /// 2023, Liu et al. 2023); Muon's rate is matched to AdamW's update size, so it shares it.
    pub fn default_lr(self) -> f64 {
        match self {
            OptimKind::Adamw | OptimKind::Muon => 2e-3,
            OptimKind::Lion => 2e-3 / 3.0,
            OptimKind::Sophia => 1e-3,
        }
    }

    /// All kinds, in the order reports list them.
    pub const ALL: [OptimKind; 4] = [OptimKind::Adamw, OptimKind::Lion, OptimKind::Muon, OptimKind::Sophia];

    /// The name a config file uses.
    pub fn name(self) -> &'static str {
        match self {
            OptimKind::Adamw => "adamw",
            OptimKind::Lion => "lion",
            OptimKind::Muon => "muon",
            OptimKind::Sophia => "sophia",
        }
    }
}

/// The optimiser (AdamW unless `kind` says otherwise) with global-norm clipping.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(from = "OptimFile")]
pub struct OptimSection {
    /// adamw | lion | muon | sophia (left out of written configs when adamw).
    #[serde(skip_serializing_if = "OptimKind::is_adamw")]
    pub kind: OptimKind,
    /// Peak learning rate; when a config leaves it out, the optimiser's own default
    /// ([`OptimKind::default_lr`]).
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay; 0.95 (not 0.999) is steadier for transformers.
    pub beta2: f64,
    /// Denominator epsilon (PyTorch's default; burn's own default is 1e-5).
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value; 0 disables.
    pub grad_clip: f64,
    /// Sophia only: refresh the Hessian estimate every this many steps (left out when 10).
    #[serde(skip_serializing_if = "is_ten")]
    pub sophia_every: usize,
}

fn is_ten(n: &usize) -> bool {
    *n == 10
}

/// [`OptimSection`] as a file gives it: a missing `lr` takes the named optimiser's default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimFile {
    #[serde(default)]
    kind: OptimKind,
    lr: Option<f64>,
    beta1: Option<f64>,
    beta2: Option<f64>,
    eps: Option<f64>,
    weight_decay: Option<f64>,
    grad_clip: Option<f64>,
    sophia_every: Option<usize>,
}

impl From<OptimFile> for OptimSection {
    fn from(f: OptimFile) -> Self {
        let d = OptimSection::default();
        OptimSection {
            kind: f.kind,
            lr: f.lr.unwrap_or(f.kind.default_lr()),
            beta1: f.beta1.unwrap_or(d.beta1),
            beta2: f.beta2.unwrap_or(d.beta2),
            eps: f.eps.unwrap_or(d.eps),
            weight_decay: f.weight_decay.unwrap_or(d.weight_decay),
            grad_clip: f.grad_clip.unwrap_or(d.grad_clip),
            sophia_every: f.sophia_every.unwrap_or(d.sophia_every),
        }
    }
}

impl Default for OptimSection {
    fn default() -> Self {
        Self {
            kind: OptimKind::Adamw,
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
            sophia_every: 10,
        }
    }
}

/// The shape of the learning rate over steps.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// The peak rate throughout (after warmup).
    Constant,
    /// Linear warmup, then cosine decay to `min_lr_ratio · lr`.
    Cosine,
    /// Warmup-stable-decay (Hu et al. 2024): warmup, flat, then a linear decay over the last
    /// `decay_fraction` of steps.
    Wsd,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleSection {
    pub kind: ScheduleKind,
    /// Linear warmup from 0.
    pub warmup_steps: usize,
    /// Final rate as a fraction of the peak (cosine and wsd).
    pub min_lr_ratio: f64,
    /// wsd only: the fraction of all steps spent decaying.
    pub decay_fraction: f64,
}

impl Default for ScheduleSection {
    fn default() -> Self {
        Self { kind: ScheduleKind::Cosine, warmup_steps: 50, min_lr_ratio: 0.1, decay_fraction: 0.2 }
    }
}

/// Loop lengths and sizes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    /// Optimiser steps.
    pub steps: usize,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Micro-batches summed per optimiser step (effective batch = batch_size · grad_accum).
    pub grad_accum: usize,
    /// Validation loss every this many steps (and at the end); 0 = only at the end.
    pub eval_every: usize,
    /// Batches averaged for one validation loss.
    pub eval_batches: usize,
    /// Checkpoint every this many steps (and at the end); 0 = only at the end.
    pub checkpoint_every: usize,
    /// Metrics line every this many steps.
    pub log_every: usize,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            steps: 300,
            batch_size: 16,
            seq_len: 128,
            grad_accum: 1,
            eval_every: 100,
            eval_batches: 8,
            checkpoint_every: 100,
            log_every: 10,
        }
    }
}

/// A checked config: the raw file plus what was derived from it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Resolved {
    pub raw: PretrainConfig,
    pub model: ModelConfig,
}

fn bad(field: &str, message: impl Into<String>) -> TrainError {
    TrainError::Config { field: field.to_string(), message: message.into() }
}

impl PretrainConfig {
    /// Parse a TOML file; a syntax error or unknown field names the file, line and field.
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::Io { path: path.to_path_buf(), message: format!("cannot read config: {e}") })?;
        Self::from_toml(&text).map_err(|e| match e {
            TrainError::Toml { message, .. } => TrainError::Toml { path: path.to_path_buf(), message },
            other => other,
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, TrainError> {
        toml::from_str(text).map_err(|e| TrainError::Toml { path: PathBuf::from("<config>"), message: e.to_string() })
    }

    /// The model architecture for a vocabulary of `vocab_size`.
    pub fn model_config(&self, vocab_size: usize) -> Result<ModelConfig, TrainError> {
        let m = &self.model;
        let seq = m.max_seq_len.unwrap_or(self.train.seq_len);
        let mut c = ModelConfig::preset(&m.preset, vocab_size, m.d_model, m.n_layers, m.n_heads.max(1), seq)
            .map_err(|e| bad("model.preset", e.message))?;
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = m.$f.clone() { c.$f = v.into(); } )* };
        }
        set!(
            n_kv_heads,
            d_ff,
            norm,
            norm_eps,
            mlp,
            position,
            tie_embeddings,
            qk_norm,
            parallel_residual,
            bias,
            init_std,
            moe,
            mla,
            mup_base_width
        );
        c.n_heads = m.n_heads;
        c.validate().map_err(|e| bad(&format!("model.{}", e.field), e.message))?;
        Ok(c)
    }

    /// Check every field that does not depend on the data; called before any work.
    pub fn check(&self) -> Result<(), TrainError> {
        let t = &self.train;
        for (f, v) in [
            ("train.steps", t.steps),
            ("train.batch_size", t.batch_size),
            ("train.seq_len", t.seq_len),
            ("train.grad_accum", t.grad_accum),
            ("train.eval_batches", t.eval_batches),
            ("train.log_every", t.log_every),
            ("data.vocab_size", self.data.vocab_size),
        ] {
            if v == 0 {
                return Err(bad(f, "must be at least 1"));
            }
        }
        if !(self.data.val_fraction > 0.0 && self.data.val_fraction < 0.5) {
            return Err(bad("data.val_fraction", format!("must be in (0, 0.5), got {}", self.data.val_fraction)));
        }
        let o = &self.optim;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return Err(bad("optim.lr", format!("must be positive, got {}", o.lr)));
        }
        for (f, v) in [("optim.beta1", o.beta1), ("optim.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Err(bad(f, format!("must be in [0, 1), got {v}")));
            }
        }
        if !(o.eps > 0.0) || !(o.weight_decay >= 0.0) || !(o.grad_clip >= 0.0) {
            return Err(bad("optim", "eps must be positive; weight_decay and grad_clip non-negative"));
        }
        let s = &self.schedule;
        if s.warmup_steps >= t.steps && s.warmup_steps > 0 {
            return Err(bad(
                "schedule.warmup_steps",
                format!("= {} leaves no steps after warmup (train.steps = {})", s.warmup_steps, t.steps),
            ));
        }
        if !(0.0..=1.0).contains(&s.min_lr_ratio) {
            return Err(bad("schedule.min_lr_ratio", format!("must be in [0, 1], got {}", s.min_lr_ratio)));
        }
        if !(s.decay_fraction > 0.0 && s.decay_fraction <= 1.0) {
            return Err(bad("schedule.decay_fraction", format!("must be in (0, 1], got {}", s.decay_fraction)));
        }
        self.backend.parse::<model::engine::Backend>().map_err(|e| bad("backend", e))?;
        if self.data.corpus != "builtin" && !Path::new(&self.data.corpus).is_file() {
            return Err(bad(
                "data.corpus",
                format!("file `{}` does not exist (use \"builtin\" or a path to a text file)", self.data.corpus),
            ));
        }
        if !self.data.val_corpus.is_empty() && !Path::new(&self.data.val_corpus).is_file() {
            return Err(bad("data.val_corpus", format!("file `{}` does not exist", self.data.val_corpus)));
        }
        if !self.data.tokenizer.is_empty() && !Path::new(&self.data.tokenizer).is_file() {
            return Err(bad("data.tokenizer", format!("file `{}` does not exist", self.data.tokenizer)));
        }
        // The architecture can be checked before the tokenizer exists: the vocabulary size only
        // scales tables.
        self.model_config(self.data.vocab_size)?;
        Ok(())
    }

    /// Check, then fix the architecture for the tokenizer's vocabulary.
    pub fn resolve(&self, vocab_size: usize) -> Result<Resolved, TrainError> {
        self.check()?;
        Ok(Resolved { raw: self.clone(), model: self.model_config(vocab_size)? })
    }
}

/// The default config as commented TOML, for `ascent pretrain --print-config`.
pub const DEFAULT_TOML: &str = include_str!("../../../configs/pretrain.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_toml_equals_the_defaults() {
        assert_eq!(PretrainConfig::from_toml(DEFAULT_TOML).unwrap(), PretrainConfig::default());
    }

    #[test]
    fn each_optimiser_has_its_own_default_rate() {
        for (kind, lr) in [("adamw", 2e-3), ("lion", 2e-3 / 3.0), ("muon", 2e-3), ("sophia", 1e-3)] {
            let c = PretrainConfig::from_toml(&format!("[optim]\nkind = \"{kind}\"\n")).unwrap();
            assert_eq!(c.optim.lr, lr, "{kind}");
            assert_eq!(c.optim.kind.default_lr(), lr);
        }
        let c = PretrainConfig::from_toml("[optim]\nkind = \"lion\"\nlr = 1e-4\nbeta2 = 0.99\n").unwrap();
        assert_eq!((c.optim.lr, c.optim.beta2, c.optim.weight_decay), (1e-4, 0.99, 0.1));
        let e = PretrainConfig::from_toml("[optim]\nlr_max = 1\n").unwrap_err().to_string();
        assert!(e.contains("lr_max"), "{e}");
    }

    #[test]
    fn moe_mla_and_mup_reach_the_model() {
        let c = PretrainConfig::from_toml(
            "[model]\nmup_base_width = 64\n[model.moe]\nexperts = 4\ntop_k = 2\n[model.mla]\nkv_rank = 16\nrope_dim = 8\n",
        )
        .unwrap();
        let m = c.model_config(300).unwrap();
        assert_eq!((m.moe.as_ref().unwrap().experts, m.moe.as_ref().unwrap().top_k), (4, 2));
        assert_eq!(m.mla.as_ref().unwrap().kv_rank, 16);
        assert_eq!(m.mup_base_width, Some(64));
        let c = PretrainConfig::from_toml("[model.moe]\nexperts = 2\ntop_k = 3\n").unwrap();
        let e = c.model_config(300).unwrap_err().to_string();
        assert!(e.contains("model.moe.top_k"), "{e}");
    }

    #[test]
    fn unknown_field_is_named() {
        let e = PretrainConfig::from_toml("[train]\nstepz = 3\n").unwrap_err().to_string();
        assert!(e.contains("stepz"), "{e}");
    }

    #[test]
    fn bad_heads_are_named_before_work() {
        let c = PretrainConfig::from_toml("[model]\nd_model = 100\nn_heads = 3\n").unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("model.n_heads"), "{e}");
        let c = PretrainConfig::from_toml("[model]\nn_heads = 4\nn_kv_heads = 3\n").unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("model.n_kv_heads"), "{e}");
        let c = PretrainConfig::from_toml("[data]\ncorpus = \"/no/such/file.txt\"\n").unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("data.corpus") && e.contains("/no/such/file.txt"), "{e}");
    }
}
