//! Model configuration: architecture choices as enums, validation, presets, and the
//! parameter / FLOP accounting printed for every run.
//!
//! A `ModelConfig` is what a TOML file or a checkpoint's `config.json` says. Every field has a
//! default, unknown fields are refused, and [`ModelConfig::validate`] checks the relations
//! between fields (heads divide the width, kv heads divide the heads, ...) before any tensor
//! is allocated, naming the field that is wrong.

use serde::{Deserialize, Serialize};

/// Normalisation layer used before attention, before the MLP, and before the head.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// LayerNorm with a learned scale and bias (GPT-2).
    Layer,
    /// RMSNorm with a learned scale (Llama); cheaper and as good.
    Rms,
}

/// The position-wise feed-forward block.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mlp {
    /// `W2 relu(W1 x)`.
    Relu,
    /// `W2 gelu(W1 x)` (GPT-2, with GPT-2's tanh approximation of GELU).
    Gelu,
    /// `W2 (silu(W1 x) * W3 x)` (Shazeer 2020, Llama).
    Swiglu,
    /// `W2 (gelu(W1 x) * W3 x)` (Shazeer 2020; tanh-approximated GELU).
    Geglu,
}

impl Mlp {
    /// Gated variants have a third projection.
    pub fn is_gated(self) -> bool {
        matches!(self, Mlp::Swiglu | Mlp::Geglu)
    }
}

/// How token positions enter the model.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Position {
    /// A learned absolute position embedding added to the token embedding (GPT-2).
    Learned,
    /// Rotary embeddings on queries and keys, rotate-half layout (Su et al. 2021; Llama).
    Rope {
        /// Base of the geometric frequency ladder.
        #[serde(default = "default_theta")]
        theta: f64,
        /// Stretch of the frequencies for contexts beyond the trained one (imported models:
        /// Llama 3.1's `rope_scaling`); `None` = plain RoPE.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scaling: Option<RopeScaling>,
    },
}

impl Position {
    /// Plain rotary positions with base `theta`.
    pub fn rope(theta: f64) -> Self {
        Position::Rope { theta, scaling: None }
    }
}

fn default_theta() -> f64 {
    10_000.0
}

/// How rotary frequencies are rescaled (Hugging Face's `rope_scaling`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RopeScaling {
    /// Position interpolation (Chen et al. 2023): every frequency divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.1's: wavelengths longer than `original_max_position_embeddings /
    /// low_freq_factor` divided by `factor`, shorter than `... / high_freq_factor` kept, and a
    /// smooth blend in between.
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: f64 },
}

impl RopeScaling {
    /// The rescaled inverse frequency of one rotary pair whose plain inverse frequency is `inv`.
    pub fn apply(&self, inv: f64) -> f64 {
        match *self {
            RopeScaling::Linear { factor } => inv / factor,
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                let wavelen = 2.0 * std::f64::consts::PI / inv;
                let low_freq_wavelen = original_max_position_embeddings / low_freq_factor;
                let high_freq_wavelen = original_max_position_embeddings / high_freq_factor;
                if wavelen < high_freq_wavelen {
                    inv
                } else if wavelen > low_freq_wavelen {
                    inv / factor
                } else {
                    let smooth = (original_max_position_embeddings / wavelen - low_freq_factor)
                        / (high_freq_factor - low_freq_factor);
                    (1.0 - smooth) * inv / factor + smooth * inv
                }
            }
        }
    }
}

