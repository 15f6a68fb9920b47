//! A decoder-only transformer (Radford et al. 2019; Touvron et al. 2023) whose every
//! architectural choice is a [`ModelConfig`] enum: LayerNorm or RMSNorm, ReLU/GELU/SwiGLU/GeGLU
//! MLP, learned or rotary positions, multi-head, grouped-query or multi-query attention, tied or
//! untied embeddings, optional QK-norm and parallel residual, multi-head latent attention
//! (DeepSeek-V2) in place of MHA/GQA, a mixture of experts ([`crate::moe`]) in place of the MLP,
//! and the maximal-update parameterisation (muP).
//!
//! Field names mirror the Hugging Face Llama layout (`layers.0.self_attn.q_proj`, ...), so the
//! safetensors export in [`crate::weights`] is a mechanical rename.
//!
//! Dimension letters: `B` batch, `T` time (new tokens), `S` time including cached tokens,
//! `D` model width, `H` query heads, `N` key/value heads, `G = H / N` queries per kv head,
//! `K` head size, `F` MLP width, `V` vocabulary.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu, sigmoid, silu, softmax};

use crate::config::{Mlp as MlpKind, ModelConfig, Norm as NormKind, Position, RopeScaling};
use crate::engine;
use crate::moe::{Moe, RouterStats, StatsSink};

/// Paths of the hidden weight matrices (attention projections, MLP and expert projections):
/// those whose both dimensions grow with width. muP scales their initialisation and learning
/// rate; Muon orthogonalises their updates. Not embeddings, norms, biases, routers or the head.
pub const HIDDEN_MATRICES: &str =
    r"^layers\.\d+\.(self_attn|mlp|moe)\.(\w+\.\d+\.|shared_expert\.)?\w+_proj(_with_mqa)?\.weight$";

/// LayerNorm (scale and bias) or RMSNorm (scale only), over the last dimension.
#[derive(Module, Debug)]
pub struct Norm {
    pub weight: Param<Tensor<1>>,
    pub bias: Option<Param<Tensor<1>>>,
    eps: f64,
}

impl Norm {
    fn new(kind: NormKind, d: usize, eps: f64, device: &Device) -> Self {
        let weight = Param::from_tensor(Tensor::ones([d], device));
        let bias = (kind == NormKind::Layer).then(|| Param::from_tensor(Tensor::zeros([d], device)));
        Self { weight, bias, eps }
    }

    /// `(.., D) -> (.., D)`.
    pub fn forward<const R: usize>(&self, x: Tensor<R>) -> Tensor<R> {
        let w = self.weight.val().unsqueeze::<R>();
        match &self.bias {
            // LayerNorm: (x - mean) / sqrt(var + eps) * w + b, biased variance as in PyTorch.
            Some(b) => {
                let (var, mean) = x.clone().var_mean_bias(R - 1);
                let y = (x - mean) / (var + self.eps).sqrt();
                y * w + b.val().unsqueeze::<R>()
            }
            // RMSNorm: x / sqrt(mean(x²) + eps) * w.
            None => {
                let ms = x.clone().square().mean_dim(R - 1);
                x / (ms + self.eps).sqrt() * w
            }
        }
    }
}

/// Per-forward constants shared by every layer: rotary tables and the attention mask.
pub struct Context {
    /// `(1 or B, 1, T, K/2)` cosines and sines at each position's index, if rotary.
    rope: Option<(Tensor<4>, Tensor<4>)>,
    /// `(1 or B, 1, G·T, S)`: true where a query must not see a key; `None` when nothing is
    /// masked.
    mask: Option<Tensor<4, Bool>>,
    /// A training forward: MoE layers apply their capacity, record router statistics and
    /// return their balancing loss.
    train: bool,
}

/// `(R, K/2)` rotary cosines and sines at `positions` (R of them).
fn rope_tables(
    theta: f64,
    scaling: Option<RopeScaling>,
    k: usize,
    positions: &[usize],
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    // inv_freq[i] = theta^(-2i/K), optionally rescaled; angle[p, i] = p · inv_freq[i]
    let inv: Vec<f32> = (0..k / 2)
        .map(|i| {
            let inv = theta.powf(-(2.0 * i as f64) / k as f64);
            scaling.map_or(inv, |s| s.apply(inv)) as f32
        })
        .collect();
    let pos: Vec<f32> = positions.iter().map(|&p| p as f32).collect();
    let inv = Tensor::<1>::from_floats(inv.as_slice(), device).reshape([1, k / 2]);
    let pos = Tensor::<1>::from_floats(pos.as_slice(), device).reshape([positions.len(), 1]);
    let ang = pos.matmul(inv); // (R, K/2)
    (ang.clone().cos(), ang.sin())
}

