//! Throughput benchmarks that mirror `shared/peers/torch_ref.py` exactly: the same model
//! (RMSNorm, SwiGLU, rotate-half RoPE, causal MHA, untied embeddings), the same AdamW
//! (lr 1e-3, betas 0.9/0.95, wd 0.1), the same deterministic tokens, the same timing rule
//! (median step after 3 warm-up steps; median of 3 generation runs), and one `RESULT` line, so
//! the two can be run back to back and compared as a ratio.
//!
//! MFU is reported against this machine's fp32 matrix-multiply rate, measured here on the same
//! engine (best of several square GEMMs), not a datasheet number.

use std::time::Instant;

use model::burn::optim::AdamWConfig;
use model::burn::prelude::*;
use model::generate::{generate_batch, Job, Next};
use model::{engine, Mlp, ModelConfig, Norm, Position, Sampling, Transformer};
use rayon::prelude::*;

use crate::optim::{shard_count, sharded_grads};

/// The flags of `torch_ref.py`, with its defaults.
#[derive(Clone, Debug)]
pub struct BenchArgs {
    pub vocab: usize,
    pub dim: usize,
    pub layers: usize,
    pub heads: usize,
    pub ff: usize,
    pub seq: usize,
    pub batch: usize,
    pub new: usize,
    pub steps: usize,
    pub threads: usize,
    pub backend: engine::Backend,
}

impl Default for BenchArgs {
    fn default() -> Self {
        Self {
            vocab: 512,
            dim: 256,
            layers: 4,
            heads: 4,
            ff: 688,
            seq: 128,
            batch: 16,
            new: 128,
            steps: 20,
            threads: 2,
            backend: engine::Backend::Cpu,
        }
    }
}

impl BenchArgs {
    /// The reference architecture at these sizes.
    pub fn model_config(&self) -> ModelConfig {
        ModelConfig {
            vocab_size: self.vocab,
            d_model: self.dim,
            n_layers: self.layers,
            n_heads: self.heads,
            n_kv_heads: self.heads,
            d_ff: self.ff,
            max_seq_len: self.seq.max(self.new + 1),
            norm: Norm::Rms,
            norm_eps: 1e-5,
            mlp: Mlp::Swiglu,
            position: Position::rope(10_000.0),
            tie_embeddings: false,
            qk_norm: false,
            parallel_residual: false,
            bias: false,
            qkv_bias: false,
            init_std: 0.02,
            moe: None,
            mla: None,
            mup_base_width: None,
            head_dim: None,
        }
    }
}

/// `tok[b][i] = (b·131 + i²·7 + i·13) mod V` for `i` in `0..=t`, split into inputs and targets.
pub fn reference_tokens(b: usize, t: usize, vocab: usize, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let mut x = Vec::with_capacity(b * t);
    let mut y = Vec::with_capacity(b * t);
    for bi in 0..b as i64 {
        let row: Vec<i64> = (0..=t as i64).map(|i| (bi * 131 + i * i * 7 + i * 13) % vocab as i64).collect();
        x.extend_from_slice(&row[..t]);
        y.extend_from_slice(&row[1..]);
    }
    (Tensor::from_data(TensorData::new(x, [b, t]), device), Tensor::from_data(TensorData::new(y, [b, t]), device))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN timings"));
    v[v.len() / 2]
}