/// A mixture-of-experts feed-forward block in place of the dense MLP (Shazeer et al. 2017;
/// Switch, Fedus et al. 2021; DeepSeekMoE, Dai et al. 2024): a linear router scores `experts`
/// experts per token, the `top_k` best are run and their outputs summed, weighted by their
/// softmax probabilities; an optional shared expert sees every token. Each expert is an MLP of
/// the configured kind and width `d_expert`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MoeConfig {
    /// Routed experts (E).
    pub experts: usize,
    /// Experts each token is sent to (k).
    #[serde(default = "one")]
    pub top_k: usize,
    /// Hidden width of each expert; 0 = the model's `d_ff / top_k` (rounded up), so that a
    /// token goes through as many expert units as the dense MLP has (equal active parameters
    /// but for the router).
    #[serde(default)]
    pub d_expert: usize,
    /// One more expert of width `d_expert` that every token goes through (DeepSeekMoE).
    #[serde(default)]
    pub shared_expert: bool,
    /// Renormalise the k chosen probabilities to sum to 1 (Mixtral); otherwise the raw softmax
    /// probabilities weight the experts (Switch, GShard), which keeps a gradient to the router
    /// at k = 1.
    #[serde(default)]
    pub normalize_gates: bool,
    /// Weight of the load-balancing loss `E·Σ_e f_e·P_e` (Switch; 1 when perfectly balanced),
    /// added to the training loss, averaged over layers; 0 turns it off.
    #[serde(default = "default_aux_coef")]
    pub aux_loss_coef: f64,
    /// Auxiliary-loss-free balancing (DeepSeek-V3): a per-expert bias added to the scores for
    /// choosing experts only (not to the gates), moved by this much after each optimiser step,
    /// up for under-loaded experts and down for over-loaded ones; 0 turns it off.
    #[serde(default)]
    pub bias_update_rate: f64,
    /// Expert capacity during training, as a multiple of an even share
    /// (`⌈factor·tokens·k/E⌉` assignments per expert per forward): assignments past it are
    /// dropped (the token keeps its residual). 0 = no capacity limit. Generation and
    /// evaluation never drop, so a sequence's tokens do not depend on its batch.
    #[serde(default)]
    pub capacity_factor: f64,
}

fn one() -> usize {
    1
}

fn default_aux_coef() -> f64 {
    0.01
}

/// Multi-head latent attention (DeepSeek-V2, 2024): keys and values are read up from a
/// low-rank latent `c = RMSNorm(W_a x)` of `kv_rank` numbers per token, and position enters
/// through a separate rotary key of `rope_dim` numbers shared by all heads and a rotary part of
/// each query. The KV cache stores only the latent and the rotary key: `kv_rank + rope_dim`
/// numbers per token and layer, against `2·n_kv_heads·head_dim` for MHA/GQA.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MlaConfig {
    /// Width of the key/value latent (DeepSeek-V2: 512 at d_model 5120).
    pub kv_rank: usize,
    /// Width of the decoupled rotary part of queries and keys (DeepSeek-V2: 64); even.
    pub rope_dim: usize,
}

