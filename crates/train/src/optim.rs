//! The optimiser as the training loop uses it, configured from [`OptimSection`]: burn's AdamW
//! (decoupled weight decay, the same update as PyTorch's `torch.optim.AdamW`), Lion, or Muon for
//! the hidden matrices with AdamW for the rest ([`OptimKind`]), plus global-norm gradient
//! clipping, which burn does not offer (its clipping is per tensor).

use model::burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use model::burn::module::ParamGroup;
use model::burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use model::burn::optim::decay::WeightDecayConfig;
use model::burn::optim::momentum::MomentumConfig;
use model::burn::optim::{
    AdamWConfig, AdjustLrFn, GradientsAccumulator, GradientsParams, LionConfig, ModuleOptimizer, MuonConfig, Optimizer,
    RecordState, StateSink, StateSource,
};
use model::burn::prelude::*;
use model::{ModelConfig, Transformer};
use rayon::prelude::*;

use crate::config::{OptimKind, OptimSection};

/// The parameters Muon takes: the 2-D projection matrices of attention, the MLP and the experts
/// in every block (by their paths in [`Transformer`], [`model::HIDDEN_MATRICES`]); everything
/// else (embeddings, norms, biases, routers, the head) stays with AdamW.
pub const MUON_PARAMS: &str = model::HIDDEN_MATRICES;

/// The learning rate of every parameter at peak rate `lr`: `lr` everywhere, except under muP,
/// where the hidden matrices ([`model::HIDDEN_MATRICES`]) take `lr · base / d_model` (Yang et
/// al. 2021, Table 3, for Adam-like optimisers); embeddings, norms, biases, routers and the head
/// keep `lr`.
pub fn lr_policy(cfg: &ModelConfig, lr: f64) -> ModuleLearningRate {
    let m = cfg.mup_multiplier();
    if m == 1.0 {
        return lr.into();
    }
    let hidden = ParamGroup::from_regex(model::HIDDEN_MATRICES).expect("a valid pattern");
    ModuleLrScheduler::new(lr).with_group(hidden, lr / m).step()
}

/// The optimiser `o` names. Sophia needs its loop to refresh the Hessian estimate: only the
/// pretraining loop does ([`sophia`]); here it is built without that and so must not be used
/// (stages check with [`first_order`]).
pub fn optimizer(o: &OptimSection) -> ModuleOptimizer {
    let adamw = || {
        AdamWConfig::new()
            .with_beta_1(o.beta1 as f32)
            .with_beta_2(o.beta2 as f32)
            .with_epsilon(o.eps as f32)
            .with_weight_decay(o.weight_decay as f32)
    };
    match o.kind {
        OptimKind::Adamw => adamw().init(),
        OptimKind::Lion => LionConfig::new()
            .with_beta_1(o.beta1 as f32)
            .with_beta_2(o.beta2 as f32)
            .with_weight_decay(o.weight_decay as f32)
            .init(),
        OptimKind::Muon => {
            let muon = MuonConfig::new()
                .with_momentum(MomentumConfig { momentum: 0.95, dampening: 0.0, nesterov: true })
                .with_adjust_lr_fn(AdjustLrFn::MatchRmsAdamW)
                .with_weight_decay((o.weight_decay > 0.0).then(|| WeightDecayConfig::new(o.weight_decay as f32)));
            let group = ParamGroup::from_regex(MUON_PARAMS).expect("a valid pattern");
            adamw().init().with_group(group, muon.build(), None)
        }
        OptimKind::Sophia => sophia(o).0,
    }
}

/// Refuses an optimiser that stage `stage` cannot drive (Sophia needs Hessian-estimate steps,
/// which only pretraining takes).
pub fn first_order(o: &OptimSection, stage: &str) -> Result<(), crate::TrainError> {
    if o.kind == OptimKind::Sophia {
        return Err(crate::TrainError::Config {
            field: format!("{stage}.optim.kind"),
            message: "sophia is supported in pretraining only (its Hessian estimate is refreshed by that loop); use adamw, lion or muon".into(),
        });
    }
    Ok(())
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(p.id) {
            let s = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(p.id) {
            self.grads.register(p.id, g.mul_scalar(self.factor));
        }
    }
}

/// The L2 norm of all gradients together.
pub fn global_grad_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    let mut v = SquaredNorm { grads, total: None };
    model.visit(&mut v);
    v.total.map_or(0.0, |t| (t.into_scalar::<f32>() as f64).sqrt())
}

