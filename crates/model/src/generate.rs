//! Generation with a KV cache: greedy or sampled, many sequences at once, per-sequence
//! stopping, and tokens injected by the caller (tool results) marked as forced.
//!
//! # How a batch runs
//! Prompts are decoded in batches of equal length, so no padding or attention mask is needed:
//! every row of a batch sits at the same position. Each step feeds exactly one token per row
//! and reads one row of logits per row. A row's next token is either chosen from its logits
//! ([`Sampling`]) or, when the caller has injected tokens for it, the next injected token
//! (its logits are then ignored); injected tokens are marked `forced` in [`Generated::forced`].
//! Feeding injected text one token per step keeps every row of a batch at one position, at the
//! cost of one forward step per injected token (tool results are a few tokens long).
//!
//! After every token a row receives, sampled or forced, the caller's [`Hook`] says whether to
//! go on, stop, or inject tokens (this is where a tool call is noticed and run). A stopped row
//! rides along without being read until the whole batch is done.
//!
//! [`generate_many`] groups any set of prompts by length, cuts each group into batches and runs
//! the batches side by side, one per compute thread, each with its own KV cache (the backend's
//! per-token kernels are small and mostly single-threaded, so rows sharded across threads run
//! faster than one wide batch). A sequence's result does not depend on the grouping: rows do not
//! interact, and each samples from its own random stream ([`Sampling::rng`]).

use std::collections::VecDeque;

use burn::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::sample::Sampling;
use crate::{KvCache, Transformer};

/// When to stop one sequence: `done(generated)` is asked after every new token with the tokens
/// generated so far (prompt excluded).
pub type StopFn<'a> = dyn Fn(&[u32]) -> bool + Sync + 'a;

/// What the caller wants after a sequence received a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    Stop,
    /// Feed these tokens next, before sampling again (e.g. a tool's result).
    Inject(Vec<u32>),
}

/// Asked after every token a sequence receives: `hook(job, tokens, forced)` with the index of
/// the sequence in the caller's list, its generated tokens so far and their forced marks.
pub type Hook<'a> = dyn Fn(usize, &[u32], &[bool]) -> Next + Sync + 'a;

/// Why a sequence ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The hook said stop.
    Stop,
    /// `max_new` tokens were generated.
    #[default]
    Length,
}

/// One generated sequence (the prompt not included).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Generated {
    pub tokens: Vec<u32>,
    /// `forced[i]`: token `i` was injected by the caller, not chosen by the model.
    pub forced: Vec<bool>,
    pub finish: Finish,
}

impl Generated {
    /// Tokens the model chose (the compute a test-time strategy spends).
    pub fn sampled_count(&self) -> usize {
        self.forced.iter().filter(|&&f| !f).count()
    }
}

/// One sequence to generate: its prompt and the number of its random stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub prompt: Vec<u32>,
    pub stream: u64,
}

impl Job {
    /// Jobs for `prompts`, stream `i` for prompt `i`.
    pub fn numbered(prompts: &[Vec<u32>]) -> Vec<Job> {
        prompts.iter().enumerate().map(|(i, p)| Job { prompt: p.clone(), stream: i as u64 }).collect()
    }
}

/// Generates a batch of jobs whose prompts share one non-zero length: at most `max_new` tokens
/// each (sampled and forced together). `first` is the index of `jobs[0]` in the caller's list
/// (what the hook is told). The context `prompt + max_new` must fit the model's `max_seq_len`;
/// a longer one is an error, not a panic.
pub fn generate_batch(
    model: &Transformer,
    jobs: &[Job],
    first: usize,
    max_new: usize,
    sampling: &Sampling,
    hook: &Hook,
    device: &Device,
) -> Result<Vec<Generated>, String> {
    generate_rows(
        model,
        jobs.iter().enumerate().map(|(i, j)| (first + i, j)).collect(),
        max_new,
        sampling,
        hook,
        device,
    )
}