impl Context {
    fn new(cfg: &ModelConfig, t: usize, offset: usize, train: bool, device: &Device) -> Self {
        let k = cfg.rope_dim();
        let rope = match cfg.position {
            Position::Rope { theta, scaling } => {
                let (cos, sin) = rope_tables(theta, scaling, k, &(offset..offset + t).collect::<Vec<_>>(), device);
                Some((cos.unsqueeze::<4>(), sin.unsqueeze::<4>()))
            }
            Position::Learned => None,
        };
        // A query at absolute position offset+i sees keys 0..=offset+i. With one new token
        // everything is visible and the mask is skipped.
        let mask = (t > 1).then(|| {
            let g = cfg.kv_groups();
            let s = offset + t;
            let mut m = Vec::with_capacity(g * t * s);
            for _ in 0..g {
                for i in 0..t {
                    m.extend((0..s).map(|j| j > offset + i));
                }
            }
            Tensor::<2, Bool>::from_bool(TensorData::new(m, [g * t, s]), device).unsqueeze::<4>()
        });
        Self { rope, mask, train }
    }

    /// For rows that pack several documents: `docs[b][i]` is the document of position `i` of
    /// row `b`. A query sees only earlier keys of its own document, and positions count from 0
    /// at the start of each document, so every document is computed as if it were alone.
    fn packed(cfg: &ModelConfig, docs: &[Vec<u32>], train: bool, device: &Device) -> (Self, Vec<usize>) {
        let (b, t) = (docs.len(), docs.first().map_or(0, Vec::len));
        // A document is a run of equal ids: number the runs, and count positions within each.
        let mut positions = Vec::with_capacity(b * t);
        let mut runs: Vec<Vec<usize>> = Vec::with_capacity(b);
        for row in docs {
            let mut r = Vec::with_capacity(t);
            for i in 0..t {
                let same = i > 0 && row[i] == row[i - 1];
                r.push(if same { r[i - 1] } else { i });
                positions.push(if same { positions[positions.len() - 1] + 1 } else { 0 });
            }
            runs.push(r);
        }
        let k = cfg.rope_dim();
        let rope = match cfg.position {
            Position::Rope { theta, scaling } => {
                let (cos, sin) = rope_tables(theta, scaling, k, &positions, device);
                Some((cos.reshape([b, 1, t, k / 2]), sin.reshape([b, 1, t, k / 2])))
            }
            Position::Learned => None,
        };
        let g = cfg.kv_groups();
        let mut m = Vec::with_capacity(b * g * t * t);
        for row in &runs {
            for _ in 0..g {
                for i in 0..t {
                    m.extend((0..t).map(|j| j > i || row[j] != row[i]));
                }
            }
        }
        let mask = Tensor::<1, Bool>::from_bool(TensorData::new(m, [b * g * t * t]), device).reshape([b, 1, g * t, t]);
        (Self { rope, mask: Some(mask), train }, positions)
    }
}

/// Rotate-half RoPE: `(B, _, T, K) -> (B, _, T, K)` with `cos, sin: (1 or B, 1, T, K/2)`.
fn apply_rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [_, _, _, k] = x.dims();
    let h = k / 2;
    let (cos, sin) = (cos.clone(), sin.clone());
    let x1 = x.clone().narrow(3, 0, h);
    let x2 = x.narrow(3, h, h);
    Tensor::cat(vec![x1.clone() * cos.clone() - x2.clone() * sin.clone(), x1 * sin + x2 * cos], 3)
}

/// Keys and values of earlier positions for one layer, preallocated to a capacity so that each
/// step writes in place instead of concatenating (which would cost O(S²) copies). Under MLA
/// `k` holds the normalised latent `(B, 1, capacity, kv_rank)` and `v` the rotary key
/// `(B, 1, capacity, rope_dim)`; keys and values are read up from them at each step.
#[derive(Debug, Clone)]
pub struct LayerCache {
    k: Tensor<4>, // (B, N, capacity, K)
    v: Tensor<4>,
}

impl LayerCache {
    /// Write `k, v: (B, _, T, _)` at `past..past+T` and return everything stored so far,
    /// `(B, _, S, _)` each.
    fn append(&mut self, k: Tensor<4>, v: Tensor<4>, past: usize) -> (Tensor<4>, Tensor<4>) {
        let s = past + k.dims()[2];
        let kb = std::mem::replace(&mut self.k, Tensor::empty([0, 0, 0, 0], &k.device()));
        let vb = std::mem::replace(&mut self.v, Tensor::empty([0, 0, 0, 0], &v.device()));
        self.k = kb.slice_assign(s![.., .., past..s, ..], k);
        self.v = vb.slice_assign(s![.., .., past..s, ..], v);
        (self.k.clone().narrow(2, 0, s), self.v.clone().narrow(2, 0, s))
    }
}

