//! Gradient checks by finite differences for every architecture variant (mixtures of experts
//! and latent attention included), the KV cache against full recomputation, packed documents
//! against each document alone, one expert at top-1 against the dense MLP, router balancing,
//! seeding, and the safetensors loader's refusals.

use std::collections::HashMap;

use model::burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use model::burn::optim::GradientsParams;
use model::burn::prelude::*;
use model::{engine, weights, KvCache, MlaConfig, Mlp, ModelConfig, MoeConfig, Norm, Position, Transformer};

/// Deterministic standard-normal-ish numbers (sum of uniforms) for perturbation directions.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }
    fn normal(&mut self) -> f32 {
        (0..12).map(|_| self.unit()).sum()
    }
}

/// Draws a random direction per parameter (burn layout) and its dot product with the gradient.
struct Direction<'a> {
    rng: Rng,
    grads: &'a GradientsParams,
    dirs: Vec<Vec<f32>>,
    dot: f64,
}

impl ModuleVisitor for Direction<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let n: usize = p.val().dims().iter().product();
        if !p.is_require_grad() {
            // Not trained by gradients (an MoE balancing bias): not moved.
            self.dirs.push(vec![0.0; n]);
            return;
        }
        let d: Vec<f32> = (0..n).map(|_| self.rng.normal()).collect();
        // An expert no token was routed to has no gradient: it is zero, and the finite
        // difference along its direction checks that too.
        let g = match self.grads.get::<D>(p.id) {
            Some(g) => g.try_into_vec_as::<f32>().unwrap(),
            None => vec![0.0; n],
        };
        self.dot += g.iter().zip(&d).map(|(a, b)| (*a as f64) * (*b as f64)).sum::<f64>();
        self.dirs.push(d);
    }
}

/// Moves every parameter by `scale · direction`.
struct Shift<'a> {
    dirs: &'a [Vec<f32>],
    i: usize,
    scale: f32,
}

impl ModuleMapper for Shift<'_> {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let d = &self.dirs[self.i];
        self.i += 1;
        let id = p.id;
        let v = p.val();
        let shape = v.dims();
        let delta = Tensor::<D>::from_data(
            TensorData::new(d.iter().map(|x| x * self.scale).collect::<Vec<_>>(), shape),
            &v.device(),
        );
        p.transform_for_load(v + delta, id)
    }
}

fn tiny(vocab: usize) -> ModelConfig {
    ModelConfig { init_std: 0.2, ..ModelConfig::llama(vocab, 16, 2, 4, 12) }
}

fn moe(experts: usize, top_k: usize) -> MoeConfig {
    MoeConfig {
        experts,
        top_k,
        d_expert: 12,
        shared_expert: false,
        normalize_gates: false,
        aux_loss_coef: 0.1,
        bias_update_rate: 0.0,
        capacity_factor: 0.0,
    }
}

fn mla(kv_rank: usize, rope_dim: usize) -> Option<MlaConfig> {
    Some(MlaConfig { kv_rank, rope_dim })
}

/// Mixture-of-experts and latent-attention variants of `base`.
fn sparse_and_latent(base: &ModelConfig) -> Vec<ModelConfig> {
    vec![
        ModelConfig { moe: Some(moe(4, 2)), ..base.clone() },
        ModelConfig { moe: Some(moe(4, 1)), ..base.clone() },
        ModelConfig {
            moe: Some(MoeConfig { shared_expert: true, normalize_gates: true, bias_update_rate: 0.01, ..moe(3, 2) }),
            ..base.clone()
        },
        // Capacity 1.0 of an even share: some assignments are dropped in the training forward.
        ModelConfig { moe: Some(MoeConfig { capacity_factor: 1.0, ..moe(4, 2) }), ..base.clone() },
        ModelConfig { mla: mla(8, 4), ..base.clone() },
        ModelConfig { mla: mla(3, 2), n_kv_heads: 1, bias: true, ..base.clone() },
        ModelConfig { mla: mla(8, 4), moe: Some(moe(2, 1)), parallel_residual: true, ..base.clone() },
    ]
}

