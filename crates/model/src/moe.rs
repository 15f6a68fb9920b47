//! The mixture-of-experts feed-forward block ([`crate::config::MoeConfig`]): a router, `E`
//! routed experts of which each token uses `k`, an optional shared expert, a load-balancing
//! loss, optional auxiliary-loss-free bias balancing and expert capacity.
//!
//! Routing is decided on the host: the router's probabilities are read back, each token's `k`
//! best experts chosen (by probability plus the balancing bias, if any), capacity applied in
//! token order (first choices of every token before second choices, as in GShard), and then
//! each expert runs on exactly its tokens (`select` gathers them, `select_assign` with `Add`
//! scatters the gated outputs back), so an expert costs only its share of the batch. The gates
//! are the router's probabilities at the chosen experts, taken from the graph, so the router
//! learns from the language-model loss as well as from the balancing loss.
//!
//! Dimension letters: `N` tokens (B·T flattened), `D` width, `E` experts, `F` expert width.

use std::sync::{Arc, Mutex};

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::IndexingUpdateOp;

use crate::config::MoeConfig;
use crate::transformer::FeedForward;

/// What the routers of one model did over the training forwards since the last
/// [`RouterStats::take`]: summed per layer, so a training loop can log it and move the
/// balancing biases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouterStats {
    /// `load[layer][e]`: token assignments that chose expert `e` (before capacity).
    pub load: Vec<Vec<u64>>,
    /// Assignments dropped for capacity, per layer.
    pub dropped: Vec<u64>,
    /// Assignments made (tokens × k), per layer.
    pub assignments: Vec<u64>,
    /// Sum of the balancing losses recorded (one per layer per forward) and how many.
    pub aux_sum: f64,
    pub aux_count: u64,
}

impl RouterStats {
    fn add(&mut self, layer: usize, load: &[u64], dropped: u64, aux: f64) {
        if self.load.len() <= layer {
            self.load.resize(layer + 1, vec![0; load.len()]);
            self.dropped.resize(layer + 1, 0);
            self.assignments.resize(layer + 1, 0);
        }
        for (a, b) in self.load[layer].iter_mut().zip(load) {
            *a += b;
        }
        self.dropped[layer] += dropped;
        self.assignments[layer] += load.iter().sum::<u64>();
        self.aux_sum += aux;
        self.aux_count += 1;
    }

    /// Add `other`'s counts to these.
    pub fn merge(&mut self, other: &RouterStats) {
        for (layer, load) in other.load.iter().enumerate() {
            if self.load.len() <= layer {
                self.load.resize(layer + 1, vec![0; load.len()]);
                self.dropped.resize(layer + 1, 0);
                self.assignments.resize(layer + 1, 0);
            }
            for (a, b) in self.load[layer].iter_mut().zip(load) {
                *a += b;
            }
            self.dropped[layer] += other.dropped[layer];
            self.assignments[layer] += other.assignments[layer];
        }
        self.aux_sum += other.aux_sum;
        self.aux_count += other.aux_count;
    }

    /// Whether nothing was recorded (a dense model, or no training forward).
    pub fn is_empty(&self) -> bool {
        self.aux_count == 0
    }

    /// Largest expert load over the mean load, averaged over layers (1 = perfectly balanced,
    /// `E` = every token to one expert).
    pub fn max_over_mean(&self) -> f64 {
        let ratios: Vec<f64> = self
            .load
            .iter()
            .filter(|l| l.iter().sum::<u64>() > 0)
            .map(|l| {
                let mean = l.iter().sum::<u64>() as f64 / l.len() as f64;
                *l.iter().max().unwrap_or(&0) as f64 / mean
            })
            .collect();
        if ratios.is_empty() {
            return f64::NAN;
        }
        ratios.iter().sum::<f64>() / ratios.len() as f64
    }

    /// Fraction of assignments dropped for capacity, over all layers.
    pub fn dropped_fraction(&self) -> f64 {
        let total: u64 = self.assignments.iter().sum();
        if total == 0 {
            return 0.0;
        }
        self.dropped.iter().sum::<u64>() as f64 / total as f64
    }