/// A KV cache for every layer of one batch of sequences.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<LayerCache>,
    /// Number of positions already stored.
    pub len: usize,
    /// Positions that fit.
    pub capacity: usize,
}

impl KvCache {
    pub fn new(cfg: &ModelConfig, batch: usize, capacity: usize, device: &Device) -> Self {
        let (ks, vs) = match &cfg.mla {
            Some(m) => ([batch, 1, capacity, m.kv_rank], [batch, 1, capacity, m.rope_dim]),
            None => {
                let shape = [batch, cfg.n_kv_heads, capacity, cfg.head_dim()];
                (shape, shape)
            }
        };
        let layers = (0..cfg.n_layers)
            .map(|_| LayerCache { k: Tensor::zeros(ks, device), v: Tensor::zeros(vs, device) })
            .collect();
        Self { layers, len: 0, capacity }
    }
}

#[derive(Module, Debug)]
pub struct Attention {
    /// Queries: `D → H·K` (MHA/GQA) or `D → H·(K + R)` (MLA: a content and a rotary part).
    pub q_proj: Linear,
    /// MHA/GQA keys and values, `D → N·K` each.
    pub k_proj: Option<Linear>,
    pub v_proj: Option<Linear>,
    /// MLA: `D → r + R`, the key/value latent and the rotary key shared by all heads
    /// (DeepSeek-V2's `kv_a_proj_with_mqa`), the latent's RMSNorm, and `r → H·2K`, content keys
    /// and values read up from the latent.
    pub kv_a_proj_with_mqa: Option<Linear>,
    pub kv_a_layernorm: Option<Norm>,
    pub kv_b_proj: Option<Linear>,
    pub o_proj: Linear,
    pub q_norm: Option<Norm>,
    pub k_norm: Option<Norm>,
    n_heads: usize,
    n_kv_heads: usize,
    /// Width of one head (`ModelConfig::head_dim`).
    head_dim: usize,
    /// MLA's `(kv_rank, rope_dim)`.
    latent: Option<(usize, usize)>,
    /// Attention scores are multiplied by this: `1/√w` for query/key width `w`, and `1/√(w·m)`
    /// under muP with width multiplier `m` (so it falls as 1/w with width).
    scale: f64,
}