/// Scale all gradients by `factor`.
pub fn scale_grads<M: Module>(model: &M, grads: &mut GradientsParams, factor: f64) {
    model.visit(&mut Scale { grads, factor });
}

/// Clip the global gradient norm to `max_norm` (0 = no clipping); returns the norm before clipping.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = global_grad_norm(model, grads);
    if max_norm > 0.0 && norm > max_norm {
        scale_grads(model, grads, max_norm / (norm + 1e-6));
    }
    norm
}

/// How many shards [`sharded_grads`] should split a batch of `batch` rows into: one per compute
/// thread where the rows divide evenly, else one.
pub fn shard_count(batch: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    if batch % threads == 0 {
        threads
    } else {
        1
    }
}

/// Gradients of the mean loss over `shards` (equal-sized micro-batches), computed concurrently:
/// one shard per compute thread, each with its own forward and backward graph. On the CPU
/// backend most non-GEMM kernels are single-threaded, so running whole micro-batches side by
/// side uses the cores far better than splitting each GEMM. The result is the same gradient as
/// one pass over the concatenated batch, up to floating-point summation order; it is
/// deterministic for a given number of shards. The gradient is of `scale` × the mean shard
/// loss (e.g. `1 / grad_accum`). Returns the gradients and each shard's (unscaled) loss.
pub fn sharded_grads<F>(model: &Transformer, shards: usize, scale: f32, loss_of: F) -> (GradientsParams, Vec<f64>)
where
    F: Fn(usize, &Transformer) -> Tensor<1> + Sync,
{
    let factor = scale / shards as f32;
    let grads_of = |i: usize, m: &Transformer| {
        let loss = loss_of(i, m);
        let value = loss.clone().into_scalar::<f32>() as f64;
        let loss = if factor != 1.0 { loss * factor } else { loss };
        (GradientsParams::from_grads(loss.backward(), m), value)
    };
    if shards == 1 {
        let (g, value) = grads_of(0, model);
        return (g, vec![value]);
    }
    // Each shard gets its own parameter leaves (same values and ids, no shared autodiff nodes):
    // burn's autodiff merges graphs that share nodes, and concurrent forward/backward passes
    // on one merged graph deadlock on its locks.
    let replicas: Vec<Transformer> = (0..shards).map(|_| model.clone().map(&mut FreshLeaves)).collect();
    let results: Vec<(GradientsParams, f64)> =
        replicas.into_par_iter().enumerate().map(|(i, replica)| grads_of(i, &replica)).collect();
    let mut acc = GradientsAccumulator::<Transformer>::new();
    let mut losses = Vec::with_capacity(shards);
    for (g, l) in results {
        acc.accumulate(model, g);
        losses.push(l);
    }
    (acc.grads(), losses)
}

/// Replaces every parameter tensor by a fresh autodiff leaf with the same value and id.
struct FreshLeaves;

impl ModuleMapper for FreshLeaves {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        p.map(|t| t.detach().require_grad())
    }
}

/// Sophia (Liu et al. 2023): a clipped, diagonally preconditioned momentum step,
/// `θ ← θ(1 − lr·wd) − lr·clip(m / max(ρ·h, ε), 1)`, with `m` the EMA of gradients (β1) and `h`
/// an EMA (β2) of a diagonal Hessian estimate refreshed every few steps by the training loop.
///
/// The estimate is the Gauss–Newton–Bartlett one: labels sampled from the model's own
/// next-token distributions, the gradient `ĝ` of the mean loss on them, `ĥ = N·ĝ⊙ĝ` for `N`
/// predicted tokens ([`gnb_grads`]). burn's optimiser step sees one tensor and its gradient, so
/// the loop tells the optimiser which kind of step it is through a shared [`SophiaHessian`]
/// handle: in a Hessian step only `h` changes and the weights are returned as they are.
#[derive(Clone)]
pub struct Sophia {
    beta1: f64,
    beta2: f64,
    rho: f64,
    eps: f64,
    weight_decay: f64,
    hessian: SophiaHessian,
}

