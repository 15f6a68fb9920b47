//! The optimiser as the training loop uses it, configured from [`OptimSection`]: burn's AdamW
//! (decoupled weight decay, the same update as PyTorch's `torch.optim.AdamW`), Lion, or Muon for
//! the hidden matrices with AdamW for the rest ([`OptimKind`]), plus global-norm gradient
//! clipping, which burn does not offer (its clipping is per tensor).

use model::burn::module::ParamGroup;
use model::burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use model::burn::optim::decay::WeightDecayConfig;
use model::burn::optim::momentum::MomentumConfig;
use model::burn::optim::{
    AdamWConfig, AdjustLrFn, GradientsAccumulator, GradientsParams, LionConfig, ModuleOptimizer, MuonConfig,
};
use model::burn::prelude::*;
use model::Transformer;
use rayon::prelude::*;

use crate::config::{OptimKind, OptimSection};

/// The parameters Muon takes: the 2-D projection matrices of attention and the MLP in every
/// block (by their paths in [`Transformer`]); everything else stays with AdamW.
pub const MUON_PARAMS: &str = r"^layers\.\d+\.(self_attn|mlp)\.\w+\.weight$";

/// The optimiser `o` names.
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
    }
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