impl Attention {
    /// `x: (B, T, D)` → `(B, T, D)`. With a cache, keys/values of the `T` new tokens are
    /// written at `cache.len..` and attention covers all `S = cache.len + T` positions.
    fn forward(&self, x: Tensor<3>, ctx: &Context, cache: Option<(&mut LayerCache, usize)>) -> Tensor<3> {
        if let Some((r, rd)) = self.latent {
            return self.forward_latent(x, ctx, cache, r, rd);
        }
        let [b, t, _] = x.dims();
        let (h, n) = (self.n_heads, self.n_kv_heads);
        let (k_dim, g) = (self.head_dim, h / n);
        let (k_proj, v_proj) = (self.k_proj.as_ref().expect("k_proj"), self.v_proj.as_ref().expect("v_proj"));
        let heads = |y: Tensor<3>, m: usize| y.reshape([b, t, m, k_dim]).swap_dims(1, 2); // (B, m, T, K)
        let mut q = heads(self.q_proj.forward(x.clone()), h); // (B, H, T, K)
        let mut k = heads(k_proj.forward(x.clone()), n); // (B, N, T, K)
        let v = heads(v_proj.forward(x), n); // (B, N, T, K)
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(q);
            k = kn.forward(k);
        }
        if let Some((cos, sin)) = &ctx.rope {
            q = apply_rope(q, cos, sin);
            k = apply_rope(k, cos, sin);
        }
        let (k, v) = match cache {
            None => (k, v),
            Some((c, past)) => c.append(k, v, past), // (B, N, S, K)
        };
        // Grouped queries: head h = n·G + g reads kv head n. Folding G into the time axis lets
        // one batched matmul serve every group without copying keys or values.
        let q = q.reshape([b, n, g * t, k_dim]); // (B, N, G·T, K)
        let y = self.attend(q, k, v, ctx); // (B, N, G·T, K)
        let y = y.reshape([b, h, t, k_dim]).swap_dims(1, 2).reshape([b, t, h * k_dim]); // (B, T, H·K)
        self.o_proj.forward(y)
    }

    /// `softmax(q·kᵀ·scale + mask)·v` for `q: (B, N, G·T, W)`, `k: (B, N, S, W)`, `v: (B, N, S, K)`.
    fn attend(&self, q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, ctx: &Context) -> Tensor<4> {
        let scores = q.matmul(k.swap_dims(2, 3)) * self.scale; // (B, N, G·T, S)
        let scores = match &ctx.mask {
            Some(m) => scores.mask_fill(m.clone(), f32::NEG_INFINITY),
            None => scores,
        };
        softmax(scores, 3).matmul(v)
    }

    /// Multi-head latent attention. Queries: `[q_c | rope(q_r)]` per head, `K + R` wide. Keys:
    /// `[k_c | rope(k_r)]` with `k_c` per head from the latent and `k_r` one for all heads.
    /// The cache keeps the normalised latent and the rotated `k_r`.
    fn forward_latent(
        &self,
        x: Tensor<3>,
        ctx: &Context,
        cache: Option<(&mut LayerCache, usize)>,
        r: usize,
        rd: usize,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let h = self.n_heads;
        let k_dim = self.head_dim;
        let q = self.q_proj.forward(x.clone()).reshape([b, t, h, k_dim + rd]).swap_dims(1, 2); // (B, H, T, K+R)
        let q_c = q.clone().narrow(3, 0, k_dim);
        let mut q_r = q.narrow(3, k_dim, rd);
        let a = self.kv_a_proj_with_mqa.as_ref().expect("kv_a_proj_with_mqa").forward(x); // (B, T, r+R)
        let latent = self.kv_a_layernorm.as_ref().expect("kv_a_layernorm").forward(a.clone().narrow(2, 0, r));
        let latent = latent.reshape([b, 1, t, r]);
        let mut k_r = a.narrow(2, r, rd).reshape([b, 1, t, rd]);
        if let Some((cos, sin)) = &ctx.rope {
            q_r = apply_rope(q_r, cos, sin);
            k_r = apply_rope(k_r, cos, sin);
        }
        let (latent, k_r) = match cache {
            None => (latent, k_r),
            Some((c, past)) => c.append(latent, k_r, past), // (B, 1, S, r), (B, 1, S, R)
        };
        let s = latent.dims()[2];
        let kv = self.kv_b_proj.as_ref().expect("kv_b_proj").forward(latent.reshape([b, s, r])); // (B, S, H·2K)
        let kv = kv.reshape([b, s, h, 2 * k_dim]).swap_dims(1, 2); // (B, H, S, 2K)
        let k_c = kv.clone().narrow(3, 0, k_dim);
        let v = kv.narrow(3, k_dim, k_dim);
        let q = Tensor::cat(vec![q_c, q_r], 3); // (B, H, T, K+R)
        let k = Tensor::cat(vec![k_c, k_r.expand([b, h, s, rd])], 3); // (B, H, S, K+R)
        let y = self.attend(q, k, v, ctx); // (B, H, T, K)
        let y = y.swap_dims(1, 2).reshape([b, t, h * k_dim]);
        self.o_proj.forward(y)
    }
}

#[derive(Module, Debug)]
pub struct FeedForward {
    /// Present for gated MLPs (SwiGLU, GeGLU): `down(act(gate(x)) * up(x))`.
    pub gate_proj: Option<Linear>,
    pub up_proj: Linear,
    pub down_proj: Linear,
    #[module(skip)]
    kind: MlpKind,
}

/// GELU in its tanh approximation, as GPT-2 has it (`gelu_new`, PyTorch's
/// `gelu(approximate="tanh")`): `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, written as
/// `x·σ(2√(2/π)·(x + 0.044715·x³))` (the same function, since `0.5·(1 + tanh(z)) = σ(2z)`).
/// Built from multiplies and one sigmoid; on the CPU backend the exact erf form spent about 10%
/// of a GPT-2 training step in scalar `erf` (forward and backward), this form about 7% in `exp`
/// (perf profiles, width 128, 2 layers), so the saving is small. The two differ by at most
/// about 1e-3.
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const TWO_SQRT_2_OVER_PI: f64 = 1.595_769_121_605_730_7;
    let inner = (x.clone() * x.clone() * 0.044715 + 1.0) * x.clone() * TWO_SQRT_2_OVER_PI;
    x * sigmoid(inner)
}

