//! Generation: the KV cache against full recomputation, batched against single, the forced-token
//! mask, seeded sampling.

use model::burn::prelude::*;
use model::generate::{generate_many, Finish, Generated, Job, Next};
use model::sample::Sampling;
use model::{engine, ModelConfig, Transformer};

const VOCAB: usize = 64;

fn models() -> Vec<(&'static str, Transformer, Device)> {
    let device = engine::device(engine::Backend::Cpu).unwrap();
    [("llama", ModelConfig::llama(VOCAB, 32, 2, 4, 64)), ("gpt2", ModelConfig::gpt2(VOCAB, 32, 2, 4, 64))]
        .into_iter()
        .map(|(name, cfg)| (name, Transformer::seeded(&cfg, &device, 11), device.clone()))
        .collect()
}

fn prompts() -> Vec<Vec<u32>> {
    vec![vec![3, 9, 17], vec![5, 5, 5], vec![40, 2, 7, 1], vec![8], vec![12, 30, 31, 32], vec![3, 9, 17]]
}

fn go_on(_: usize, _: &[u32], _: &[bool]) -> Next {
    Next::Continue
}

/// The last position's logits from a forward pass over the whole sequence, no cache.
fn full_logits(m: &Transformer, seq: &[u32], device: &Device) -> Vec<f32> {
    let ids: Vec<i64> = seq.iter().map(|&x| x as i64).collect();
    let x = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, seq.len()]), device);
    let logits = m.forward(x); // (1, T, V)
    let t = seq.len();
    logits.slice([0..1, t - 1..t, 0..VOCAB]).try_into_vec_as::<f32>().unwrap()
}

#[test]
fn kv_cache_generation_matches_full_recomputation() {
    for (name, m, device) in models() {
        for sampling in [Sampling::greedy(), Sampling { top_k: 20, top_p: 0.95, ..Sampling::temperature(1.0, 5) }] {
            let jobs = Job::numbered(&prompts());
            let gens = generate_many(&m, &jobs, 12, 4, &sampling, &go_on, &device).unwrap();
            for (job, g) in jobs.iter().zip(&gens) {
                // Replay the choice at every step from logits recomputed over the whole sequence.
                let mut rng = sampling.rng(job.stream);
                let mut seq = job.prompt.clone();
                for &tok in &g.tokens {
                    let logits = full_logits(&m, &seq, &device);
                    let want = sampling.pick(&logits, &mut rng);
                    assert_eq!(tok, want, "{name} {sampling:?}: prompt {:?} step {}", job.prompt, seq.len());
                    seq.push(tok);
                }
                assert_eq!(g.tokens.len(), 12);
                assert_eq!(g.finish, Finish::Length);
            }
        }
    }
}

#[test]
fn batched_and_single_generation_agree() {
    for (name, m, device) in models() {
        let sampling = Sampling { min_p: 0.05, ..Sampling::temperature(0.8, 9) };
        let jobs = Job::numbered(&prompts());
        let stop_at_7 =
            |_: usize, t: &[u32], _: &[bool]| if t.last() == Some(&7) { Next::Stop } else { Next::Continue };
        let together = generate_many(&m, &jobs, 10, 8, &sampling, &stop_at_7, &device).unwrap();
        let alone: Vec<Generated> = jobs
            .iter()
            .map(|j| {
                generate_many(&m, std::slice::from_ref(j), 10, 1, &sampling, &stop_at_7, &device).unwrap().remove(0)
            })
            .collect();
        assert_eq!(together, alone, "{name}");
        for g in &together {
            assert_eq!(g.finish == Finish::Stop, g.tokens.last() == Some(&7), "{name}: {g:?}");
        }
        // Jobs 0 and 5 share a prompt but not a stream.
        assert_eq!(jobs[0].prompt, jobs[5].prompt);
        assert_ne!(together[0].tokens, together[5].tokens, "{name}: different streams, different samples");
    }
}

#[test]
fn seeded_sampling_is_reproducible() {
    let (_, m, device) = models().remove(0);
    let jobs = Job::numbered(&prompts());
    let run = |seed| generate_many(&m, &jobs, 10, 3, &Sampling::temperature(1.0, seed), &go_on, &device).unwrap();
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn the_forced_mask_marks_exactly_the_injected_tokens() {
    for (name, m, device) in models() {
        // After the model's third token, inject [60, 61, 62]; after the injected 62, stop two tokens later.
        let hook = |_: usize, t: &[u32], f: &[bool]| {
            if t.len() == 3 && !f[2] {
                Next::Inject(vec![60, 61, 62])
            } else if t.len() == 8 {
                Next::Stop
            } else {
                Next::Continue
            }
        };
        let jobs = Job::numbered(&prompts());
        let gens = generate_many(&m, &jobs, 20, 4, &Sampling::temperature(1.0, 3), &hook, &device).unwrap();
        for g in &gens {
            assert_eq!(g.forced, [false, false, false, true, true, true, false, false], "{name}");
            assert_eq!(&g.tokens[3..6], &[60, 61, 62], "{name}");
            assert_eq!(g.sampled_count(), 5);
            assert_eq!(g.finish, Finish::Stop);
        }
        // The tokens after the injection continue from the injected text: a model fed the same
        // sequence without injection (as a prompt) chooses the same next token greedily.
        let greedy_hook = |_: usize, t: &[u32], f: &[bool]| {
            if t.len() == 3 && !f[2] {
                Next::Inject(vec![60, 61, 62])
            } else {
                Next::Continue
            }
        };
        let g = generate_many(&m, &jobs[..1], 7, 1, &Sampling::greedy(), &greedy_hook, &device).unwrap().remove(0);
        let mut seq = jobs[0].prompt.clone();
        seq.extend(&g.tokens[..6]);
        let want = model::sample::argmax(&full_logits(&m, &seq, &device));
        assert_eq!(g.tokens[6], want, "{name}");
    }
}

#[test]
fn bad_requests_are_errors() {
    let (_, m, device) = models().remove(0);
    let too_long = vec![Job { prompt: vec![1; 60], stream: 0 }];
    let e = generate_many(&m, &too_long, 10, 1, &Sampling::greedy(), &go_on, &device).unwrap_err();
    assert!(e.contains("max_seq_len"), "{e}");
    let outside = vec![Job { prompt: vec![1, 999], stream: 0 }];
    let e = generate_many(&m, &outside, 4, 1, &Sampling::greedy(), &go_on, &device).unwrap_err();
    assert!(e.contains("999"), "{e}");
    let bad = Sampling { top_p: 1.5, ..Sampling::temperature(1.0, 0) };
    let e = generate_many(&m, &Job::numbered(&prompts()), 4, 1, &bad, &go_on, &device).unwrap_err();
    assert!(e.contains("top_p"), "{e}");
}