fn generate_rows(
    model: &Transformer,
    rows: Vec<(usize, &Job)>,
    max_new: usize,
    sampling: &Sampling,
    hook: &Hook,
    device: &Device,
) -> Result<Vec<Generated>, String> {
    let b = rows.len();
    if b == 0 {
        return Ok(Vec::new());
    }
    sampling.validate()?;
    let t = rows[0].1.prompt.len();
    if t == 0 || rows.iter().any(|(_, j)| j.prompt.len() != t) {
        return Err("generate: prompts of one batch must share one non-zero length".into());
    }
    let cfg = model.config();
    if t + max_new > cfg.max_seq_len {
        return Err(format!(
            "prompt of {t} tokens + {max_new} new ones exceed the model's max_seq_len {}",
            cfg.max_seq_len
        ));
    }
    if let Some(&bad) = rows.iter().flat_map(|(_, j)| &j.prompt).find(|&&id| id as usize >= cfg.vocab_size) {
        return Err(format!("prompt token id {bad} is outside the model's vocabulary of {}", cfg.vocab_size));
    }
    let v = cfg.vocab_size;
    let mut cache = KvCache::new(cfg, b, t + max_new, device);
    let flat: Vec<i64> = rows.iter().flat_map(|(_, j)| j.prompt.iter().map(|&x| x as i64)).collect();
    let mut input = Tensor::<2, Int>::from_data(TensorData::new(flat, [b, t]), device);
    let mut rngs: Vec<_> = rows.iter().map(|(_, j)| sampling.rng(j.stream)).collect();
    let mut out: Vec<Generated> = vec![Generated::default(); b];
    let mut pending: Vec<VecDeque<u32>> = vec![VecDeque::new(); b];
    let mut finished = vec![false; b];
    for _ in 0..max_new {
        let logits = model.forward_cached(input, &mut cache); // (B, V)
        let logits = logits.try_into_vec_as::<f32>().map_err(|e| format!("reading logits: {e:?}"))?;
        let mut next = Vec::with_capacity(b);
        for row in 0..b {
            if finished[row] {
                next.push(out[row].tokens.last().map_or(0, |&x| x as i64));
                continue;
            }
            let (token, forced) = match pending[row].pop_front() {
                Some(tok) => (tok, true),
                None => (sampling.pick(&logits[row * v..(row + 1) * v], &mut rngs[row]), false),
            };
            let g = &mut out[row];
            g.tokens.push(token);
            g.forced.push(forced);
            match hook(rows[row].0, &g.tokens, &g.forced) {
                Next::Continue => {}
                Next::Stop => {
                    finished[row] = true;
                    g.finish = Finish::Stop;
                }
                Next::Inject(tokens) => {
                    if let Some(&bad) = tokens.iter().find(|&&id| id as usize >= v) {
                        return Err(format!("injected token id {bad} is outside the vocabulary of {v}"));
                    }
                    pending[row].extend(tokens)
                }
            }
            next.push(token as i64);
        }
        if finished.iter().all(|&f| f) {
            break;
        }
        input = Tensor::<2, Int>::from_data(TensorData::new(next, [b, 1]), device);
    }
    Ok(out)
}

/// [`generate_batch`] over jobs of any prompt lengths: grouped by length, in batches of at most
/// `batch`, batches run in parallel on the rayon pool. Results are in the order of `jobs`; the
/// hook is told each job's index in `jobs`.
pub fn generate_many(
    model: &Transformer,
    jobs: &[Job],
    max_new: usize,
    batch: usize,
    sampling: &Sampling,
    hook: &Hook,
    device: &Device,
) -> Result<Vec<Generated>, String> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| (jobs[i].prompt.len(), i));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &i in &order {
        match groups.last_mut() {
            Some(g) if g.len() < batch.max(1) && jobs[g[0]].prompt.len() == jobs[i].prompt.len() => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    let results: Vec<Result<Vec<Generated>, String>> = groups
        .par_iter()
        .map(|g| generate_rows(model, g.iter().map(|&i| (i, &jobs[i])).collect(), max_new, sampling, hook, device))
        .collect();
    let mut out = vec![Generated::default(); jobs.len()];
    for (g, r) in groups.iter().zip(results) {
        for (&i, gen) in g.iter().zip(r?) {
            out[i] = gen;
        }
    }
    Ok(out)
}

/// Greedy continuation of `prompts`, which must all have the same non-zero length: at most
/// `max_new` tokens each, fewer where `done` says stop. Returns the generated tokens per prompt.
pub fn greedy(
    model: &Transformer,
    prompts: &[Vec<u32>],
    max_new: usize,
    done: &StopFn,
    device: &Device,
) -> Result<Vec<Vec<u32>>, String> {
    let hook = |_: usize, tokens: &[u32], _: &[bool]| if done(tokens) { Next::Stop } else { Next::Continue };
    let gens = generate_batch(model, &Job::numbered(prompts), 0, max_new, &Sampling::greedy(), &hook, device)?;
    Ok(gens.into_iter().map(|g| g.tokens).collect())
}

/// [`greedy`] over prompts of any lengths (see [`generate_many`]).
pub fn greedy_many(
    model: &Transformer,
    prompts: &[Vec<u32>],
    max_new: usize,
    batch: usize,
    done: &StopFn,
    device: &Device,
) -> Result<Vec<Vec<u32>>, String> {
    let hook = |_: usize, tokens: &[u32], _: &[bool]| if done(tokens) { Next::Stop } else { Next::Continue };
    let gens = generate_many(model, &Job::numbered(prompts), max_new, batch, &Sampling::greedy(), &hook, device)?;
    Ok(gens.into_iter().map(|g| g.tokens).collect())
}