fn batch(cfg: &ModelConfig, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let (b, t) = (2, 9);
    let v = cfg.vocab_size as i64;
    let seq: Vec<i64> = (0..b * (t + 1)).map(|i| (i as i64 * 7 + (i * i) as i64 * 3 + 1) % v).collect();
    let x: Vec<i64> = (0..b).flat_map(|r| seq[r * (t + 1)..r * (t + 1) + t].to_vec()).collect();
    let y: Vec<i64> = (0..b).flat_map(|r| seq[r * (t + 1) + 1..(r + 1) * (t + 1)].to_vec()).collect();
    (Tensor::from_data(TensorData::new(x, [b, t]), device), Tensor::from_data(TensorData::new(y, [b, t]), device))
}

/// Directional derivatives by central differences vs. the autodiff gradient, along three random
/// directions. At least two must agree within 2%: a ReLU kink that one step of a difference
/// happens to cross spoils that one direction (it was seen once in about a hundred runs of a
/// loaded machine), while a wrong gradient is wrong along almost every direction.
fn gradient_check(cfg: &ModelConfig) {
    cfg.validate().unwrap();
    let plain = Device::flex();
    let device = engine::training_device(&plain);
    let model = engine::with_seed(&plain, 3, || Transformer::new(cfg, &device));
    let (x, y) = batch(cfg, &device);
    let loss = model.loss(x.clone(), y.clone(), None);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    // Small enough that ReLU kinks are rarely crossed, large enough to stay above f32 rounding.
    let eps = 2e-4f32;
    let inner = model.valid();
    let (xi, yi) = (x.without_autodiff(), y.without_autodiff());
    let mut seen = Vec::new();
    let _ = model.router_stats();
    for seed in [11, 12, 13] {
        let mut dir = Direction { rng: Rng(seed), grads: &grads, dirs: Vec::new(), dot: 0.0 };
        model.visit(&mut dir);
        // The loss, and which experts every token went to (empty for a dense model).
        let at = |scale: f32| {
            let m = inner.clone().map(&mut Shift { dirs: &dir.dirs, i: 0, scale });
            let loss = m.loss(xi.clone(), yi.clone(), None).into_scalar::<f32>() as f64;
            (loss, m.router_stats().load)
        };
        // Top-k routing is piecewise smooth: a step that moves a token to another expert
        // crosses a jump. Then the step is shortened until both sides route alike.
        let mut h = eps;
        let fd = loop {
            let ((up, route_up), (down, route_down)) = (at(h), at(-h));
            if route_up == route_down || h < eps / 60.0 {
                break (up - down) / (2.0 * h as f64);
            }
            h /= 4.0;
        };
        let rel = (fd - dir.dot).abs() / dir.dot.abs().max(1e-6);
        seen.push((fd, dir.dot, rel));
    }
    let agree = seen.iter().filter(|(_, _, rel)| *rel < 0.02).count();
    assert!(agree >= 2, "{}: (finite difference, autodiff, relative error) per direction: {seen:?}", cfg.summary());
}

#[test]
fn finite_differences_every_variant() {
    let base = tiny(37);
    let mut variants = vec![base.clone()];
    for norm in [Norm::Layer, Norm::Rms] {
        for mlp in [Mlp::Relu, Mlp::Gelu, Mlp::Swiglu, Mlp::Geglu] {
            variants.push(ModelConfig { norm, mlp, d_ff: 24, ..base.clone() });
        }
    }
    variants.push(ModelConfig { position: Position::Learned, ..base.clone() });
    variants.push(ModelConfig { position: Position::rope(500.0), ..base.clone() });
    for kv in [4, 2, 1] {
        variants.push(ModelConfig { n_kv_heads: kv, ..base.clone() });
    }
    variants.push(ModelConfig { tie_embeddings: false, ..base.clone() });
    variants.push(ModelConfig { qk_norm: true, ..base.clone() });
    // Heads wider (Qwen3) and narrower than d_model / n_heads.
    variants.push(ModelConfig { head_dim: Some(8), qk_norm: true, n_kv_heads: 2, ..base.clone() });
    variants.push(ModelConfig { head_dim: Some(2), bias: true, ..base.clone() });
    variants.push(ModelConfig { parallel_residual: true, ..base.clone() });
    variants.push(ModelConfig { bias: true, ..base.clone() });
    variants.push(ModelConfig::gpt2(37, 16, 2, 4, 12));
    variants.extend(sparse_and_latent(&base));
    variants.push(ModelConfig { mup_base_width: Some(8), ..base.clone() });
    for v in &variants {
        gradient_check(v);
    }
}