/// Architecture of a decoder-only transformer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Token vocabulary size; must equal the tokenizer's.
    pub vocab_size: usize,
    /// Residual stream width (D).
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Query heads (H); must divide `d_model`.
    pub n_heads: usize,
    /// Key/value heads; `n_heads` = MHA, 1 = MQA, in between = GQA. Must divide `n_heads`.
    pub n_kv_heads: usize,
    /// Hidden width of the MLP.
    pub d_ff: usize,
    /// Longest sequence the model is built for (sizes the learned position table).
    pub max_seq_len: usize,
    /// Normalisation layer.
    pub norm: Norm,
    /// Epsilon inside the norm; 1e-5 as in both GPT-2 and Llama.
    pub norm_eps: f64,
    /// Feed-forward block.
    pub mlp: Mlp,
    /// Positional scheme.
    pub position: Position,
    /// Share the input embedding with the output head (saves V×D parameters).
    pub tie_embeddings: bool,
    /// RMS-normalise queries and keys per head before attention (stabilises large learning rates).
    pub qk_norm: bool,
    /// Attention and MLP read the same normalised input and are summed (GPT-J, PaLM).
    pub parallel_residual: bool,
    /// Biases on the linear layers (GPT-2 has them, Llama does not).
    pub bias: bool,
    /// Biases on the query, key and value projections only (Qwen2); implied by `bias`.
    #[serde(skip_serializing_if = "is_false")]
    pub qkv_bias: bool,
    /// Standard deviation of the normal initialisation (GPT-2's 0.02); output projections are
    /// further scaled by 1/sqrt(2 * n_layers).
    pub init_std: f64,
    /// A mixture of experts in place of every dense MLP; `None` = dense.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeConfig>,
    /// Multi-head latent attention in place of MHA/GQA (`n_kv_heads` is then unused);
    /// needs rotary positions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mla: Option<MlaConfig>,
    /// Maximal-update parameterisation (muP, Yang et al. 2021, "Tensor Programs V") relative to
    /// this base width: hidden matrices are initialised with variance ∝ 1/fan-in and trained at
    /// `lr·base/d_model`, the logits are multiplied by `base/d_model`, and attention scores are
    /// scaled by `√K_base/K` (1/K growth). At `d_model == base` the model equals the standard
    /// one, so a learning rate tuned at the base width carries over to wider models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mup_base_width: Option<usize>,
    /// The width of one attention head when it is not `d_model / n_heads` (Qwen3 and Gemma
    /// heads are wider: queries and values are `n_heads · head_dim` wide, the output
    /// projection maps them back to `d_model`); `None` = `d_model / n_heads`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::llama(512, 128, 4, 4, 256)
    }
}

/// A configuration that cannot be built, with the field at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("model config: `{field}` {message}")]
pub struct ConfigError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { field, message: message.into() }
}

/// Parameter counts, split the way scaling-law papers split them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamCount {
    /// Every trainable scalar.
    pub total: usize,
    /// Parameters a token's forward pass uses: `total` less the routed experts it is not sent
    /// to (equal to `total` for a dense model).
    pub active: usize,
    /// Token (and position) embedding tables.
    pub embedding: usize,
    /// Everything else (the "N" of Kaplan et al.); the head counts here unless it is tied.
    pub non_embedding: usize,
}

impl ModelConfig {
    /// GPT-2 style: LayerNorm, GELU MLP of width 4·D, learned positions, MHA, biases, tied embeddings.
    pub fn gpt2(vocab_size: usize, d_model: usize, n_layers: usize, n_heads: usize, max_seq_len: usize) -> Self {
        Self {
            vocab_size,
            d_model,
            n_layers,
            n_heads,
            n_kv_heads: n_heads,
            d_ff: 4 * d_model,
            max_seq_len,
            norm: Norm::Layer,
            norm_eps: 1e-5,
            mlp: Mlp::Gelu,
            position: Position::Learned,
            tie_embeddings: true,
            qk_norm: false,
            parallel_residual: false,
            bias: true,
            qkv_bias: false,
            init_std: 0.02,
            moe: None,
            mla: None,
            mup_base_width: None,
            head_dim: None,
        }
    }

    /// Llama style: RMSNorm, SwiGLU, RoPE, GQA (half as many kv heads where possible), no
    /// biases, tied embeddings. `d_ff` is chosen so the parameter count matches
    /// [`ModelConfig::gpt2`] at the same width, depth and vocabulary.
    pub fn llama(vocab_size: usize, d_model: usize, n_layers: usize, n_heads: usize, max_seq_len: usize) -> Self {
        let n_kv_heads = if n_heads % 2 == 0 { n_heads / 2 } else { n_heads };
        let mut cfg = Self {
            vocab_size,
            d_model,
            n_layers,
            n_heads,
            n_kv_heads,
            d_ff: 8,
            max_seq_len,
            norm: Norm::Rms,
            norm_eps: 1e-5,
            mlp: Mlp::Swiglu,
            position: Position::rope(10_000.0),
            tie_embeddings: true,
            qk_norm: false,
            parallel_residual: false,
            bias: false,
            qkv_bias: false,
            init_std: 0.02,
            moe: None,
            mla: None,
            mup_base_width: None,
            head_dim: None,
        };
        let target = Self::gpt2(vocab_size, d_model, n_layers, n_heads, max_seq_len).param_count().total;
        // Each unit of d_ff costs 3·D per layer; solve, then round to a multiple of 8.
        let without_mlp = cfg.param_count().total - n_layers * 3 * d_model * cfg.d_ff;
        let per_unit = n_layers * 3 * d_model;
        let ff = target.saturating_sub(without_mlp) as f64 / per_unit as f64;
        cfg.d_ff = ((ff / 8.0).round() as usize).max(1) * 8;
        cfg
    }