impl FeedForward {
    /// `(.., D) -> (.., D)`.
    pub(crate) fn forward<const R: usize>(&self, x: Tensor<R>) -> Tensor<R> {
        let hidden = match (&self.gate_proj, self.kind) {
            (Some(gate), MlpKind::Swiglu) => silu(gate.forward(x.clone())) * self.up_proj.forward(x),
            (Some(gate), _) => gelu_tanh(gate.forward(x.clone())) * self.up_proj.forward(x),
            (None, MlpKind::Relu) => relu(self.up_proj.forward(x)),
            (None, _) => gelu_tanh(self.up_proj.forward(x)),
        }; // (B, T, F)
        self.down_proj.forward(hidden)
    }
}

#[derive(Module, Debug)]
pub struct Block {
    pub input_layernorm: Norm,
    pub self_attn: Attention,
    pub post_attention_layernorm: Norm,
    /// The dense MLP, or
    pub mlp: Option<FeedForward>,
    /// the mixture of experts.
    pub moe: Option<Moe>,
    parallel_residual: bool,
}

impl Block {
    fn ffn(&self, x: Tensor<3>, train: bool) -> (Tensor<3>, Option<Tensor<1>>) {
        match (&self.mlp, &self.moe) {
            (Some(mlp), _) => (mlp.forward(x), None),
            (None, Some(moe)) => moe.forward(x, train),
            (None, None) => unreachable!("a block has an MLP or a mixture of experts"),
        }
    }

    /// `(B, T, D) -> (B, T, D)`, and an MoE layer's balancing loss in a training forward.
    fn forward(
        &self,
        x: Tensor<3>,
        ctx: &Context,
        cache: Option<(&mut LayerCache, usize)>,
    ) -> (Tensor<3>, Option<Tensor<1>>) {
        if self.parallel_residual {
            // x + attn(n1(x)) + mlp(n2(x)) (GPT-NeoX): both branches read the same input.
            let a = self.self_attn.forward(self.input_layernorm.forward(x.clone()), ctx, cache);
            let (m, aux) = self.ffn(self.post_attention_layernorm.forward(x.clone()), ctx.train);
            (x + a + m, aux)
        } else {
            let x = x.clone() + self.self_attn.forward(self.input_layernorm.forward(x), ctx, cache);
            let (m, aux) = self.ffn(self.post_attention_layernorm.forward(x.clone()), ctx.train);
            (x + m, aux)
        }
    }
}

/// The whole decoder.
#[derive(Module, Debug)]
pub struct Transformer {
    pub embed_tokens: Embedding,
    pub embed_positions: Option<Embedding>,
    pub layers: Vec<Block>,
    pub norm: Norm,
    /// Absent when the head shares the token embedding.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    cfg: ModelConfig,
    /// Where the MoE layers record their routing in training forwards (shared by clones).
    #[module(skip)]
    router: StatsSink,
}