    /// Mean balancing loss recorded.
    pub fn aux_mean(&self) -> f64 {
        if self.aux_count == 0 {
            f64::NAN
        } else {
            self.aux_sum / self.aux_count as f64
        }
    }
}

/// A shared, clonable sink for [`RouterStats`]: every clone of a model (the per-shard replicas
/// of a training step included) records into the same one.
#[derive(Debug, Clone, Default)]
pub struct StatsSink(Arc<Mutex<RouterStats>>);

impl StatsSink {
    fn record(&self, layer: usize, load: &[u64], dropped: u64, aux: f64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).add(layer, load, dropped, aux);
    }

    /// Everything recorded since the last call, leaving the sink empty.
    pub fn take(&self) -> RouterStats {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The mixture-of-experts block.
#[derive(Module, Debug)]
pub struct Moe {
    /// `D → E` scores (Qwen2-MoE's `mlp.gate`).
    pub gate: Linear,
    pub experts: Vec<FeedForward>,
    pub shared_expert: Option<FeedForward>,
    /// Auxiliary-loss-free balancing bias, one per expert, added to the scores for choosing
    /// only; moved by the training loop ([`crate::Transformer::update_router_bias`]), never by
    /// gradients.
    pub score_bias: Option<Param<Tensor<1>>>,
    #[module(skip)]
    cfg: MoeConfig,
    #[module(skip)]
    layer: usize,
    #[module(skip)]
    sink: StatsSink,
}

/// The routing of one forward: per expert, the tokens it runs on.
struct Routing {
    /// `kept[e]`: token indices routed to `e` and within capacity, ascending.
    kept: Vec<Vec<i64>>,
    /// `(N, E)` 1 where a token chose an expert (before capacity), else 0.
    chosen: Vec<f32>,
    load: Vec<u64>,
    dropped: u64,
}

/// Choose `k` experts per token from `probs` (`N × E`, row-major) plus `bias`, then apply
/// `capacity` assignments per expert (None = unlimited) in rank order: all first choices in
/// token order, then all second choices, ...
fn route(probs: &[f32], bias: Option<&[f32]>, n: usize, e: usize, k: usize, capacity: Option<usize>) -> Routing {
    let mut choices: Vec<Vec<usize>> = Vec::with_capacity(n);
    for row in probs.chunks(e) {
        let mut idx: Vec<usize> = (0..e).collect();
        let score = |j: usize| row[j] + bias.map_or(0.0, |b| b[j]);
        // Highest score first; ties to the lower index, so routing is deterministic.
        idx.sort_by(|&a, &b| score(b).partial_cmp(&score(a)).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
        idx.truncate(k);
        choices.push(idx);
    }
    let mut chosen = vec![0.0; n * e];
    let mut load = vec![0u64; e];
    let mut kept: Vec<Vec<i64>> = vec![Vec::new(); e];
    let mut dropped = 0;
    for rank in 0..k {
        for (t, c) in choices.iter().enumerate() {
            let x = c[rank];
            chosen[t * e + x] = 1.0;
            load[x] += 1;
            if capacity.is_some_and(|cap| kept[x].len() >= cap) {
                dropped += 1;
            } else {
                kept[x].push(t as i64);
            }
        }
    }
    for list in &mut kept {
        list.sort_unstable();
    }
    Routing { kept, chosen, load, dropped }
}

impl Moe {
    pub(crate) fn new(
        gate: Linear,
        experts: Vec<FeedForward>,
        shared_expert: Option<FeedForward>,
        cfg: &MoeConfig,
        layer: usize,
        sink: StatsSink,
        device: &Device,
    ) -> Self {
        let score_bias = (cfg.bias_update_rate > 0.0)
            .then(|| Param::from_tensor(Tensor::zeros([cfg.experts], device)).set_require_grad(false));
        Self { gate, experts, shared_expert, score_bias, cfg: cfg.clone(), layer, sink }
    }

    /// `(B, T, D) -> (B, T, D)` and, when `train` is set, the layer's balancing loss (a
    /// one-element tensor). Training forwards apply the capacity and record router statistics;
    /// other forwards route every token to its `k` experts.
    pub(crate) fn forward(&self, x: Tensor<3>, train: bool) -> (Tensor<3>, Option<Tensor<1>>) {
        let [b, t, d] = x.dims();
        let (n, e, k) = (b * t, self.cfg.experts, self.cfg.top_k);
        let device = x.device();
        let xf = x.reshape([n, d]);
        let probs = softmax(self.gate.forward(xf.clone()), 1); // (N, E)
        let host: Vec<f32> = probs.clone().try_into_vec_as::<f32>().expect("router probabilities as f32");
        let bias: Option<Vec<f32>> =
            self.score_bias.as_ref().map(|p| p.val().try_into_vec_as::<f32>().expect("bias as f32"));
        let capacity = (train && self.cfg.capacity_factor > 0.0)
            .then(|| ((self.cfg.capacity_factor * (n * k) as f64 / e as f64).ceil() as usize).max(1));
        let r = route(&host, bias.as_deref(), n, e, k, capacity);
        let chosen = Tensor::<1>::from_floats(r.chosen.as_slice(), &device).reshape([n, e]);
        let mut gates = probs.clone() * chosen; // (N, E): probabilities at chosen experts
        if self.cfg.normalize_gates {
            gates = gates.clone() / gates.sum_dim(1).clamp_min(1e-9);
        }
        let mut out = match &self.shared_expert {
            Some(s) => s.forward(xf.clone()),
            None => Tensor::zeros([n, d], &device),
        };
        for (j, (expert, tokens)) in self.experts.iter().zip(&r.kept).enumerate() {
            if tokens.is_empty() {
                continue;
            }
            let idx = Tensor::<1, Int>::from_data(TensorData::new(tokens.clone(), [tokens.len()]), &device);
            let y = expert.forward(xf.clone().select(0, idx.clone())); // (m, D)
            let g = gates.clone().narrow(1, j, 1).select(0, idx.clone()); // (m, 1)
            out = out.select_assign(0, idx, y * g, IndexingUpdateOp::Add);
        }
        let aux = train.then(|| {
            // Switch: E · Σ_e f_e · P_e, f_e the fraction of assignments to e (a constant),
            // P_e the mean router probability of e (differentiable).
            let f: Vec<f32> = r.load.iter().map(|&c| c as f32 / (n * k) as f32).collect();
            let f = Tensor::<1>::from_floats(f.as_slice(), &device).reshape([1, e]);
            let aux = (probs.mean_dim(0) * f).sum() * e as f64;
            let value = aux.clone().into_scalar::<f32>() as f64;
            self.sink.record(self.layer, &r.load, r.dropped, value);
            aux
        });
        (out.reshape([b, t, d]), aux)
    }

    pub fn config(&self) -> &MoeConfig {
        &self.cfg
    }
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn routing_takes_the_top_k_and_drops_past_capacity_in_rank_order() {
        // 4 tokens, 3 experts; every token prefers expert 0, then 1.
        let probs = [0.6, 0.3, 0.1, 0.5, 0.4, 0.1, 0.7, 0.2, 0.1, 0.5, 0.3, 0.2];
        let r = route(&probs, None, 4, 3, 2, None);
        assert_eq!(r.kept, vec![vec![0, 1, 2, 3], vec![0, 1, 2, 3], vec![]]);
        assert_eq!(r.load, vec![4, 4, 0]);
        assert_eq!(r.dropped, 0);
        // Capacity 3: the 4th first choice of expert 0 is dropped, and so is the 4th second
        // choice of expert 1.
        let r = route(&probs, None, 4, 3, 2, Some(3));
        assert_eq!(r.kept, vec![vec![0, 1, 2], vec![0, 1, 2], vec![]]);
        assert_eq!(r.dropped, 2);
        // A bias moves the choice but not the probabilities.
        let r = route(&probs, Some(&[0.0, 0.0, 0.45]), 4, 3, 1, None);
        assert_eq!(r.kept, vec![vec![0, 2], vec![], vec![1, 3]]);
        assert_eq!(&r.chosen[..3], &[1.0, 0.0, 0.0]);
    }
}
