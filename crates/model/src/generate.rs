//! Greedy decoding with a KV cache.
//!
//! Prompts are decoded in batches of equal length (so no padding or attention mask is needed:
//! every row of a batch sits at the same position). [`greedy_many`] groups any set of prompts by
//! length, cuts each group into batches and decodes the batches side by side, one per compute
//! thread, each with its own KV cache (the backend's per-token kernels are small and mostly
//! single-threaded, so rows sharded across threads run faster than one wide batch).

use burn::prelude::*;
use rayon::prelude::*;

use crate::{KvCache, Transformer};

/// When to stop one sequence: `done(generated)` is asked after every new token with the tokens
/// generated so far (prompt excluded).
pub type StopFn<'a> = dyn Fn(&[u32]) -> bool + Sync + 'a;

/// Greedy continuation of `prompts`, which must all have the same non-zero length: at most
/// `max_new` tokens each, fewer where `done` says stop. Returns the generated tokens per prompt
/// (the prompt not included). The context `prompt + max_new` must fit the model's `max_seq_len`
/// for a learned-position model; a longer one is an error, not a panic.
pub fn greedy(
    model: &Transformer,
    prompts: &[Vec<u32>],
    max_new: usize,
    done: &StopFn,
    device: &Device,
) -> Result<Vec<Vec<u32>>, String> {
    let b = prompts.len();
    if b == 0 {
        return Ok(Vec::new());
    }
    let t = prompts[0].len();
    if t == 0 || prompts.iter().any(|p| p.len() != t) {
        return Err("greedy: prompts of one batch must share one non-zero length".into());
    }
    let cfg = model.config();
    if t + max_new > cfg.max_seq_len {
        return Err(format!(
            "prompt of {t} tokens + {max_new} new ones exceed the model's max_seq_len {}",
            cfg.max_seq_len
        ));
    }
    let mut cache = KvCache::new(cfg, b, t + max_new, device);
    let flat: Vec<i64> = prompts.iter().flat_map(|p| p.iter().map(|&x| x as i64)).collect();
    let mut input = Tensor::<2, Int>::from_data(TensorData::new(flat, [b, t]), device);
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut finished = vec![false; b];
    for _ in 0..max_new {
        let logits = model.forward_cached(input, &mut cache); // (B, V)
        let next = logits.argmax(1); // (B, 1)
        let ids: Vec<i64> = next.to_data().convert::<i64>().try_into_vec::<i64>().expect("argmax gives integers");
        for (row, &id) in ids.iter().enumerate() {
            if !finished[row] {
                out[row].push(id as u32);
                finished[row] = done(&out[row]);
            }
        }
        if finished.iter().all(|&f| f) {
            break;
        }
        input = next;
    }
    Ok(out)
}

/// [`greedy`] over prompts of any lengths: grouped by length, in batches of at most `batch`,
/// batches decoded in parallel on the rayon pool. Results are in the order of `prompts`, and do
/// not depend on the grouping (each row's computation is independent of the others).
pub fn greedy_many(
    model: &Transformer,
    prompts: &[Vec<u32>],
    max_new: usize,
    batch: usize,
    done: &StopFn,
    device: &Device,
) -> Result<Vec<Vec<u32>>, String> {
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| (prompts[i].len(), i));
    let mut jobs: Vec<Vec<usize>> = Vec::new();
    for &i in &order {
        match jobs.last_mut() {
            Some(j) if j.len() < batch.max(1) && prompts[j[0]].len() == prompts[i].len() => j.push(i),
            _ => jobs.push(vec![i]),
        }
    }
    let results: Vec<Result<Vec<Vec<u32>>, String>> = jobs
        .par_iter()
        .map(|job| {
            let ps: Vec<Vec<u32>> = job.iter().map(|&i| prompts[i].clone()).collect();
            greedy(model, &ps, max_new, done, device)
        })
        .collect();
    let mut out = vec![Vec::new(); prompts.len()];
    for (job, r) in jobs.iter().zip(results) {
        for (&i, gen) in job.iter().zip(r?) {
            out[i] = gen;
        }
    }
    Ok(out)
}