impl Transformer {
    /// Build a model with freshly drawn weights. The caller seeds the device first; every
    /// parameter is drawn here (not lazily) and given a stable id, so the same seed gives the
    /// same weights and optimiser state can be re-attached after a reload.
    pub fn new(cfg: &ModelConfig, device: &Device) -> Self {
        let (d, v, f, h, k) = (cfg.d_model, cfg.vocab_size, cfg.d_ff, cfg.n_heads, cfg.head_dim());
        let kv = cfg.n_kv_heads * k;
        let std = cfg.init_std;
        // muP: hidden matrices get variance ∝ 1/fan-in, i.e. std / √m relative to the base
        // width; embeddings keep `std`.
        let m = cfg.mup_multiplier();
        let hidden_std = std / m.sqrt();
        // GPT-2: residual-writing projections get std / sqrt(2 L) so the stream's variance
        // does not grow with depth.
        let out_std = hidden_std / (2.0 * cfg.n_layers as f64).sqrt();
        let linear_with = |i: usize, o: usize, s: f64, bias: bool| {
            LinearConfig::new(i, o)
                .with_bias(bias)
                .with_initializer(Initializer::Normal { mean: 0.0, std: s })
                .init(device)
        };
        let linear = |i: usize, o: usize, s: f64| linear_with(i, o, s, cfg.bias);
        // Query, key and value projections (and MLA's) also take Qwen2's `qkv_bias`.
        let qkv_linear = |i: usize, o: usize, s: f64| linear_with(i, o, s, cfg.bias || cfg.qkv_bias);
        let zero_bias = |mut l: Linear| {
            if let Some(b) = l.bias.take() {
                let n = b.val().dims()[0];
                l.bias = Some(Param::from_tensor(Tensor::zeros([n], device)));
            }
            l
        };
        let norm = || Norm::new(cfg.norm, d, cfg.norm_eps, device);
        let mlp = |f: usize| FeedForward {
            gate_proj: cfg.mlp.is_gated().then(|| zero_bias(linear(d, f, hidden_std))),
            up_proj: zero_bias(linear(d, f, hidden_std)),
            down_proj: zero_bias(linear(f, d, out_std)),
            kind: cfg.mlp,
        };
        let router = StatsSink::default();
        let attention = || {
            let qk_width = match &cfg.mla {
                Some(l) => k + l.rope_dim,
                None => k,
            };
            let scale = 1.0 / (qk_width as f64 * m).sqrt();
            let mut a = Attention {
                q_proj: zero_bias(qkv_linear(d, h * qk_width, hidden_std)),
                k_proj: None,
                v_proj: None,
                kv_a_proj_with_mqa: None,
                kv_a_layernorm: None,
                kv_b_proj: None,
                o_proj: zero_bias(linear(h * k, d, out_std)),
                q_norm: cfg.qk_norm.then(|| Norm::new(NormKind::Rms, k, cfg.norm_eps, device)),
                k_norm: cfg.qk_norm.then(|| Norm::new(NormKind::Rms, k, cfg.norm_eps, device)),
                n_heads: h,
                n_kv_heads: cfg.n_kv_heads,
                head_dim: k,
                latent: cfg.mla.as_ref().map(|l| (l.kv_rank, l.rope_dim)),
                scale,
            };
            match &cfg.mla {
                Some(l) => {
                    a.kv_a_proj_with_mqa = Some(zero_bias(qkv_linear(d, l.kv_rank + l.rope_dim, hidden_std)));
                    a.kv_a_layernorm = Some(Norm::new(NormKind::Rms, l.kv_rank, cfg.norm_eps, device));
                    // The latent is normalised to unit RMS, like the input of every other
                    // projection; with fan-in r instead of D, keys and values of the usual
                    // reading from the residual stream: the same output scale needs std·√(D/r).
                    let up_std = hidden_std * (d as f64 / l.kv_rank as f64).sqrt();
                    a.kv_b_proj = Some(zero_bias(qkv_linear(l.kv_rank, 2 * h * k, up_std)));
                }
                None => {
                    a.k_proj = Some(zero_bias(qkv_linear(d, kv, hidden_std)));
                    a.v_proj = Some(zero_bias(qkv_linear(d, kv, hidden_std)));
                }
            }
            a
        };
        let layers = (0..cfg.n_layers)
            .map(|i| Block {
                input_layernorm: norm(),
                self_attn: attention(),
                post_attention_layernorm: norm(),
                mlp: cfg.moe.is_none().then(|| mlp(f)),
                moe: cfg.moe.as_ref().map(|mc| {
                    let fe = cfg.d_expert();
                    let gate = LinearConfig::new(d, mc.experts)
                        .with_bias(false)
                        .with_initializer(Initializer::Normal { mean: 0.0, std })
                        .init(device);
                    let experts = (0..mc.experts).map(|_| mlp(fe)).collect();
                    Moe::new(gate, experts, mc.shared_expert.then(|| mlp(fe)), mc, i, router.clone(), device)
                }),
                parallel_residual: cfg.parallel_residual,
            })
            .collect();
        let embedding =
            |n: usize| EmbeddingConfig::new(n, d).with_initializer(Initializer::Normal { mean: 0.0, std }).init(device);
        let model = Self {
            embed_tokens: embedding(v),
            embed_positions: (cfg.position == Position::Learned).then(|| embedding(cfg.max_seq_len)),
            layers,
            norm: norm(),
            lm_head: (!cfg.tie_embeddings).then(|| {
                LinearConfig::new(d, v)
                    .with_bias(false)
                    .with_initializer(Initializer::Normal { mean: 0.0, std })
                    .init(device)
            }),
            cfg: cfg.clone(),
            router,
        };
        engine::materialise(&model);
        engine::stable_param_ids(model)
    }