/// Best fp32 GEMM rate of this engine and thread count, in FLOP/s (n×n by n×n, n = 1024).
pub fn gemm_flops(device: &Device) -> f64 {
    let n = 1024;
    let a = Tensor::<2>::random([n, n], model::burn::tensor::Distribution::Uniform(-1.0, 1.0), device);
    let b = Tensor::<2>::random([n, n], model::burn::tensor::Distribution::Uniform(-1.0, 1.0), device);
    let mut best = f64::INFINITY;
    for _ in 0..6 {
        let t0 = Instant::now();
        let c = a.clone().matmul(b.clone());
        let _ = c.slice([0..1, 0..1]).into_scalar::<f32>();
        best = best.min(t0.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best
}

/// Result of one benchmark.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchResult {
    pub mode: &'static str,
    pub tokens_per_s: f64,
    pub step_ms: f64,
    pub final_loss: Option<f64>,
    pub mfu: f64,
    pub gemm_gflops: f64,
    pub batch: usize,
    /// Where the time of one step goes (medians), for profiling.
    pub breakdown: String,
}

impl BenchResult {
    /// The one line a script greps for, shaped like torch_ref.py's.
    pub fn result_line(&self) -> String {
        match self.final_loss {
            Some(l) => format!(
                "RESULT ascent train tokens_per_s {:.0} step_ms {:.1} final_loss {:.4} mfu {:.3} gemm_gflops {:.1}",
                self.tokens_per_s, self.step_ms, l, self.mfu, self.gemm_gflops
            ),
            None => format!(
                "RESULT ascent generate tokens_per_s {:.0} batch {} mfu {:.4} gemm_gflops {:.1}",
                self.tokens_per_s, self.batch, self.mfu, self.gemm_gflops
            ),
        }
    }
}

fn setup(a: &BenchArgs) -> Result<Device, String> {
    engine::set_threads(a.threads);
    let device = engine::device(a.backend)?;
    Ok(device)
}

/// Training throughput: forward, backward and AdamW step on a fixed batch.
pub fn bench_train(a: &BenchArgs) -> Result<BenchResult, String> {
    let device = setup(a)?;
    let cfg = a.model_config();
    cfg.validate().map_err(|e| e.to_string())?;
    let ad = engine::training_device(&device);
    let mut model = engine::with_seed(&device, 0, || Transformer::new(&cfg, &ad));
    let mut opt = AdamWConfig::new().with_beta_2(0.95).with_epsilon(1e-8).with_weight_decay(0.1).init();
    let (x, y) = reference_tokens(a.batch, a.seq, a.vocab, &ad);
    // One micro-batch per thread where the batch divides evenly (see `optim::sharded_grads`).
    let shards = shard_count(a.batch, a.threads);
    let mut times = Vec::new();
    let mut parts = [Vec::new(), Vec::new()];
    let mut last = 0.0;
    for step in 0..a.steps + 3 {
        let t0 = Instant::now();
        let (grads, losses) = sharded_grads(&model, shards, 1.0, |i, m| {
            let rows = a.batch / shards;
            m.loss(x.clone().narrow(0, i * rows, rows), y.clone().narrow(0, i * rows, rows), None)
        });
        last = losses.iter().sum::<f64>() / shards as f64;
        let t1 = Instant::now();
        model = opt.step(1e-3, model, grads);
        let _ = device.sync();
        let t2 = Instant::now();
        if step >= 3 {
            times.push((t2 - t0).as_secs_f64());
            for (p, d) in parts.iter_mut().zip([t1 - t0, t2 - t1]) {
                p.push(d.as_secs_f64() * 1e3);
            }
        }
    }
    let [fb, o] = parts.map(median);
    let breakdown = format!("forward+backward {fb:.1} ms ({shards} shards), optimiser {o:.1} ms");
    let med = median(times);
    let tps = (a.batch * a.seq) as f64 / med;
    let gemm = gemm_flops(&device);
    Ok(BenchResult {
        mode: "train",
        tokens_per_s: tps,
        step_ms: med * 1e3,
        final_loss: Some(last),
        mfu: tps * cfg.train_flops_per_token(a.seq) as f64 / gemm,
        gemm_gflops: gemm / 1e9,
        batch: a.batch,
        breakdown,
    })
}

/// Greedy generation with a KV cache: `new` tokens for each of `batch` sequences from token 1.
pub fn bench_generate(a: &BenchArgs) -> Result<BenchResult, String> {
    let device = setup(a)?;
    let cfg = a.model_config();
    cfg.validate().map_err(|e| e.to_string())?;
    let model = Transformer::seeded(&cfg, &device, 0);
    // As in training, a batch that splits evenly runs as one shard of rows per compute thread
    // (each with its own KV cache): the backend's small per-token kernels are single-threaded.
    let shards = if a.batch >= 2 * a.threads && a.batch % a.threads == 0 { a.threads } else { 1 };
    let rows = a.batch / shards;
    // The engine's own path (`model::generate`, what eval, the test-time rungs and `ascent
    // generate` run): logits read back every step, the token chosen on the CPU, a hook per token.
    let jobs: Vec<Job> = (0..rows).map(|i| Job { prompt: vec![1], stream: i as u64 }).collect();
    let go_on = |_: usize, _: &[u32], _: &[bool]| Next::Continue;
    let decode = || {
        let out = generate_batch(&model, &jobs, 0, a.new, &Sampling::greedy(), &go_on, &device)
            .expect("benchmark generation");
        assert!(out.iter().all(|g| g.tokens.len() == a.new));
    };
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        (0..shards).into_par_iter().for_each(|_| decode());
        runs.push(t0.elapsed().as_secs_f64());
    }
    let med = median(runs);
    let tps = (a.batch * a.new) as f64 / med;
    let gemm = gemm_flops(&device);
    // Average context over the run is new/2.
    let flops = cfg.forward_flops_per_token(a.new / 2) as f64;
    Ok(BenchResult {
        mode: "generate",
        tokens_per_s: tps,
        step_ms: med * 1e3 / a.new as f64,
        final_loss: None,
        mfu: tps * flops / gemm,
        gemm_gflops: gemm / 1e9,
        batch: a.batch,
        breakdown: format!("{shards} shards of {rows} sequences"),
    })
}