#[test]
fn kv_cache_matches_full_recomputation() {
    let mut configs = vec![
        tiny(41),
        ModelConfig { n_kv_heads: 1, position: Position::Learned, ..tiny(41) },
        ModelConfig::gpt2(41, 16, 2, 2, 12),
        ModelConfig { head_dim: Some(8), qk_norm: true, n_kv_heads: 2, ..tiny(41) },
    ];
    // MLA's cache holds the latent and the rotary key; generation with it must equal the
    // uncached forward. MoE routes each token on its own, so the cache does not change it.
    configs.extend(sparse_and_latent(&tiny(41)));
    for cfg in configs {
        let device = Device::flex();
        let model = Transformer::seeded(&cfg, &device, 5);
        let (x, _) = batch(&cfg, &device);
        let full = model.forward(x.clone()); // (B, T, V)
        let [b, t, v] = full.dims();
        // Prefill 4 tokens at once, then one at a time.
        let mut cache = KvCache::new(&cfg, b, t, &device);
        let mut steps = vec![(0, 4)];
        steps.extend((4..t).map(|i| (i, 1)));
        for (start, len) in steps {
            let got = model.forward_cached(x.clone().narrow(1, start, len), &mut cache);
            let want = full.clone().narrow(1, start + len - 1, 1).reshape([b, v]);
            let diff = (got - want).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-4, "{}: cached logits at position {} differ by {diff}", cfg.summary(), start + len - 1);
        }
        assert_eq!(cache.len, t);
    }
}

#[test]
fn packed_documents_see_only_themselves() {
    // Three documents in one row (the third a second run of the first's id) and one in
    // another, padded: each document's logits equal those of the document alone.
    let mut configs = vec![
        tiny(41),
        ModelConfig { n_kv_heads: 1, position: Position::Learned, ..tiny(41) },
        ModelConfig { n_kv_heads: 4, ..tiny(41) },
        ModelConfig::gpt2(41, 16, 2, 2, 12),
    ];
    configs.extend(sparse_and_latent(&tiny(41)));
    for cfg in configs {
        let device = Device::flex();
        let model = Transformer::seeded(&cfg, &device, 5);
        let docs: [&[i64]; 4] = [&[3, 9, 4, 7, 1], &[12, 5, 8], &[2, 2, 30, 6], &[11, 13, 17, 19, 23, 29, 31]];
        let rows: [(Vec<usize>, Vec<u32>); 2] = [(vec![0, 1, 2], vec![0, 1, 0]), (vec![3], vec![5])];
        let t = 12;
        let mut tokens = Vec::new();
        let mut ids = Vec::new();
        for (which, names) in &rows {
            let mut row_ids = Vec::new();
            for (&d, &name) in which.iter().zip(names) {
                tokens.extend_from_slice(docs[d]);
                row_ids.extend(std::iter::repeat_n(name, docs[d].len()));
            }
            let pad = t - row_ids.len();
            tokens.extend(std::iter::repeat_n(0i64, pad));
            row_ids.extend(std::iter::repeat_n(99, pad));
            ids.push(row_ids);
        }
        let x = Tensor::<2, Int>::from_data(TensorData::new(tokens, [2, t]), &device);
        let packed = model.forward_packed(x, &ids).try_into_vec_as::<f32>().unwrap();
        let v = cfg.vocab_size;
        for (r, (which, _)) in rows.iter().enumerate() {
            let mut at = 0;
            for &d in which {
                let n = docs[d].len();
                let alone = Tensor::<2, Int>::from_data(TensorData::new(docs[d].to_vec(), [1, n]), &device);
                let alone = model.forward(alone).try_into_vec_as::<f32>().unwrap();
                let got = &packed[(r * t + at) * v..(r * t + at + n) * v];
                let worst = got.iter().zip(&alone).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(worst < 1e-4, "{}: document {d} differs by {worst}", cfg.summary());
                at += n;
            }
        }
    }
}

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    let cfg = tiny(23);
    let device = Device::flex();
    let draw = |seed| weights::to_safetensors(&Transformer::seeded(&cfg, &device, seed), &HashMap::new());
    let (a, b, c) = (draw(1), draw(1), draw(2));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn parameter_count_matches_the_module() {
    let mut configs = vec![
        tiny(50),
        ModelConfig::gpt2(50, 16, 2, 4, 12),
        ModelConfig { qk_norm: true, bias: true, tie_embeddings: false, ..tiny(50) },
        ModelConfig { head_dim: Some(8), qk_norm: true, qkv_bias: true, ..tiny(50) },
        ModelConfig { head_dim: Some(2), bias: true, ..ModelConfig::gpt2(50, 16, 2, 4, 12) },
    ];
    configs.extend(sparse_and_latent(&tiny(50)));
    configs.extend(sparse_and_latent(&ModelConfig::gpt2(50, 16, 2, 4, 12)));
    for cfg in configs {
        let m = Transformer::new(&cfg, &Device::flex());
        assert_eq!(m.num_params(), cfg.param_count().total, "{}", cfg.summary());
    }
    // Active parameters: the experts a token is not sent to do not count.
    let dense = tiny(50);
    let sparse = ModelConfig { moe: Some(MoeConfig { d_expert: dense.d_ff, ..moe(4, 1) }), ..dense.clone() };
    let (d, s) = (dense.param_count(), sparse.param_count());
    assert_eq!(d.active, d.total);
    // One expert of the dense MLP's width per token, plus the router.
    assert_eq!(s.active, d.total + dense.n_layers * dense.d_model * 4);
    assert!(s.total > s.active + 2 * dense.n_layers * 3 * dense.d_model * dense.d_ff);
}