    /// [`Transformer::new`] with weights fixed by `seed`, safe against other threads drawing
    /// random numbers at the same time (see [`engine::with_seed`]).
    pub fn seeded(cfg: &ModelConfig, device: &Device, seed: u64) -> Self {
        engine::with_seed(device, seed, || Self::new(cfg, device))
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Hidden states after the final norm, `tokens: (B, T)` → `(B, T, D)`, and in a training
    /// forward the MoE layers' mean balancing loss.
    fn hidden(
        &self,
        tokens: Tensor<2, Int>,
        mut cache: Option<&mut KvCache>,
        train: bool,
    ) -> (Tensor<3>, Option<Tensor<1>>) {
        let [_, t] = tokens.dims();
        let device = tokens.device();
        let offset = cache.as_ref().map_or(0, |c| c.len);
        if let Some(c) = &cache {
            assert!(
                offset + t <= c.capacity,
                "KV cache full: {} + {t} positions exceed its capacity {}",
                offset,
                c.capacity
            );
        }
        let mut x = self.embed_tokens.forward(tokens); // (B, T, D)
        if let Some(pos) = &self.embed_positions {
            assert!(
                offset + t <= self.cfg.max_seq_len,
                "sequence of {} positions exceeds max_seq_len {} of a learned-position model",
                offset + t,
                self.cfg.max_seq_len
            );
            let table = pos.weight.val().narrow(0, offset, t); // (T, D)
            x = x + table.unsqueeze::<3>();
        }
        let ctx = Context::new(&self.cfg, t, offset, train, &device);
        let mut aux = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let lc = cache.as_deref_mut().map(|c| (&mut c.layers[i], offset));
            let (y, a) = layer.forward(x, &ctx, lc);
            x = y;
            aux.extend(a);
        }
        if let Some(c) = cache {
            c.len += t;
        }
        (self.norm.forward(x), mean_aux(aux))
    }

