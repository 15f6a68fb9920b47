//! The optimiser as the training loop uses it: burn's AdamW (decoupled weight decay, the same
//! update as PyTorch's `torch.optim.AdamW`) configured from [`OptimSection`], plus global-norm
//! gradient clipping, which burn does not offer (its clipping is per tensor).

use model::burn::module::{Module, ModuleVisitor, Param};
use model::burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use model::burn::prelude::*;

use crate::config::OptimSection;

pub fn adamw(o: &OptimSection) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_beta_1(o.beta1 as f32)
        .with_beta_2(o.beta2 as f32)
        .with_epsilon(o.eps as f32)
        .with_weight_decay(o.weight_decay as f32)
        .init()
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