#[test]
fn one_expert_at_top_one_is_the_dense_mlp() {
    // The same weights in a dense model and in a one-expert mixture (router weights anything,
    // since a softmax over one expert is 1): same logits, same loss, same gradients.
    let dense = ModelConfig { mlp: Mlp::Swiglu, ..tiny(29) };
    let sparse = ModelConfig { moe: Some(MoeConfig { d_expert: 0, aux_loss_coef: 0.0, ..moe(1, 1) }), ..dense.clone() };
    let plain = Device::flex();
    let device = engine::training_device(&plain);
    let a = Transformer::seeded(&dense, &device, 7);
    let mut named = weights::named_tensors(&a);
    for (name, _, _) in named.iter_mut() {
        *name = name.replace(".mlp.", ".moe.experts.0.");
    }
    for layer in 0..dense.n_layers {
        let gate = (0..dense.d_model).map(|i| i as f32 * 0.37 - 1.0).collect();
        named.push((format!("model.layers.{layer}.moe.gate.weight"), vec![1, dense.d_model], gate));
    }
    let bytes = weights::tensors_to_safetensors(&named, &HashMap::new());
    let b = weights::load_safetensors(Transformer::seeded(&sparse, &device, 8), &bytes).unwrap();
    let (x, y) = batch(&dense, &device);
    let (la, lb) = (a.loss(x.clone(), y.clone(), None), b.loss(x.clone(), y.clone(), None));
    let (va, vb) = (la.clone().into_scalar::<f32>(), lb.clone().into_scalar::<f32>());
    assert!((va - vb).abs() < 1e-6, "loss {va} vs {vb}");
    let fa = a.forward(x.clone()).try_into_vec_as::<f32>().unwrap();
    let fb = b.forward(x).try_into_vec_as::<f32>().unwrap();
    let worst = fa.iter().zip(&fb).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "logits differ by {worst}");
    let ga = weights::named_grads(&a, &GradientsParams::from_grads(la.backward(), &a));
    let gb: HashMap<String, Vec<f32>> = weights::named_grads(&b, &GradientsParams::from_grads(lb.backward(), &b))
        .into_iter()
        .map(|(n, _, v)| (n.replace(".moe.experts.0.", ".mlp."), v))
        .collect();
    for (name, _, g) in ga {
        let h = &gb[&name];
        let worst = g.iter().zip(h).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "gradient of {name} differs by {worst}");
    }
}

