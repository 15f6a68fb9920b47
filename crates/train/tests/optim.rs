//! The optimisers a stage can name: one step of each equals the update computed by hand from the
//! same gradients, and each trains a toy model.

use model::burn::module::{Module, ModuleVisitor, Param};
use model::burn::optim::GradientsParams;
use model::burn::prelude::*;
use model::engine::{self, Backend};
use model::{ModelConfig, Transformer};
use train::config::{OptimKind, OptimSection};
use train::optim::{gnb_grads, optimizer, sophia, MUON_PARAMS, SOPHIA_EPS, SOPHIA_RHO};

/// Every float parameter: its path, shape, values and (if any) gradient.
struct Collect<'a> {
    grads: Option<&'a GradientsParams>,
    path: Vec<String>,
    out: Vec<(String, Vec<usize>, Vec<f32>, Option<Vec<f32>>)>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let v = p.val();
        let shape = v.dims().to_vec();
        let values = v.inner().try_into_vec_as::<f32>().unwrap();
        let grad = self.grads.and_then(|g| g.get::<D>(p.id)).map(|g| g.try_into_vec_as::<f32>().unwrap());
        self.out.push((self.path.join("."), shape, values, grad));
    }
}

fn collect(m: &Transformer, grads: Option<&GradientsParams>) -> Vec<(String, Vec<usize>, Vec<f32>, Option<Vec<f32>>)> {
    let mut c = Collect { grads, path: Vec::new(), out: Vec::new() };
    m.visit(&mut c);
    c.out
}

fn tiny() -> (Transformer, Tensor<2, Int>, Tensor<2, Int>, Device) {
    let device = engine::training_device(&engine::device(Backend::Cpu).unwrap());
    let cfg = ModelConfig::llama(32, 16, 1, 2, 16);
    let m = Transformer::seeded(&cfg, &device, 7);
    let ids: Vec<i64> = (0..2 * 9).map(|i| (i * 7 % 31) as i64).collect();
    let x: Vec<i64> = ids.chunks(9).flat_map(|r| r[..8].to_vec()).collect();
    let y: Vec<i64> = ids.chunks(9).flat_map(|r| r[1..].to_vec()).collect();
    let x = Tensor::<2, Int>::from_data(TensorData::new(x, [2, 8]), &device);
    let y = Tensor::<2, Int>::from_data(TensorData::new(y, [2, 8]), &device);
    (m, x, y, device)
}

/// The parameters before and after one step of `o` at rate `lr`, with their gradients.
fn one_step(
    o: &OptimSection,
    lr: f64,
) -> (Vec<(String, Vec<usize>, Vec<f32>, Option<Vec<f32>>)>, Vec<(String, Vec<usize>, Vec<f32>, Option<Vec<f32>>)>) {
    let (m, x, y, _) = tiny();
    let loss = m.loss(x, y, None);
    let grads = GradientsParams::from_grads(loss.backward(), &m);
    let before = collect(&m, Some(&grads));
    let mut opt = optimizer(o);
    let after = collect(&opt.step(lr, m, grads), None);
    (before, after)
}