    /// Look up a named preset at the given size.
    pub fn preset(
        name: &str,
        vocab_size: usize,
        d_model: usize,
        n_layers: usize,
        n_heads: usize,
        max_seq_len: usize,
    ) -> Result<Self, ConfigError> {
        match name {
            "gpt2" => Ok(Self::gpt2(vocab_size, d_model, n_layers, n_heads, max_seq_len)),
            "llama" => Ok(Self::llama(vocab_size, d_model, n_layers, n_heads, max_seq_len)),
            other => Err(err("preset", format!("is `{other}`; known presets are `gpt2` and `llama`"))),
        }
    }

    /// Width of one attention head (K): `head_dim` when set, else `d_model / n_heads`.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.d_model / self.n_heads.max(1))
    }

    /// Width of the rotary part of a query or key: the whole head, or MLA's decoupled part.
    pub fn rope_dim(&self) -> usize {
        self.mla.as_ref().map_or(self.head_dim(), |m| m.rope_dim)
    }

    /// Query heads per key/value head (G); 1 under MLA, whose keys and values are per head.
    pub fn kv_groups(&self) -> usize {
        if self.mla.is_some() {
            1
        } else {
            self.n_heads / self.n_kv_heads.max(1)
        }
    }

    /// Hidden width of one expert (`d_ff / top_k` unless set).
    pub fn d_expert(&self) -> usize {
        self.moe.as_ref().map_or(self.d_ff, |m| {
            if m.d_expert == 0 {
                self.d_ff.div_ceil(m.top_k.max(1))
            } else {
                m.d_expert
            }
        })
    }

    /// Numbers the KV cache keeps per token, over all layers: `2·n_kv_heads·head_dim` per layer
    /// for MHA/GQA/MQA, `kv_rank + rope_dim` for MLA.
    pub fn kv_cache_floats_per_token(&self) -> usize {
        let per_layer = match &self.mla {
            Some(m) => m.kv_rank + m.rope_dim,
            None => 2 * self.n_kv_heads * self.head_dim(),
        };
        self.n_layers * per_layer
    }

    /// The muP width multiplier `d_model / base` (1 without muP).
    pub fn mup_multiplier(&self) -> f64 {
        self.mup_base_width.map_or(1.0, |b| self.d_model as f64 / b as f64)
    }

    /// Check every relation between fields; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("d_ff", self.d_ff),
            ("max_seq_len", self.max_seq_len),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(err(field, "must be at least 1"));
            }
        }
        match self.head_dim {
            None if self.d_model % self.n_heads != 0 => {
                return Err(err("n_heads", format!("= {} does not divide d_model = {}", self.n_heads, self.d_model)));
            }
            Some(0) => return Err(err("head_dim", "must be at least 1")),
            Some(_) if self.mla.is_some() => return Err(err("head_dim", "is not supported with mla")),
            _ => {}
        }
        if self.mla.is_none() && self.n_heads % self.n_kv_heads != 0 {
            return Err(err("n_kv_heads", format!("= {} does not divide n_heads = {}", self.n_kv_heads, self.n_heads)));
        }
        if let Position::Rope { theta, scaling } = self.position {
            if self.rope_dim() % 2 != 0 {
                return Err(err("position", format!("rope needs an even rotary width, got {}", self.rope_dim())));
            }
            if !(theta.is_finite() && theta > 1.0) {
                return Err(err("position.theta", format!("must be a finite number above 1, got {theta}")));
            }
            let positive = |v: f64| v.is_finite() && v > 0.0;
            match scaling {
                None => {}
                Some(RopeScaling::Linear { factor }) => {
                    if !positive(factor) {
                        return Err(err("position.scaling.factor", format!("must be positive, got {factor}")));
                    }
                }
                Some(RopeScaling::Llama3 {
                    factor,
                    low_freq_factor,
                    high_freq_factor,
                    original_max_position_embeddings,
                }) => {
                    if ![factor, low_freq_factor, high_freq_factor, original_max_position_embeddings]
                        .into_iter()
                        .all(positive)
                        || high_freq_factor <= low_freq_factor
                    {
                        return Err(err(
                            "position.scaling",
                            "llama3 needs positive factors with high_freq_factor > low_freq_factor",
                        ));
                    }
                }
            }
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return Err(err("norm_eps", format!("must be positive, got {}", self.norm_eps)));
        }
        if !(self.init_std.is_finite() && self.init_std > 0.0) {
            return Err(err("init_std", format!("must be positive, got {}", self.init_std)));
        }
        if let Some(m) = &self.moe {
            if m.experts == 0 {
                return Err(err("moe.experts", "must be at least 1"));
            }
            if m.top_k == 0 || m.top_k > m.experts {
                return Err(err("moe.top_k", format!("= {} must be between 1 and experts = {}", m.top_k, m.experts)));
            }
            for (field, v) in [
                ("moe.aux_loss_coef", m.aux_loss_coef),
                ("moe.bias_update_rate", m.bias_update_rate),
                ("moe.capacity_factor", m.capacity_factor),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(err(field, format!("must be a finite number ≥ 0, got {v}")));
                }
            }
        }
        if let Some(m) = &self.mla {
            if !matches!(self.position, Position::Rope { .. }) {
                return Err(err("mla", "needs rotary positions (position = { kind = \"rope\" })"));
            }
            if m.kv_rank == 0 {
                return Err(err("mla.kv_rank", "must be at least 1"));
            }
            if m.rope_dim == 0 {
                return Err(err("mla.rope_dim", "must be at least 2"));
            }
            if self.qk_norm {
                return Err(err("qk_norm", "is not supported with mla"));
            }
        }
        if self.mup_base_width == Some(0) {
            return Err(err("mup_base_width", "must be at least 1"));
        }
        Ok(())
    }

    /// Parameters of one attention block (projections and their biases, QK-norm scales).
    fn attention_params(&self) -> usize {
        let (d, h, k) = (self.d_model, self.n_heads, self.head_dim());
        let b = |n: usize| if self.bias { n } else { 0 };
        let qkv_b = |n: usize| if self.bias || self.qkv_bias { n } else { 0 };
        match &self.mla {
            Some(m) => {
                let (r, rd) = (m.kv_rank, m.rope_dim);
                let q = d * h * (k + rd) + qkv_b(h * (k + rd));
                let kv_a = d * (r + rd) + qkv_b(r + rd) + r;
                let kv_b = r * 2 * h * k + qkv_b(2 * h * k);
                q + kv_a + kv_b + h * k * d + b(d)
            }
            None => {
                let (q, kv) = (h * k, self.n_kv_heads * k);
                let qk_norm = if self.qk_norm { 2 * k } else { 0 };
                d * q + qkv_b(q) + 2 * (d * kv + qkv_b(kv)) + q * d + b(d) + qk_norm
            }
        }
    }

    /// Parameters of one MLP (or one expert) of hidden width `f`.
    fn mlp_params(&self, f: usize) -> usize {
        let d = self.d_model;
        let b = |n: usize| if self.bias { n } else { 0 };
        let mlp_in = if self.mlp.is_gated() { 2 } else { 1 };
        mlp_in * (d * f + b(f)) + f * d + b(d)
    }

    /// Exact count of trainable parameters, matching the built module.
    pub fn param_count(&self) -> ParamCount {
        let (d, v, l) = (self.d_model, self.vocab_size, self.n_layers);
        let norm = if self.norm == Norm::Layer { 2 * d } else { d };
        // Feed-forward parameters per layer, all of them and those one token uses.
        let (ffn, ffn_active) = match &self.moe {
            Some(m) => {
                let one = self.mlp_params(self.d_expert());
                let shared = if m.shared_expert { one } else { 0 };
                let router = d * m.experts + if m.bias_update_rate > 0.0 { m.experts } else { 0 };
                (m.experts * one + shared + router, m.top_k * one + shared + router)
            }
            None => (self.mlp_params(self.d_ff), self.mlp_params(self.d_ff)),
        };
        let block = 2 * norm + self.attention_params() + ffn;
        let positions = if self.position == Position::Learned { self.max_seq_len * d } else { 0 };
        let embedding = v * d + positions;
        let head = if self.tie_embeddings { 0 } else { d * v };
        let non_embedding = l * block + norm + head;
        let total = embedding + non_embedding;
        ParamCount { total, active: total - l * (ffn - ffn_active), embedding, non_embedding }
    }

    /// Forward-pass FLOPs per token at context length `seq`: 2 per multiply-add of every matrix
    /// product a token goes through (all projections, the experts it is routed to, the router
    /// and the head) plus attention scores and mixing (2·T per query and key width and 2·T per
    /// value width, counting the full T×T square as PyTorch's kernels compute it). Training is
    /// 3× this.
    pub fn forward_flops_per_token(&self, seq: usize) -> u64 {
        let (d, l, h, k) = (self.d_model as u64, self.n_layers as u64, self.n_heads as u64, self.head_dim() as u64);
        let mats = if self.mlp.is_gated() { 3 } else { 2 };
        let (attn, qk_width) = match &self.mla {
            Some(m) => {
                let (r, rd) = (m.kv_rank as u64, m.rope_dim as u64);
                (d * h * (k + rd) + d * (r + rd) + r * 2 * h * k + h * k * d, h * (k + rd))
            }
            None => (2 * d * h * k + 2 * d * (self.n_kv_heads as u64 * k), h * k),
        };
        let ffn = match &self.moe {
            Some(m) => {
                let active = m.top_k as u64 + u64::from(m.shared_expert);
                active * mats * d * self.d_expert() as u64 + d * m.experts as u64
            }
            None => mats * d * self.d_ff as u64,
        };
        let matmul_params = l * (attn + ffn) + d * self.vocab_size as u64;
        2 * matmul_params + l * 2 * seq as u64 * (qk_width + h * k)
    }

    /// Training FLOPs per token (forward + backward ≈ 3 × forward).
    pub fn train_flops_per_token(&self, seq: usize) -> u64 {
        3 * self.forward_flops_per_token(seq)
    }

    /// One-line human description, e.g. for progress output.
    pub fn summary(&self) -> String {
        let p = self.param_count();
        let pos = match self.position {
            Position::Learned => "learned-pos".to_string(),
            Position::Rope { theta, scaling: None } => format!("rope(θ={theta})"),
            Position::Rope { theta, scaling: Some(RopeScaling::Linear { factor }) } => {
                format!("rope(θ={theta}, linear ×{factor})")
            }
            Position::Rope { theta, scaling: Some(RopeScaling::Llama3 { factor, .. }) } => {
                format!("rope(θ={theta}, llama3 ×{factor})")
            }
        };
        let attn = match &self.mla {
            Some(m) => format!("{}h MLA r{} rope{}", self.n_heads, m.kv_rank, m.rope_dim),
            None => match self.head_dim {
                Some(k) => format!("{}h/{}kv × {k}", self.n_heads, self.n_kv_heads),
                None => format!("{}h/{}kv", self.n_heads, self.n_kv_heads),
            },
        };
        let ffn = match &self.moe {
            Some(m) => format!(
                "MoE {}×ff {} top-{}{}",
                m.experts,
                self.d_expert(),
                m.top_k,
                if m.shared_expert { " +shared" } else { "" }
            ),
            None => format!("ff {}", self.d_ff),
        };
        let active = if p.active != p.total { format!(", {} active", p.active) } else { String::new() };
        format!(
            "{} layers × d{} ({attn}, {ffn}), {:?}Norm, {:?}, {}{}{}{}{}{} | params {} ({} non-embedding{active}) | KV cache {}/token",
            self.n_layers,
            self.d_model,
            self.norm,
            self.mlp,
            pos,
            if self.tie_embeddings { ", tied" } else { "" },
            if self.qk_norm { ", qk-norm" } else { "" },
            if self.qkv_bias && !self.bias { ", qkv-bias" } else { "" },
            if self.parallel_residual { ", parallel" } else { "" },
            self.mup_base_width.map_or(String::new(), |b| format!(", muP base {b}")),
            p.total,
            p.non_embedding,
            self.kv_cache_floats_per_token()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_matched_parameter_counts() {
        for (d, l, h) in [(128, 4, 4), (256, 4, 4), (64, 2, 4), (384, 6, 6)] {
            let g = ModelConfig::gpt2(512, d, l, h, 128).param_count().total as f64;
            let m = ModelConfig::llama(512, d, l, h, 128).param_count().total as f64;
            assert!((g - m).abs() / g < 0.01, "d{d}: gpt2 {g} vs llama {m}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = ModelConfig::default();
        c.n_heads = 5;
        assert_eq!(c.validate().unwrap_err().field, "n_heads");
        let mut c = ModelConfig::default();
        c.n_kv_heads = 3;
        assert_eq!(c.validate().unwrap_err().field, "n_kv_heads");
        let mut c = ModelConfig::default();
        c.d_model = 0;
        assert_eq!(c.validate().unwrap_err().field, "d_model");
        assert!(ModelConfig::default().validate().is_ok());
    }

    #[test]
    fn toml_round_trip_and_unknown_fields() {
        let c = ModelConfig::gpt2(300, 64, 2, 4, 64);
        let s = toml::to_string(&c).unwrap();
        let back: ModelConfig = toml::from_str(&s).unwrap();
        assert_eq!(c, back);
        let e = toml::from_str::<ModelConfig>("d_modle = 3").unwrap_err().to_string();
        assert!(e.contains("d_modle"), "{e}");
        let r: ModelConfig = toml::from_str("position = { kind = \"rope\", theta = 500000.0 }").unwrap();
        assert_eq!(r.position, Position::rope(500000.0));
        let s: ModelConfig = toml::from_str(
            "position = { kind = \"rope\", theta = 5e5, scaling = { kind = \"llama3\", factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original_max_position_embeddings = 8192.0 } }",
        )
        .unwrap();
        assert!(matches!(s.position, Position::Rope { scaling: Some(RopeScaling::Llama3 { .. }), .. }));
        assert!(!toml::to_string(&ModelConfig::default()).unwrap().contains("qkv_bias"));
    }

    #[test]
    fn flops_follow_the_six_n_rule() {
        // For a model whose attention term is small, train FLOPs/token ≈ 6 N (Kaplan et al.).
        let c = ModelConfig { tie_embeddings: false, ..ModelConfig::llama(512, 256, 4, 4, 128) };
        let n = c.param_count().non_embedding as f64;
        let f = c.train_flops_per_token(1) as f64;
        assert!((f / (6.0 * n) - 1.0).abs() < 0.02, "{f} vs {}", 6.0 * n);
    }
}