    /// Hidden states after the final norm of rows that pack several documents (see
    /// [`Transformer::forward_packed`]).
    fn hidden_packed(&self, tokens: Tensor<2, Int>, docs: &[Vec<u32>], train: bool) -> (Tensor<3>, Option<Tensor<1>>) {
        let [b, t] = tokens.dims();
        assert!(
            docs.len() == b && docs.iter().all(|r| r.len() == t),
            "document ids must be one per token: tokens are {b}×{t}"
        );
        let device = tokens.device();
        let (ctx, positions) = Context::packed(&self.cfg, docs, train, &device);
        let mut x = self.embed_tokens.forward(tokens); // (B, T, D)
        if let Some(pos) = &self.embed_positions {
            let longest = positions.iter().copied().max().unwrap_or(0);
            assert!(
                longest < self.cfg.max_seq_len,
                "a document of {} positions exceeds max_seq_len {} of a learned-position model",
                longest + 1,
                self.cfg.max_seq_len
            );
            let ids: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
            let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [b * t]), &device);
            let d = self.cfg.d_model;
            x = x + pos.weight.val().select(0, ids).reshape([b, t, d]);
        }
        let mut aux = Vec::new();
        for layer in &self.layers {
            let (y, a) = layer.forward(x, &ctx, None);
            x = y;
            aux.extend(a);
        }
        (self.norm.forward(x), mean_aux(aux))
    }

    /// Logits of rows that pack several documents one after another: `docs[b][i]` names the
    /// document of position `i` of row `b` (any ids; a document is a run of equal ids). Each
    /// document attends only to itself and its positions count from 0, so its logits are those
    /// of the document alone. `(B, T)` → `(B, T, V)`.
    pub fn forward_packed(&self, tokens: Tensor<2, Int>, docs: &[Vec<u32>]) -> Tensor<3> {
        let (x, _) = self.hidden_packed(tokens, docs, false);
        self.head(x)
    }

    /// Project hidden states to vocabulary logits: `(B, T, D)` → `(B, T, V)`. Under muP the
    /// logits are multiplied by `1/m` (muP's readout multiplier).
    fn head(&self, x: Tensor<3>) -> Tensor<3> {
        let m = self.cfg.mup_multiplier();
        let x = if m != 1.0 { x / m } else { x };
        match &self.lm_head {
            Some(head) => head.forward(x),
            None => {
                let [b, t, d] = x.dims();
                let w = self.embed_tokens.weight.val(); // (V, D)
                let v = w.dims()[0];
                x.reshape([b * t, d]).matmul(w.transpose()).reshape([b, t, v])
            }
        }
    }

    /// Hidden states after the final norm, for every position: `(B, T)` → `(B, T, D)` (what a
    /// head on the model, such as a reward model's, reads).
    pub fn hidden_states(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.hidden(tokens, None, false).0
    }

    /// Logits for every position. `tokens: (B, T)` → `(B, T, V)`.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let (x, _) = self.hidden(tokens, None, false);
        self.head(x)
    }

    /// Incremental forward through a KV cache: the `T` new tokens are appended to the cache and
    /// only the logits of the last position are returned, `(B, T)` → `(B, V)`.
    pub fn forward_cached(&self, tokens: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<2> {
        let (x, _) = self.hidden(tokens, Some(cache), false); // (B, T, D)
        let [b, t, _] = x.dims();
        let last = x.narrow(1, t - 1, 1); // (B, 1, D)
        self.head(last).reshape([b, self.cfg.vocab_size])
    }

    /// The training objective: mean next-token cross-entropy, plus for a mixture of experts
    /// `aux_loss_coef` × the layers' mean balancing loss. `tokens, targets: (B, T)`;
    /// `weights: (B, T)` selects and weights the positions that count (e.g. 0 on prompt
    /// tokens), `None` = all equally. A training forward: MoE capacity applies and router
    /// statistics are recorded ([`Transformer::router_stats`]).
    pub fn loss(&self, tokens: Tensor<2, Int>, targets: Tensor<2, Int>, weights: Option<Tensor<2>>) -> Tensor<1> {
        let (x, aux) = self.hidden(tokens, None, true);
        let ce = token_cross_entropy(self.head(x), targets, weights);
        self.with_aux(ce, aux)
    }

    /// Mean next-token cross-entropy alone (what validation reports): no balancing loss, no
    /// capacity, nothing recorded.
    pub fn cross_entropy(
        &self,
        tokens: Tensor<2, Int>,
        targets: Tensor<2, Int>,
        weights: Option<Tensor<2>>,
    ) -> Tensor<1> {
        token_cross_entropy(self.forward(tokens), targets, weights)
    }

    /// [`Transformer::loss`] over rows that pack several documents ([`Transformer::forward_packed`]).
    pub fn loss_packed(
        &self,
        tokens: Tensor<2, Int>,
        targets: Tensor<2, Int>,
        weights: Tensor<2>,
        docs: &[Vec<u32>],
    ) -> Tensor<1> {
        let (x, aux) = self.hidden_packed(tokens, docs, true);
        let ce = token_cross_entropy(self.head(x), targets, Some(weights));
        self.with_aux(ce, aux)
    }

    fn with_aux(&self, ce: Tensor<1>, aux: Option<Tensor<1>>) -> Tensor<1> {
        match (aux, &self.cfg.moe) {
            (Some(a), Some(m)) if m.aux_loss_coef > 0.0 => ce + a * m.aux_loss_coef,
            _ => ce,
        }
    }

    /// What the MoE routers did in the training forwards since the last call (empty for a
    /// dense model); the record is cleared.
    pub fn router_stats(&self) -> RouterStats {
        self.router.take()
    }

    /// Auxiliary-loss-free balancing (DeepSeek-V3): move each layer's expert bias by
    /// `bias_update_rate` toward balance, `b_e += γ·sign(mean load − load_e)`, from the loads in
    /// `stats`. A no-op without MoE or with the rate at 0.
    pub fn update_router_bias(mut self, stats: &RouterStats) -> Self {
        let Some(rate) = self.cfg.moe.as_ref().map(|m| m.bias_update_rate).filter(|&r| r > 0.0) else {
            return self;
        };
        for (layer, load) in self.layers.iter_mut().zip(&stats.load) {
            let Some(moe) = layer.moe.as_mut() else { continue };
            let Some(bias) = moe.score_bias.take() else { continue };
            let mean = load.iter().sum::<u64>() as f64 / load.len().max(1) as f64;
            let sign = |x: f64| {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            };
            let step: Vec<f32> = load.iter().map(|&l| (rate * sign(mean - l as f64)) as f32).collect();
            let (id, value) = (bias.id, bias.val());
            let step = Tensor::<1>::from_floats(step.as_slice(), &value.device());
            moe.score_bias = Some(Param::initialized(id, (value + step).detach()).set_require_grad(false));
        }
        self
    }
}

/// The mean of the layers' balancing losses, if any layer gave one.
fn mean_aux(aux: Vec<Tensor<1>>) -> Option<Tensor<1>> {
    let n = aux.len();
    let sum = aux.into_iter().reduce(|a, b| a + b)?;
    Some(sum / n as f64)
}

/// Cross-entropy of `logits: (B, T, V)` against `targets: (B, T)`, averaged over positions
/// (weighted by `weights: (B, T)` when given). Returns a one-element tensor.
pub fn token_cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>, weights: Option<Tensor<2>>) -> Tensor<1> {
    let [b, t, v] = logits.dims();
    let logp = log_softmax(logits.reshape([b * t, v]), 1); // (B·T, V)
    let nll = logp.gather(1, targets.reshape([b * t, 1])).reshape([b * t]).neg(); // (B·T)
    match weights {
        None => nll.mean(),
        Some(w) => {
            let w = w.reshape([b * t]);
            (nll * w.clone()).sum() / w.sum().clamp_min(1e-9)
        }
    }
}