#[test]
fn a_lion_step_is_the_sign_of_the_gradient_with_decoupled_decay() {
    let (lr, wd) = (0.01, 0.1);
    let o = OptimSection { kind: OptimKind::Lion, weight_decay: wd, ..Default::default() };
    let (before, after) = one_step(&o, lr);
    let mut checked = 0;
    for ((name, _, w, g), (_, _, w2, _)) in before.iter().zip(&after) {
        let g = g.as_ref().unwrap_or_else(|| panic!("{name} has no gradient"));
        for i in 0..w.len() {
            // From no state: sign(β1·0 + (1 − β1)·g) = sign(g).
            let sign = if g[i] > 0.0 {
                1.0
            } else if g[i] < 0.0 {
                -1.0
            } else {
                0.0
            };
            let want = w[i] as f64 * (1.0 - lr * wd) - lr * sign;
            assert!((w2[i] as f64 - want).abs() < 1e-6, "{name}[{i}]: {} vs {want}", w2[i]);
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} values");
}

/// `X` normalised by its Frobenius norm, then five quintic Newton–Schulz steps (on the wide
/// orientation), in f64.
fn newton_schulz(g: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let tall = rows > cols;
    let (r, c) = if tall { (cols, rows) } else { (rows, cols) };
    let at = |i: usize, j: usize| if tall { g[j * cols + i] } else { g[i * cols + j] };
    let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-7);
    let mut x: Vec<f64> = (0..r * c).map(|k| at(k / c, k % c) / norm).collect();
    let (a, b, cc) = (3.4445, -4.775, 2.0315);
    let mul = |p: &[f64], q: &[f64], n: usize, k: usize, m: usize| -> Vec<f64> {
        let mut o = vec![0.0; n * m];
        for i in 0..n {
            for t in 0..k {
                for j in 0..m {
                    o[i * m + j] += p[i * k + t] * q[t * m + j];
                }
            }
        }
        o
    };
    for _ in 0..5 {
        let xt: Vec<f64> = (0..c * r).map(|k| x[(k % r) * c + k / r]).collect();
        let am = mul(&x, &xt, r, c, r);
        let a2 = mul(&am, &am, r, r, r);
        let bm: Vec<f64> = am.iter().zip(&a2).map(|(p, q)| b * p + cc * q).collect();
        let bx = mul(&bm, &x, r, r, c);
        x = x.iter().zip(&bx).map(|(p, q)| a * p + q).collect();
    }
    if tall {
        (0..rows * cols).map(|k| x[(k % cols) * rows + k / cols]).collect()
    } else {
        x
    }
}

#[test]
fn a_muon_step_orthogonalises_the_hidden_matrices_and_adamw_takes_the_rest() {
    let (lr, wd) = (0.01, 0.1);
    let o = OptimSection { kind: OptimKind::Muon, weight_decay: wd, ..Default::default() };
    let (before, after) = one_step(&o, lr);
    let pattern = regex_lite(MUON_PARAMS);
    let (mut muon, mut adamw) = (0, 0);
    for ((name, shape, w, g), (_, _, w2, _)) in before.iter().zip(&after) {
        let g: Vec<f64> = g.as_ref().unwrap().iter().map(|&v| v as f64).collect();
        let want: Vec<f64> = if pattern(name) {
            muon += 1;
            assert_eq!(shape.len(), 2, "{name}");
            // First step: velocity = g, Nesterov: 0.95·g + g (the scale vanishes in the norm).
            let nesterov: Vec<f64> = g.iter().map(|v| 1.95 * v).collect();
            let x = newton_schulz(&nesterov, shape[0], shape[1]);
            let adjusted = lr * 0.2 * (shape[0].max(shape[1]) as f64).sqrt();
            w.iter().zip(&x).map(|(&w, u)| w as f64 * (1.0 - lr * wd) - adjusted * u).collect()
        } else {
            adamw += 1;
            // AdamW's first step: m̂ = g, v̂ = g², so the update is g / (|g| + ε).
            w.iter().zip(&g).map(|(&w, &g)| w as f64 * (1.0 - lr * wd) - lr * g / (g.abs() + 1e-8)).collect()
        };
        for i in 0..w.len() {
            assert!((w2[i] as f64 - want[i]).abs() < 2e-5, "{name}[{i}]: {} vs {}", w2[i], want[i]);
        }
    }
    assert!(muon >= 6 && adamw >= 3, "{muon} matrices with Muon, {adamw} tensors with AdamW");
}

/// Whether a parameter path matches [`MUON_PARAMS`] (written out here so the test does not share
/// the code under test: `layers.N.(self_attn|mlp|moe).[experts.N.|shared_expert.]NAME_proj.weight`,
/// and MLA's `kv_a_proj_with_mqa`).
fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool {
    assert_eq!(pattern, model::HIDDEN_MATRICES);
    |name: &str| {
        let p: Vec<&str> = name.split('.').collect();
        let inner = match p.len() {
            5 => true,
            6 => p[3] == "shared_expert",
            7 => p[3] == "experts" && p[4].chars().all(|c| c.is_ascii_digit()),
            _ => false,
        };
        let leaf = p[p.len() - 2];
        p.len() >= 5
            && inner
            && p[0] == "layers"
            && p[1].chars().all(|c| c.is_ascii_digit())
            && matches!(p[2], "self_attn" | "mlp" | "moe")
            && (leaf.ends_with("_proj") || leaf.ends_with("_proj_with_mqa"))
            && p[p.len() - 1] == "weight"
    }
}

