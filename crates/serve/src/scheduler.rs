//! The scheduler: one model, one thread that batches the requests arriving together into
//! `generate_batch` calls, and the threads that run the batches.
//!
//! # How batching works
//! A request becomes rows: one per choice (`n`), times `samples` draws under a test-time
//! strategy, times the prompts of a completion request. Handlers queue requests with
//! [`Engine::submit`]; the scheduler thread takes them in arrival order.
//! - **Gathering.** When the queue becomes non-empty the scheduler waits `--batch-window-ms`
//!   (default 5 ms) for more, or less if `--max-batch` rows (default 32) are already queued, then
//!   takes requests from the front while their rows fit in `--max-batch` (a request is never
//!   split; one larger than the limit is refused at admission).
//! - **One call per batch.** The batch's rows are grouped by sampling settings (temperature,
//!   top-p, top-k, min-p) and prompt length, because the engine decodes rows side by side only
//!   when they share both (`model::generate::generate_batch`: one KV cache, one position for all
//!   rows, one `Sampling`). The groups run in parallel on the compute thread pool (rayon), one
//!   `generate_batch` each; a group's step count is its longest row's `max_tokens`, and each row
//!   stops on its own (the hook). Rows sampled with a seed draw from their own random stream
//!   (seed and row number), so a seeded request gives the same tokens whatever batch it shares.
//! - **Streaming.** The hook runs after every token of every row ([`crate::row::Row`]): it
//!   decodes the row's text and sends the new part through the request's channel, which the
//!   HTTP handler turns into server-sent events. A request's answer is sent when its last row
//!   ends (not when its batch does); a strategy request is answered after its batch, when all
//!   its draws are in.
//! - **Overlap, not joining.** A request that arrives while a batch runs cannot join it (the
//!   engine's rows share one KV cache position). It goes into the next batch, which starts at
//!   once if fewer than `--parallel-batches` (default 2) batches are running (it then shares the
//!   cores with them), else as soon as one ends; everything queued by then rides in that batch.
//!   A stopped row keeps its place in its batch until the batch ends.
//! - **Limits and failure.** Admission (`--max-concurrent` requests queued or running) is
//!   checked by the handler. A client that goes away (its channel closes) has its rows stopped
//!   at their next token and is skipped if still queued. A generation error or a panic fails the
//!   requests of that batch with a 500; the scheduler goes on.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use model::burn::prelude::Device;
use model::generate::{generate_batch, Job};
use model::{Sampling, Transformer};
use rayon::prelude::*;
use tokenizer::Tokenizer;
use tools::Registry;

use crate::engine::Request;
use crate::error::ApiError;
use crate::prompt::ChatFormat;
use crate::row::{Ctx, Row};

/// `splitmix64`: spreads a seed over the stream space.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Batching settings.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    pub max_batch: usize,
    pub window: Duration,
    pub parallel: usize,
}

enum Msg {
    Work(Arc<Request>),
    BatchDone,
    /// The engine handle was dropped.
    Shutdown,
}

struct Shared {
    model: Transformer,
    tok: Arc<Tokenizer>,
    format: Arc<ChatFormat>,
    tools: Option<Arc<Registry>>,
    device: Device,
    cfg: BatchConfig,
}

/// The handle handlers submit requests through.
pub struct Engine {
    tx: mpsc::Sender<Msg>,
    queued: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
}

impl Engine {
    /// Starts the scheduler thread. It ends when the engine is dropped and its batches are done
    /// (requests still queued then are failed).
    pub fn start(
        model: Transformer,
        tok: Arc<Tokenizer>,
        format: Arc<ChatFormat>,
        tools: Option<Arc<Registry>>,
        device: Device,
        cfg: BatchConfig,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared { model, tok, format, tools, device, cfg });
        let (q, r, back) = (Arc::clone(&queued), Arc::clone(&running), tx.clone());
        std::thread::Builder::new().name("serve-scheduler".into()).spawn(move || schedule(rx, back, shared, q, r))?;
        Ok(Self { tx, queued, running })
    }

    pub fn submit(&self, req: Arc<Request>) -> Result<(), ApiError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        self.tx.send(Msg::Work(req)).map_err(|_| ApiError::internal("the generation engine has stopped"))
    }

    /// Requests waiting for a batch.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Batches being generated.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Shutdown);
    }
}

