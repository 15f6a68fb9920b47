//! A bounded load test on loopback: many concurrent clients, each sending a few short chat
//! requests (streamed and whole, alternately), all of which must succeed. Throughput and
//! latency are printed, never asserted.
//!
//! The bigger run for BENCHMARKS.md is the ignored test, sized by environment variables:
//! ```sh
//! ASCENT_LOAD_CLIENTS=64 ASCENT_LOAD_REQUESTS=10 ASCENT_LOAD_MAX_TOKENS=64 \
//!   [ASCENT_LOAD_MODEL=runs/x/checkpoints/step-N] [ASCENT_LOAD_FLAGS="--max-batch 64"] \
//!   cargo test --release -p serve --test load -- --ignored --nocapture
//! ```

mod common;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

struct Sample {
    ok: bool,
    stream: bool,
    latency: Duration,
    /// Time to the first text (streamed requests).
    first_text: Option<Duration>,
    tokens: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs `clients` × `requests` chat requests against a server over `model`; prints the figures
/// and returns the number of failures.
fn load(model: &Path, flags: &[&str], clients: usize, requests: usize, max_tokens: usize) -> usize {
    let server = start(model, flags);
    let url = format!("{}/v1/chat/completions", server.url());
    let prompts = ["Hello, who are you?", "What is 2+3?", "Tell me a story about the river.", "The number 7 plus 8 is"];
    let barrier = Arc::new(Barrier::new(clients));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let (url, barrier) = (url.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let a = agent();
                barrier.wait();
                (0..requests)
                    .map(|r| {
                        let stream = (c + r) % 2 == 0;
                        let body = json!({
                            "messages": [{"role": "user", "content": prompts[(c + r) % prompts.len()]}],
                            "max_tokens": max_tokens, "temperature": 0.8, "seed": c * 1000 + r, "stream": stream,
                            "stream_options": {"include_usage": true},
                        });
                        let t = Instant::now();
                        if stream {
                            let s = post_stream(&a, &url, &body);
                            let usage = s.events.last().map(|e| e["usage"]["completion_tokens"].as_u64().unwrap_or(0));
                            let ok = s.status == 200 && s.done && usage.is_some_and(|u| u > 0);
                            Sample {
                                ok,
                                stream,
                                latency: t.elapsed(),
                                first_text: s.first_text,
                                tokens: usage.unwrap_or(0),
                            }
                        } else {
                            let (status, v) = post(&a, &url, &body);
                            let tokens = v["usage"]["completion_tokens"].as_u64().unwrap_or(0);
                            let ok = status == 200 && v["choices"][0]["message"].is_object() && tokens > 0;
                            if !ok {
                                eprintln!("failed: {status} {v}");
                            }
                            Sample { ok, stream, latency: t.elapsed(), first_text: None, tokens }
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let samples: Vec<Sample> = workers.into_iter().flat_map(|w| w.join().expect("client thread")).collect();
    let wall = started.elapsed().as_secs_f64();
    server.stop().expect("stop");
    let failures = samples.iter().filter(|s| !s.ok).count();
    let tokens: u64 = samples.iter().map(|s| s.tokens).sum();
    let mut lat: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    lat.sort();
    let mut ttft: Vec<Duration> = samples.iter().filter(|s| s.stream).filter_map(|s| s.first_text).collect();
    ttft.sort();
    println!(
        "load: {clients} clients x {requests} requests (max_tokens {max_tokens}, half streamed) on {} threads: \
         {} requests, {failures} failed, {wall:.2}s\n  throughput: {:.1} requests/s, {:.0} generated tokens/s\n  \
         latency ms: p50 {:.0}, p90 {:.0}, p99 {:.0}\n  time to first token ms (streamed): p50 {:.0}, p90 {:.0}, p99 {:.0}",
        model::engine::threads(),
        samples.len(),
        samples.len() as f64 / wall,
        tokens as f64 / wall,
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        percentile(&ttft, 50.0),
        percentile(&ttft, 90.0),
        percentile(&ttft, 99.0),
    );
    failures
}

#[test]
fn sixty_four_clients_all_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = random_checkpoint(dir.path());
    assert_eq!(load(&ckpt, &[], 64, 3, 16), 0, "every request must succeed");
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture, sized by ASCENT_LOAD_* variables"]
fn load_benchmark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = match std::env::var("ASCENT_LOAD_MODEL") {
        Ok(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => random_checkpoint(dir.path()),
    };
    let flags = std::env::var("ASCENT_LOAD_FLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let failures = load(
        &model,
        &flags,
        env("ASCENT_LOAD_CLIENTS", 64),
        env("ASCENT_LOAD_REQUESTS", 10),
        env("ASCENT_LOAD_MAX_TOKENS", 64),
    );
    assert_eq!(failures, 0);
}