#[test]
fn the_hidden_matrix_pattern_takes_projections_only() {
    let pattern = regex_lite(MUON_PARAMS);
    for (name, want) in [
        ("layers.0.self_attn.q_proj.weight", true),
        ("layers.11.mlp.down_proj.weight", true),
        ("layers.1.moe.experts.3.up_proj.weight", true),
        ("layers.1.moe.shared_expert.gate_proj.weight", true),
        ("layers.0.self_attn.kv_a_proj_with_mqa.weight", true),
        ("layers.0.self_attn.q_norm.weight", false),
        ("layers.0.self_attn.kv_a_layernorm.weight", false),
        ("layers.1.moe.gate.weight", false),
        ("layers.0.self_attn.q_proj.bias", false),
        ("layers.0.input_layernorm.weight", false),
        ("embed_tokens.weight", false),
        ("lm_head.weight", false),
    ] {
        assert_eq!(pattern(name), want, "{name}");
        let group = model::burn::module::ParamGroup::from_regex(MUON_PARAMS).unwrap();
        assert_eq!(group.matches(&model::burn::module::ParamId::new(), Some(name)), want, "{name} (regex)");
    }
}

#[test]
fn a_sophia_step_is_clipped_momentum_over_the_hessian_estimate() {
    let (lr, wd) = (0.01, 0.1);
    let o = OptimSection { kind: OptimKind::Sophia, weight_decay: wd, ..Default::default() };
    let (m, x, y, _) = tiny();
    let g = GradientsParams::from_grads(m.loss(x.clone(), y, None).backward(), &m);
    let (gh, n) = gnb_grads(&m, x, 11);
    assert_eq!(n, 16);
    let with_g = collect(&m, Some(&g));
    let with_gh = collect(&m, Some(&gh));
    let (mut opt, hessian) = sophia(&o);
    // A Hessian step changes no weight.
    let m = hessian.update(&mut opt, m, gh, n);
    let unchanged = collect(&m, None);
    for ((name, _, w, _), (_, _, w1, _)) in with_g.iter().zip(&unchanged) {
        assert_eq!(w, w1, "{name} moved in a Hessian step");
    }
    let after = collect(&opt.step(lr, m, g), None);
    let (b1, b2) = (o.beta1, o.beta2);
    let mut clipped = 0;
    for (((name, _, w, g), (_, _, _, gh)), (_, _, w2, _)) in with_g.iter().zip(&with_gh).zip(&after) {
        let (g, gh) = (g.as_ref().unwrap(), gh.as_ref().unwrap());
        for i in 0..w.len() {
            let h = (1.0 - b2) * n as f64 * (gh[i] as f64).powi(2);
            let m = (1.0 - b1) * g[i] as f64;
            let ratio = (m / (SOPHIA_RHO * h).max(SOPHIA_EPS)).clamp(-1.0, 1.0);
            clipped += usize::from(ratio.abs() == 1.0);
            let want = w[i] as f64 * (1.0 - lr * wd) - lr * ratio;
            assert!((w2[i] as f64 - want).abs() < 1e-6, "{name}[{i}]: {} vs {want}", w2[i]);
        }
    }
    assert!(clipped > 0, "some coordinates clip");
}

#[test]
fn sophia_is_refused_where_no_loop_refreshes_its_hessian() {
    let optim = OptimSection { kind: OptimKind::Sophia, ..Default::default() };
    let e = train::sft::SftConfig { optim, ..Default::default() }.check().unwrap_err().to_string();
    assert!(e.contains("sft.optim.kind") && e.contains("pretraining only"), "{e}");
}