/// The scheduler loop (see the module doc). `back` lets batch threads report that they ended;
/// the loop ends when the engine is dropped and no batch runs.
fn schedule(
    rx: mpsc::Receiver<Msg>,
    back: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    queued: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
) {
    let cfg = shared.cfg;
    let mut queue: VecDeque<Arc<Request>> = VecDeque::new();
    let mut deadline: Option<Instant> = None;
    let mut in_flight = 0usize;
    let mut stopping = false;
    loop {
        queue.retain(|r| {
            let keep = !r.cancelled();
            if !keep {
                queued.fetch_sub(1, Ordering::SeqCst);
                tracing::info!(id = %r.id, "client left before its batch started");
            }
            keep
        });
        if stopping {
            for r in queue.drain(..) {
                queued.fetch_sub(1, Ordering::SeqCst);
                r.fail(ApiError::internal("the server is shutting down"));
            }
            if in_flight == 0 {
                break;
            }
        }
        let rows: usize = queue.iter().map(|r| r.rows()).sum();
        let due = deadline.is_some_and(|d| Instant::now() >= d) || rows >= cfg.max_batch;
        if !queue.is_empty() && in_flight < cfg.parallel && due {
            let mut batch = Vec::new();
            let mut taken = 0;
            while let Some(r) = queue.front() {
                if !batch.is_empty() && taken + r.rows() > cfg.max_batch {
                    break;
                }
                taken += r.rows();
                batch.extend(queue.pop_front());
            }
            queued.fetch_sub(batch.len(), Ordering::SeqCst);
            in_flight += 1;
            running.fetch_add(1, Ordering::SeqCst);
            let (sh, done) = (Arc::clone(&shared), back.clone());
            let spawned = std::thread::Builder::new().name("serve-batch".into()).spawn(move || {
                run_batch(&sh, batch);
                let _ = done.send(Msg::BatchDone);
            });
            if let Err(e) = spawned {
                tracing::error!("cannot start a batch thread: {e}");
                in_flight -= 1;
                running.fetch_sub(1, Ordering::SeqCst);
            }
            // What is left has waited already: it goes as soon as a slot frees.
            deadline = (!queue.is_empty()).then(Instant::now);
            continue;
        }
        let msg = match deadline {
            Some(d) if in_flight < cfg.parallel && !queue.is_empty() => {
                match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                    Ok(m) => Some(m),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => Some(Msg::Shutdown),
                }
            }
            _ => Some(rx.recv().unwrap_or(Msg::Shutdown)),
        };
        match msg {
            Some(Msg::Work(r)) => {
                if queue.is_empty() {
                    deadline = Some(Instant::now() + cfg.window);
                }
                queue.push_back(r);
            }
            Some(Msg::BatchDone) => {
                in_flight -= 1;
                running.fetch_sub(1, Ordering::SeqCst);
            }
            Some(Msg::Shutdown) => stopping = true,
            None => {}
        }
    }
    tracing::debug!("generation engine stopped");
}

/// Generates one batch (see the module doc) and answers its requests.
fn run_batch(sh: &Shared, batch: Vec<Arc<Request>>) {
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| generate(sh, &batch)));
    if let Err(panic) = result {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        for r in &batch {
            r.fail(ApiError::internal(format!("generation failed: {what}")));
        }
    }
}

fn sampling_key(s: &Sampling) -> (u32, usize, u32, u32) {
    (s.temperature.to_bits(), s.top_k, s.top_p.to_bits(), s.min_p.to_bits())
}

fn generate(sh: &Shared, batch: &[Arc<Request>]) {
    let mut rows: Vec<Row> = Vec::new();
    for req in batch.iter().filter(|r| !r.cancelled()) {
        for p in 0..req.prompts.len() {
            for j in 0..req.n {
                let choice = p * req.n + j;
                for d in 0..req.draws {
                    let stream = mix(req.seed).wrapping_add((choice * req.draws + d) as u64);
                    rows.push(Row::new(Arc::clone(req), p, choice, d, stream));
                }
            }
        }
    }
    rows.sort_by_key(|r| (sampling_key(&r.req.sampling), r.req.prompts[r.prompt].len()));
    let jobs: Vec<Job> =
        rows.iter().map(|r| Job { prompt: r.req.prompts[r.prompt].clone(), stream: r.stream }).collect();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for i in 0..rows.len() {
        let same = |a: &Row, b: &Row| {
            sampling_key(&a.req.sampling) == sampling_key(&b.req.sampling)
                && a.req.prompts[a.prompt].len() == b.req.prompts[b.prompt].len()
        };
        match groups.last_mut() {
            Some((a, b)) if *b - *a < sh.cfg.max_batch.max(1) && same(&rows[*a], &rows[i]) => *b = i + 1,
            _ => groups.push((i, i + 1)),
        }
    }
    let ctx = Ctx { tok: &sh.tok, format: &sh.format, tools: sh.tools.as_deref() };
    let hook = |i: usize, tokens: &[u32], forced: &[bool]| rows[i].on_token(&ctx, tokens, forced);
    groups.par_iter().for_each(|&(a, b)| {
        let max_new = rows[a..b].iter().map(|r| r.max_new).max().unwrap_or(1);
        let sampling = Sampling { seed: 0, ..rows[a].req.sampling.clone() };
        match generate_batch(&sh.model, &jobs[a..b], a, max_new, &sampling, &hook, &sh.device) {
            Ok(gens) => {
                for (row, g) in rows[a..b].iter().zip(&gens) {
                    row.ensure_finished(&ctx, &g.tokens, &g.forced);
                }
            }
            Err(e) => {
                for row in &rows[a..b] {
                    row.req.fail(ApiError::internal(format!("generation failed: {e}")));
                }
            }
        }
    });
    for req in batch {
        req.answer_strategy(&sh.model, &sh.device);
    }
}