#[test]
fn router_statistics_capacity_and_bias_balancing() {
    // A router drawn with a large scale prefers few experts; the auxiliary-loss-free bias,
    // moved after each forward from that forward's loads (no gradient step), spreads the load.
    let cfg = ModelConfig {
        moe: Some(MoeConfig { bias_update_rate: 0.01, aux_loss_coef: 0.0, ..moe(4, 1) }),
        init_std: 1.0,
        ..tiny(31)
    };
    let device = Device::flex();
    let mut model = Transformer::seeded(&cfg, &device, 2);
    let (x, y) = batch(&cfg, &device);
    let mut ratios = Vec::new();
    for _ in 0..60 {
        let _ = model.loss(x.clone(), y.clone(), None);
        let stats = model.router_stats();
        assert_eq!(stats.assignments, vec![18, 18], "2 layers × 18 tokens × top-1");
        assert_eq!(stats.dropped_fraction(), 0.0);
        ratios.push(stats.max_over_mean());
        model = model.update_router_bias(&stats);
    }
    assert!(ratios[0] >= 2.0, "the initial routing should be unbalanced: {ratios:?}");
    // 18 tokens on 4 experts: 5/4.5 = 1.11 is the best possible; a sign-step bias oscillates
    // around balance.
    let late = &ratios[40..];
    let mean = late.iter().sum::<f64>() / late.len() as f64;
    let best = late.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(mean < 1.75 && best < 1.4, "the bias should balance the load: {ratios:?}");
    // Evaluation forwards record nothing.
    let _ = model.forward(x.clone());
    assert_eq!(model.router_stats(), model::RouterStats::default());
    // Capacity: at factor 0.5 of an even share, half the assignments at most are kept.
    let capped = ModelConfig { moe: Some(MoeConfig { capacity_factor: 0.5, ..moe(4, 2) }), ..tiny(31) };
    let model = Transformer::seeded(&capped, &device, 2);
    let _ = model.loss(x.clone(), y, None);
    let stats = model.router_stats();
    assert_eq!(stats.assignments, vec![36, 36]);
    // ⌈0.5 · 36 / 4⌉ = 5 per expert: at most 20 of 36 kept.
    assert!(stats.dropped_fraction() >= 16.0 / 36.0, "{stats:?}");
    // ... and evaluation forwards drop nothing: the logits of a token do not depend on its batch.
    let one = model.forward(x.clone().narrow(0, 0, 1)).try_into_vec_as::<f32>().unwrap();
    let both = model.forward(x).try_into_vec_as::<f32>().unwrap();
    let worst = one.iter().zip(&both).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{worst}");
}

#[test]
fn latent_attention_caches_fewer_numbers() {
    let gqa = tiny(30);
    let latent = ModelConfig { mla: mla(8, 4), ..gqa.clone() };
    // GQA: 2 layers × 2 × 2 kv heads × 4; MLA: 2 layers × (8 + 4).
    assert_eq!(gqa.kv_cache_floats_per_token(), 32);
    assert_eq!(latent.kv_cache_floats_per_token(), 24);
    let device = Device::flex();
    let cache = KvCache::new(&latent, 3, 10, &device);
    assert_eq!(cache.capacity, 10);
    let bad = ModelConfig { mla: mla(8, 4), position: Position::Learned, ..gqa.clone() };
    assert_eq!(bad.validate().unwrap_err().field, "mla");
    let bad = ModelConfig { moe: Some(moe(2, 3)), ..gqa };
    assert_eq!(bad.validate().unwrap_err().field, "moe.top_k");
}

#[test]
fn loader_refuses_other_architectures_and_garbage() {
    let device = Device::flex();
    let small = Transformer::new(&tiny(23), &device);
    let bytes = weights::to_safetensors(&small, &HashMap::new());
    // Wider model: shapes differ.
    let wide = ModelConfig { d_model: 32, ..tiny(23) };
    let e = weights::load_safetensors(Transformer::new(&wide, &device), &bytes).unwrap_err().to_string();
    assert!(e.contains("shape"), "{e}");
    // Learned positions: a tensor is missing.
    let learned = ModelConfig { position: Position::Learned, ..tiny(23) };
    let e = weights::load_safetensors(Transformer::new(&learned, &device), &bytes).unwrap_err().to_string();
    assert!(e.contains("embed_positions") && e.contains("missing"), "{e}");
    // Fewer layers: extra tensors are refused, not ignored.
    let shallow = ModelConfig { n_layers: 1, ..tiny(23) };
    let e = weights::load_safetensors(Transformer::new(&shallow, &device), &bytes).unwrap_err().to_string();
    assert!(e.contains("layers.1"), "{e}");
    // Truncated bytes.
    let e = weights::load_safetensors(Transformer::new(&tiny(23), &device), &bytes[..bytes.len() / 2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("truncated"), "{e}");
}