#[test]
fn each_optimiser_trains_a_toy_model() {
    for (kind, lr) in
        [(OptimKind::Adamw, 3e-3), (OptimKind::Lion, 3e-3), (OptimKind::Muon, 3e-3), (OptimKind::Sophia, 3e-3)]
    {
        let (mut m, x, y, _) = tiny();
        let o = OptimSection { kind, lr, weight_decay: 0.0, ..Default::default() };
        let (mut opt, hessian) = match kind {
            OptimKind::Sophia => {
                let (o, h) = sophia(&o);
                (o, Some(h))
            }
            _ => (optimizer(&o), None),
        };
        let mut losses = Vec::new();
        for step in 0..60 {
            if let Some(h) = hessian.as_ref().filter(|_| step % 5 == 0) {
                let (g, n) = gnb_grads(&m, x.clone(), step);
                m = h.update(&mut opt, m, g, n);
            }
            let loss = m.loss(x.clone(), y.clone(), None);
            losses.push(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            m = opt.step(lr, m, grads);
        }
        eprintln!("{kind:?}: loss {:.3} -> {:.3}", losses[0], losses[59]);
        assert!(losses[59] < 0.5 * losses[0], "{kind:?} did not train: {} -> {}", losses[0], losses[59]);
    }
}

#[test]
fn sophia_state_survives_a_checkpoint() {
    let o = OptimSection { kind: OptimKind::Sophia, ..Default::default() };
    let (m, x, y, _) = tiny();
    let (mut opt, hessian) = sophia(&o);
    let (gh, n) = gnb_grads(&m, x.clone(), 5);
    let m = hessian.update(&mut opt, m, gh, n);
    let g = GradientsParams::from_grads(m.loss(x.clone(), y.clone(), None).backward(), &m);
    let m = opt.step(1e-3, m, g);
    // Save and reload the optimiser, then take the same step with both.
    let bytes = opt.into_bytes().unwrap();
    let mut reloaded = sophia(&o).0.from_bytes(bytes).unwrap();
    let g1 = GradientsParams::from_grads(m.loss(x.clone(), y.clone(), None).backward(), &m);
    let g2 = GradientsParams::from_grads(m.loss(x, y, None).backward(), &m);
    let a = collect(&opt.step(1e-3, m.clone(), g1), None);
    let b = collect(&reloaded.step(1e-3, m, g2), None);
    for ((name, _, wa, _), (_, _, wb, _)) in a.iter().zip(&b) {
        assert_eq!(wa, wb, "{name}");
    }
}

#[test]
fn mup_trains_hidden_matrices_at_the_rate_over_the_width_multiplier() {
    // Width 16 at base 4: m = 4. AdamW's first step moves every weight by lr·g/(|g| + ε) ≈ lr
    // (plus decay): the hidden projections by lr/4, everything else by lr.
    let device = engine::training_device(&engine::device(Backend::Cpu).unwrap());
    let cfg = ModelConfig { mup_base_width: Some(4), ..ModelConfig::llama(32, 16, 1, 2, 16) };
    let m = Transformer::seeded(&cfg, &device, 7);
    let (_, x, y, _) = tiny();
    let grads = GradientsParams::from_grads(m.loss(x, y, None).backward(), &m);
    let before = collect(&m, Some(&grads));
    let o = OptimSection { weight_decay: 0.0, ..Default::default() };
    let lr = 0.01;
    let after = collect(&optimizer(&o).step(train::optim::lr_policy(&cfg, lr), m, grads), None);
    let hidden = regex_lite(MUON_PARAMS);
    let (mut scaled, mut plain) = (0, 0);
    for ((name, _, w, g), (_, _, w2, _)) in before.iter().zip(&after) {
        let g = g.as_ref().unwrap();
        let rate = if hidden(name) { lr / 4.0 } else { lr };
        for i in 0..w.len() {
            let want = w[i] as f64 - rate * g[i] as f64 / (g[i].abs() as f64 + 1e-8);
            assert!((w2[i] as f64 - want).abs() < 1e-6, "{name}[{i}]: {} vs {want}", w2[i]);
        }
        if hidden(name) {
            scaled += 1;
        } else {
            plain += 1;
        }
    }
    assert!(scaled == 7 && plain >= 3, "{scaled} hidden matrices, {plain} others");
    // Without muP every parameter takes the plain rate.
    let cfg = ModelConfig::llama(32, 16, 1, 2, 16);
    assert_eq!(
        train::optim::lr_policy(&cfg, lr)
            .lr_from_param(model::burn::module::ParamId::new(), Some("layers.0.mlp.up_proj.weight")),
        lr
    );
}