/// The flag and scale a training loop sets around a Hessian-estimate step of [`Sophia`].
#[derive(Clone, Default)]
pub struct SophiaHessian {
    active: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// `N` of `ĥ = N·ĝ⊙ĝ`, as f64 bits.
    scale: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SophiaHessian {
    /// Folds the Hessian estimate from `grads` (the gradient of the mean loss on sampled labels
    /// over `tokens` predictions) into the optimiser's `h`; the model comes back unchanged.
    pub fn update(
        &self,
        optim: &mut ModuleOptimizer,
        model: Transformer,
        grads: GradientsParams,
        tokens: usize,
    ) -> Transformer {
        use std::sync::atomic::Ordering;
        self.scale.store((tokens as f64).to_bits(), Ordering::SeqCst);
        self.active.store(true, Ordering::SeqCst);
        let model = optim.step(0.0, model, grads);
        self.active.store(false, Ordering::SeqCst);
        model
    }

    fn state(&self) -> Option<f64> {
        use std::sync::atomic::Ordering;
        self.active.load(Ordering::SeqCst).then(|| f64::from_bits(self.scale.load(Ordering::SeqCst)))
    }
}

/// Sophia's per-parameter state: the gradient EMA and the Hessian-estimate EMA.
#[derive(Clone)]
pub struct SophiaState<const D: usize> {
    pub m: Tensor<D>,
    pub h: Tensor<D>,
}

impl<const D: usize> RecordState for SophiaState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "m", self.m.to_data());
        out.push_tensor(prefix, "h", self.h.to_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let m = src.take_tensor(prefix, "m")?;
        let h = src.take_tensor(prefix, "h")?;
        Some(Self { m: Tensor::from_data(m, device), h: Tensor::from_data(h, device) })
    }
}

impl Optimizer for Sophia {
    type State<const D: usize> = SophiaState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        w: Tensor<D>,
        g: Tensor<D>,
        state: Option<SophiaState<D>>,
    ) -> (Tensor<D>, Option<SophiaState<D>>) {
        let (m, h) = match state {
            Some(s) => (s.m, s.h),
            None => (g.zeros_like(), g.zeros_like()),
        };
        if let Some(scale) = self.hessian.state() {
            let estimate = g.clone() * g * scale;
            let h = h.mul_scalar(self.beta2) + estimate.mul_scalar(1.0 - self.beta2);
            return (w, Some(SophiaState { m, h }));
        }
        let m = m.mul_scalar(self.beta1) + g.mul_scalar(1.0 - self.beta1);
        let ratio = (m.clone() / h.clone().mul_scalar(self.rho).clamp_min(self.eps)).clamp(-1.0, 1.0);
        let w = w.mul_scalar(1.0 - lr * self.weight_decay) - ratio.mul_scalar(lr);
        (w, Some(SophiaState { m, h }))
    }

    fn to_device<const D: usize>(s: SophiaState<D>, device: &Device) -> SophiaState<D> {
        SophiaState { m: s.m.to_device(device), h: s.h.to_device(device) }
    }
}

/// Sophia's ρ (the clipping scale of `m / h`) and ε.
pub const SOPHIA_RHO: f64 = 0.04;
pub const SOPHIA_EPS: f64 = 1e-12;

/// Sophia from `o` (`beta1`, `beta2`, `weight_decay`) and the handle its loop drives.
pub fn sophia(o: &OptimSection) -> (ModuleOptimizer, SophiaHessian) {
    let hessian = SophiaHessian::default();
    let s = Sophia {
        beta1: o.beta1,
        beta2: o.beta2,
        rho: SOPHIA_RHO,
        eps: SOPHIA_EPS,
        weight_decay: o.weight_decay,
        hessian: hessian.clone(),
    };
    (ModuleOptimizer::from(s), hessian)
}

/// The Gauss–Newton–Bartlett gradient for Sophia's Hessian estimate: labels drawn from the
/// model's own next-token distributions at every position of `x` (from a generator seeded by
/// `seed`), and the gradient of the mean cross-entropy on them. Returns the gradients and the
/// number of predictions.
pub fn gnb_grads(model: &Transformer, x: Tensor<2, Int>, seed: u64) -> (GradientsParams, usize) {
    use rand::{Rng, SeedableRng};
    let [b, t] = x.dims();
    let logits = model.forward(x.clone());
    let probs: Vec<f32> = model::burn::tensor::activation::softmax(logits.clone().detach(), 2)
        .try_into_vec_as::<f32>()
        .expect("f32 probabilities");
    let v = probs.len() / (b * t);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<i64> = probs
        .chunks(v)
        .map(|p| {
            let u: f32 = rng.random();
            let mut acc = 0.0;
            p.iter()
                .position(|&q| {
                    acc += q;
                    acc >= u
                })
                .unwrap_or(v - 1) as i64
        })
        .collect();
    let y = Tensor::<2, Int>::from_data(TensorData::new(labels, [b, t]), &x.device());
    let loss = model::token_cross_entropy(logits, y, None);
    (GradientsParams::from_grads(loss.backward(), model), b * t)
}
