//! `ascent`: argument parsing, wiring and printing. The work happens in the library crates.

use std::io::IsTerminal;
use std::path::PathBuf;

// Tensor buffers are large and short-lived; mimalloc reuses them instead of returning them to
// the OS and faulting fresh zeroed pages on every step as glibc malloc does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use model::engine::Backend;
use train::bench::{bench_generate, bench_train, BenchArgs};
use train::config::DEFAULT_TOML;
use train::{PretrainConfig, RunOptions};

/// Decoding settings shared by `generate` and `chat`.
#[derive(Args, Clone, Debug)]
struct GenFlags {
    /// Tokens generated at most.
    #[arg(long, default_value_t = 64)]
    max_new: usize,
    /// Softmax temperature; 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Drop tokens below min_p × the top probability (0 = off).
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Completions to draw.
    #[arg(long, default_value_t = 1)]
    n: usize,
}

impl GenFlags {
    fn options(&self, stop: Vec<String>) -> Result<train::infer::CompleteOptions> {
        let sampling = model::Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            seed: self.seed,
        };
        sampling.validate().map_err(anyhow::Error::msg)?;
        Ok(train::infer::CompleteOptions { sampling, max_new: self.max_new, n: self.n, batch: 16, stop })
    }
}

#[derive(Parser)]
#[command(name = "ascent", version, about = "Make small language models more capable without new knowledge")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pretrain a model from a TOML recipe (defaults: a small llama on the built-in corpus).
    Pretrain {
        /// Recipe file; every field is optional (see configs/pretrain.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Continue the run in out_dir from its newest checkpoint.
        #[arg(long)]
        resume: bool,
        /// Delete an earlier run in out_dir (checkpoints, metrics) and start over.
        #[arg(long)]
        fresh: bool,
        /// Override out_dir from the recipe.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override train.steps from the recipe.
        #[arg(long)]
        steps: Option<usize>,
        /// Print the default recipe (commented TOML) and exit.
        #[arg(long)]
        print_config: bool,
        /// Stop after this many steps, as if killed (for trying --resume).
        #[arg(long, hide = true)]
        stop_after: Option<usize>,
    },
    /// Generate the fixed-knowledge world: corpus.txt, kb.jsonl, tasks/{train,heldout}.jsonl, world.json, tokenizer.json.
    World {
        /// Fixes every entity, fact, rendering and task.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output folder.
        #[arg(long, default_value = "runs/world")]
        out: PathBuf,
        /// Times each biography is rendered (1 = one fixed template and order).
        #[arg(long, default_value_t = 5)]
        renderings: usize,
        /// Number of people.
        #[arg(long, default_value_t = 200)]
        people: usize,
        /// Vocabulary of the world's BPE tokenizer (tokenizer.json).
        #[arg(long, default_value_t = 512)]
        vocab: usize,
        /// Build the world from your own knowledge base (JSONL triples) instead of generating one.
        #[arg(long)]
        kb: Option<PathBuf>,
    },
    /// Climb the ladder: one world, a model trained on it, one lever per rung, each re-measured
    /// on held-out questions. Writes report.md, report.html and report.json to --out.
    Ladder {
        /// smoke (about a minute, numbers meaningless) | default (minutes on a 2-core CPU) | large (GPU).
        #[arg(long, default_value = "default")]
        preset: String,
        /// Seed of the world, the weights and the data order.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output folder; a rerun reuses its finished rungs and resumes a killed one.
        #[arg(long, default_value = "runs/ladder")]
        out: PathBuf,
        /// Rerun every rung instead of reusing finished ones.
        #[arg(long)]
        fresh: bool,
        /// Your own knowledge base (JSONL triples) instead of the generated world.
        #[arg(long)]
        kb: Option<PathBuf>,
        /// Compute threads (0 = one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Change a preset field: --set steps=600 --set sft.optim.lr=5e-4 (changed rungs rerun).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Stop after this rung.
        #[arg(long)]
        until: Option<String>,
        /// Run only these rungs (comma-separated) and the rungs they build on.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Hyper-parameter sweeps on a generated world, each written as JSON, markdown and an SVG
    /// chart: `lr` (the best learning rate across widths, muP against standard parameterisation)
    /// and `scale` (loss against parameters and FLOPs as power laws, knowledge bits per parameter).
    Sweep {
        #[command(subcommand)]
        kind: SweepKind,
    },
    /// Answer tasks greedily with a checkpoint and grade them: accuracy per family and hop depth
    /// with 95% intervals, printed as a table and written as JSON.
    Eval {
        /// A checkpoint folder (…/checkpoints/step-N), a run folder (its newest checkpoint), a
        /// Hugging Face folder or a GGUF file.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Tasks as JSONL: the world's (e.g. runs/world/tasks/heldout.jsonl), or your own
        /// `{"question", "answer"[, "verifier"]}` lines (GSM8K's shape: the final answer after
        /// `####`), each graded by its verifier.
        #[arg(long)]
        tasks: PathBuf,
        /// The verifier of `{"question", "answer"}` lines that name none: numeric | name | exact
        /// | integer | yes_no | choice.
        #[arg(long, default_value = "numeric")]
        verifier: String,
        /// direct (the answer after the question) | trace (reasoning, then the answer) | tools
        /// (tool calls run for real, then the answer; needs --kb).
        #[arg(long, default_value = "direct")]
        mode: String,
        /// The knowledge base (`kb.jsonl` triples) that `lookup` and `find` read in tools mode.
        #[arg(long)]
        kb: Option<PathBuf>,
        /// Where to write the JSON report (scores and every graded answer); default: next to the tasks file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Score only the first N tasks of each family (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// Prompts decoded together per thread.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Tokens generated at most per answer (default: the mode's; 256 for a question/answer file).
        #[arg(long)]
        max_new: Option<usize>,
    },
    /// Continue a prompt with a checkpoint (greedy, or sampled with --temperature).
    Generate {
        /// A checkpoint folder (…/checkpoints/step-N) or a run folder (its newest checkpoint).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The text to continue.
        #[arg(long)]
        prompt: String,
        /// Wrap the prompt as a user turn of the chat template and generate the assistant's turn.
        #[arg(long)]
        chat: bool,
        /// Stop at this string (repeatable); it is cut off.
        #[arg(long)]
        stop: Vec<String>,
        /// Print the completions as JSON lines (text, tokens, sampled count, finish reason).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        gen: GenFlags,
    },
    /// Talk to a checkpoint through the chat template (one line per turn; empty line or EOF ends).
    Chat {
        #[arg(long)]
        checkpoint: PathBuf,
        /// A system turn to start the conversation with.
        #[arg(long)]
        system: Option<String>,
        #[command(flatten)]
        gen: GenFlags,
    },
    /// Supervised fine-tuning of a checkpoint on JSONL examples (prompt/completion or chat
    /// messages; only what the assistant writes is trained), optionally packed.
    Sft {
        /// Recipe: init, data, out_dir, [sft] (print one with --print-config).
        #[arg(long, required_unless_present = "print_config")]
        config: Option<PathBuf>,
        /// Print an example recipe with the default settings and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Direct preference optimisation against a frozen reference, on JSONL pairs
    /// {"prompt", "chosen", "rejected"}. Recipe: init, [reference], pairs, out_dir, [prefs].
    Dpo(StageFlags),
    /// Odds-ratio preference optimisation (no reference model), on JSONL pairs. Recipe: init,
    /// pairs, out_dir, [prefs].
    Orpo(StageFlags),
    /// GRPO: reinforcement learning from the verifier's rewards on the train questions of a task
    /// file (groups of sampled answers, group-normalised advantages, clipped ratio, KL to a
    /// reference). Recipe: init, [reference], tasks, mode, [kb], out_dir, [grpo].
    Grpo(StageFlags),
    /// Logit distillation: a student (same tokenizer, any size) learns a teacher's next-token
    /// distributions on the completions of JSONL examples.
    Distill {
        /// Recipe: teacher, student, data, out_dir, [distill] (print one with --print-config).
        #[arg(long, required_unless_present = "print_config")]
        config: Option<PathBuf>,
        /// Print an example recipe with the default settings and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Write a checkpoint, a Hugging Face folder or a GGUF file as a Hugging Face folder
    /// (`--format hf`, F32 safetensors, config.json, tokenizer files with the chat template) or a
    /// GGUF file (`--format gguf --quant q8_0`) for llama.cpp. Never overwrites `--out`.
    Export {
        /// The model: a checkpoint or run folder, a Hugging Face folder or a GGUF file.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The folder (hf) or file (gguf) to write; must not exist.
        #[arg(long)]
        out: PathBuf,
        /// `hf` or `gguf`.
        #[arg(long, default_value = "hf")]
        format: String,
        /// GGUF type of the matrices: f32, f16, bf16, q8_0, q6_k, q5_0, q5_1, q4_k, q4_0, q4_1
        /// (rows that are not whole blocks fall back to q8_0, then f16).
        #[arg(long, default_value = "q8_0")]
        quant: String,
    },
    /// Serve a model over an OpenAI-compatible HTTP API, with a web chat page at / (crates/serve).
    Serve(serve::ServeArgs),
    /// Parameter and FLOP counts of an architecture.
    Info {
        /// Recipe file whose [model] section to describe; default recipe if absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Or a preset name at the recipe's size: llama | gpt2.
        #[arg(long)]
        preset: Option<String>,
    },
    /// Throughput benchmarks, flag-compatible with shared/peers/torch_ref.py.
    Bench {
        #[command(subcommand)]
        mode: BenchMode,
    },
}

/// The two sweeps of `ascent sweep`.
#[derive(Subcommand)]
enum SweepKind {
    /// Final validation loss over widths × peak learning rates, under standard parameterisation
    /// and under muP (base width = the smallest): does the best rate stay put as width grows?
    /// Writes lr-sweep.{json,md,svg}; a rerun reuses finished runs.
    Lr(LrSweepFlags),
    /// A family of model sizes on a fresh world: final validation loss, fitted as power laws of
    /// parameters and FLOPs, and the bits of facts each stores. Writes scale-sweep.{json,md,svg};
    /// a rerun reuses finished models and resumes a killed one.
    Scale(ScaleSweepFlags),
}

#[derive(Args)]
struct LrSweepFlags {
    /// Output folder (world, data, runs/<name>/, lr-sweep.*).
    #[arg(long, default_value = "runs/sweep-lr")]
    out: PathBuf,
    /// Seed of the world, the weights and the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model widths, comma-separated (multiples of 4); the smallest is muP's base width.
    #[arg(long, value_delimiter = ',', default_values_t = ladder::LrSweepOptions::default().widths)]
    widths: Vec<usize>,
    /// Peak learning rates, comma-separated: numbers or powers of two (2^-8).
    #[arg(long, value_delimiter = ',', value_parser = parse_lr, default_values_t = ladder::LrSweepOptions::default().lrs)]
    lrs: Vec<f64>,
    /// Optimiser steps of every run (16 × 64 tokens each).
    #[arg(long, default_value_t = ladder::LrSweepOptions::default().steps)]
    steps: usize,
    /// People in the generated world (half held out).
    #[arg(long, default_value_t = ladder::LrSweepOptions::default().people)]
    people: usize,
    /// Compute threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Args)]
struct ScaleSweepFlags {
    /// Output folder (world, data, runs/<name>/, scale-sweep.*).
    #[arg(long, default_value = "runs/sweep-scale")]
    out: PathBuf,
    /// Seed of the world (a fresh sample per seed), the weights and the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model sizes as WIDTHxBLOCKS, comma-separated (at least 3).
    #[arg(long, value_delimiter = ',', value_parser = parse_size,
          default_values_t = ladder::ScaleSweepOptions::default().sizes.into_iter().map(Size))]
    sizes: Vec<Size>,
    /// Optimiser steps of every size (16 × 64 tokens each).
    #[arg(long, default_value_t = ladder::ScaleSweepOptions::default().steps, conflicts_with = "tokens")]
    steps: usize,
    /// Or: tokens of every size (rounded up to whole steps of 1024 tokens).
    #[arg(long)]
    tokens: Option<u64>,
    /// Peak learning rate of every size (warmup-stable-decay).
    #[arg(long, value_parser = parse_lr, default_value_t = ladder::ScaleSweepOptions::default().lr)]
    lr: f64,
    /// Standard parameterisation for every size (default: muP with the smallest width as base,
    /// so that the one learning rate transfers across widths).
    #[arg(long)]
    standard: bool,
    /// People in the generated world (half held out; every person's facts are probed).
    #[arg(long, default_value_t = ladder::ScaleSweepOptions::default().people)]
    people: usize,
    /// Compute threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// A model size of the scale sweep, written WIDTHxBLOCKS.
#[derive(Clone, Copy, Debug)]
struct Size((usize, usize));

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.0 .0, self.0 .1)
    }
}

fn parse_size(s: &str) -> Result<Size, String> {
    let bad = || format!("`{s}` is not WIDTHxBLOCKS (e.g. 64x2)");
    let (w, l) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    Ok(Size((w.trim().parse().map_err(|_| bad())?, l.trim().parse().map_err(|_| bad())?)))
}

/// A learning rate: a number (3e-3) or a power of two (2^-8).
fn parse_lr(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let v = match s.split_once('^') {
        Some(("2", e)) => e.trim().parse::<f64>().map(f64::exp2),
        Some(_) => return Err(format!("`{s}`: only powers of two are understood (2^-8)")),
        None => s.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a number or a power of two (2^-8)"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("`{s}` is not a positive learning rate"));
    }
    Ok(v)
}

/// Flags of the resumable stages (`ascent dpo`, `orpo`, `grpo`).
#[derive(Args, Clone)]
struct StageFlags {
    /// The stage's TOML recipe (print one with --print-config).
    #[arg(long, required_unless_present = "print_config")]
    config: Option<PathBuf>,
    /// Continue the run in out_dir from its newest checkpoint.
    #[arg(long)]
    resume: bool,
    /// Delete an earlier run's checkpoints in out_dir and start over.
    #[arg(long, conflicts_with = "resume")]
    fresh: bool,
    /// Stop after this many steps, as if killed (for trying --resume).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Print an example recipe with the default settings and exit.
    #[arg(long)]
    print_config: bool,
}

impl StageFlags {
    fn run_options(&self) -> RunOptions {
        RunOptions { resume: self.resume, fresh: self.fresh, stop_after: self.stop_after, quiet: false }
    }
}

/// Runs `ascent grpo`.
fn run_grpo(f: StageFlags) -> Result<()> {
    use train::stage::{read_toml, to_toml, GrpoRun};
    if f.print_config {
        print!("{}", to_toml(&GrpoRun::example()));
        return Ok(());
    }
    let path = f.config.clone().expect("clap requires --config");
    let run: GrpoRun = read_toml(&path)?;
    let tools = match (run.mode, &run.kb) {
        (train::eval::AnswerMode::Tools, None) => {
            anyhow::bail!(
                "{}: mode = \"tools\" needs kb = \"KB.jsonl\" (the facts `lookup` and `find` read)",
                path.display()
            )
        }
        (train::eval::AnswerMode::Tools, Some(kb)) => {
            let facts = world::KnowledgeBase::read(kb, &world::KbConfig::default())?.facts();
            Some(std::sync::Arc::new(tools::Registry::standard(&facts)))
        }
        _ => None,
    };
    let opts = RunOptions { resume: f.resume, fresh: f.fresh, stop_after: f.stop_after, quiet: false };
    let (s, n) = match run.load_questions()? {
        Ok(tasks) => (
            train::grpo::grpo(
                &run.init,
                run.reference.as_deref(),
                &tasks,
                run.mode,
                tools,
                &run.grpo,
                &run.out_dir,
                &opts,
            ),
            tasks.len(),
        ),
        Err(tasks) => (
            train::grpo::grpo_qa(&run.init, run.reference.as_deref(), &tasks, &run.grpo, &run.out_dir, &opts),
            tasks.len(),
        ),
    };
    let s = s.context("grpo failed")?;
    println!(
        "done: {} of {} steps (from step {}) on {} questions in {:.1}s; reward {:.3} -> {:.3}, accuracy {:.3} -> {:.3}",
        s.metrics.len(),
        s.steps,
        s.resumed_from,
        n,
        s.seconds,
        s.first_reward,
        s.last_reward,
        s.first_accuracy,
        s.last_accuracy
    );
    println!("checkpoint: {}", s.checkpoint.display());
    println!("metrics: {}", train::grpo::metrics_path(&run.out_dir).display());
    Ok(())
}

/// Runs `ascent dpo` (`orpo = false`) or `ascent orpo`.
fn run_prefs(f: StageFlags, orpo: bool) -> Result<()> {
    use train::prefs::Objective;
    use train::stage::{read_toml, to_toml, PrefRun};
    let name = if orpo { "orpo" } else { "dpo" };
    if f.print_config {
        let mut r = PrefRun::example();
        if orpo {
            r.prefs.objective = Objective::Orpo { lambda: 1.0 };
            r.out_dir = "runs/orpo".into();
        }
        print!("{}", to_toml(&r));
        return Ok(());
    }
    let path = f.config.clone().expect("clap requires --config");
    let run: PrefRun = read_toml(&path)?;
    if (run.prefs.objective.name() == "orpo") != orpo {
        anyhow::bail!(
            "{}: [prefs] objective is {}; run `ascent {}` with it, or set objective.kind = \"{name}\"",
            path.display(),
            run.prefs.objective.name(),
            run.prefs.objective.name()
        );
    }
    if orpo && run.reference.is_some() {
        anyhow::bail!("{}: ORPO uses no reference model; remove `reference`", path.display());
    }
    let pairs = run.load_pairs()?;
    let opts = f.run_options();
    let s = train::prefs::prefs(&run.init, run.reference.as_deref(), &pairs, &run.prefs, &run.out_dir, &opts)
        .with_context(|| format!("{name} failed"))?;
    println!(
        "done: {} of {} steps (from step {}) on {} pairs in {:.1}s; loss {:.4} -> {:.4}",
        s.resumed_from + s.losses.len(),
        s.steps,
        s.resumed_from,
        s.pairs,
        s.seconds,
        s.first_loss,
        s.last_loss
    );
    println!("checkpoint: {}", s.checkpoint.display());
    Ok(())
}

#[derive(Subcommand)]
enum BenchMode {
    /// Training tokens/s (forward + backward + AdamW).
    Train(BenchFlags),
    /// Generation tokens/s with a KV cache (greedy).
    Generate(BenchFlags),
}

#[derive(Args, Clone)]
struct BenchFlags {
    #[arg(long, default_value_t = 512)]
    vocab: usize,
    #[arg(long, default_value_t = 256)]
    dim: usize,
    #[arg(long, default_value_t = 4)]
    layers: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    #[arg(long, default_value_t = 688)]
    ff: usize,
    #[arg(long, default_value_t = 128)]
    seq: usize,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Tokens generated per sequence (generate).
    #[arg(long, default_value_t = 128)]
    new: usize,
    /// Timed training steps (after 3 warm-up steps).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// cpu | wgpu | cuda
    #[arg(long, default_value = "cpu")]
    backend: Backend,
}

impl From<BenchFlags> for BenchArgs {
    fn from(f: BenchFlags) -> Self {
        BenchArgs {
            vocab: f.vocab,
            dim: f.dim,
            layers: f.layers,
            heads: f.heads,
            ff: f.ff,
            seq: f.seq,
            batch: f.batch,
            new: f.new,
            steps: f.steps,
            threads: f.threads,
            backend: f.backend,
        }
    }
}

fn load_config(path: &Option<PathBuf>) -> Result<PretrainConfig> {
    Ok(match path {
        Some(p) => PretrainConfig::from_file(p)?,
        None => PretrainConfig::default(),
    })
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Pretrain { config, resume, fresh, out, steps, print_config, stop_after } => {
            if print_config {
                print!("{DEFAULT_TOML}");
                return Ok(());
            }
            let mut cfg = load_config(&config)?;
            if let Some(o) = out {
                cfg.out_dir = o;
            }
            if let Some(s) = steps {
                cfg.train.steps = s;
            }
            let s = train::pretrain(&cfg, &RunOptions { resume, fresh, stop_after, quiet: false })
                .context("pretraining failed")?;
            let first = s.val_losses.first().map(|v| v.1);
            println!(
                "done: {} steps ({} this run) in {:.1}s, {:.0} tokens/s, {:.2e} FLOPs, {} params",
                s.steps_done,
                s.steps_done - s.start_step,
                s.seconds,
                s.tokens_per_s,
                s.flops,
                s.params
            );
            if let (Some((_, first_train)), Some((_, last))) = (s.train_losses.first(), s.val_losses.last()) {
                println!(
                    "train loss at first step {first_train:.4}, final val loss {last:.4} (first val {:.4})",
                    first.unwrap_or(*last)
                );
            }
            if let Some(c) = s.last_checkpoint {
                println!("checkpoint: {}", c.display());
            }
        }
        Command::Sft { config, print_config } => {
            use train::stage::{read_toml, to_toml, SftRun};
            if print_config {
                print!("{}", to_toml(&SftRun::example()));
                return Ok(());
            }
            let path = config.expect("clap requires --config");
            let run: SftRun = read_toml(&path)?;
            let (examples, replay) = run.load_data()?;
            let s = train::sft::sft(&run.init, &examples, &replay, &run.sft, &run.out_dir, false)
                .context("fine-tuning failed")?;
            println!(
                "done: {} steps, {} examples seen ({} in the file), {} token positions in {:.1}s; loss {:.4} -> {:.4}",
                s.steps,
                s.examples_seen,
                examples.len(),
                s.tokens,
                s.seconds,
                s.first_loss,
                s.last_loss
            );
            println!("checkpoint: {}", s.checkpoint.display());
        }
        Command::Distill { config, print_config } => {
            use train::stage::{read_toml, to_toml, DistillRun};
            if print_config {
                print!("{}", to_toml(&DistillRun::example()));
                return Ok(());
            }
            let path = config.expect("clap requires --config");
            let run: DistillRun = read_toml(&path)?;
            let (examples, replay) = run.load_data()?;
            let s = train::distill::distill(&run.teacher, &run.student, &examples, &replay, &run.distill, &run.out_dir)
                .context("distillation failed")?;
            println!(
                "done: {} steps on {} examples in {:.1}s; loss (τ²·KL) {:.4} -> {:.4}",
                s.steps,
                examples.len(),
                s.seconds,
                s.first_loss,
                s.last_loss
            );
            println!("checkpoint: {}", s.checkpoint.display());
        }
        Command::Dpo(f) => run_prefs(f, false)?,
        Command::Grpo(f) => run_grpo(f)?,
        Command::Orpo(f) => run_prefs(f, true)?,
        Command::World { seed, out, renderings, people, vocab, kb } => {
            use world::Knowledge;
            let w: Box<dyn Knowledge> = match &kb {
                None => {
                    let cfg = world::WorldConfig { seed, renderings, people, ..Default::default() };
                    cfg.validate()?;
                    Box::new(world::World::generate(&cfg)?)
                }
                Some(path) => {
                    let cfg = world::KbConfig { seed, ..Default::default() };
                    Box::new(world::KnowledgeBase::read(path, &cfg)?)
                }
            };
            // One tokenizer per world, shared by every rendering count: byte-level BPE trained on
            // the single-rendering corpus and the train tasks. It counts the corpus tokens.
            let tok = ladder::train_world_tokenizer(w.as_ref(), vocab)?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            tok.save(&out.join("tokenizer.json"))?;
            let count = |text: &str| tok.encode(text).len() as u64;
            let s = w
                .write_counted(&out, renderings, Some(&count))
                .with_context(|| format!("writing the world to {}", out.display()))?;
            println!("world written to {}", out.display());
            println!("{}", serde_json::to_string_pretty(&s)?);
            let d = w.decontamination(renderings)?;
            world::write_atomic(&out.join("decontamination.json"), serde_json::to_string_pretty(&d)?.as_bytes())?;
            println!(
                "decontamination: {} held-out tasks, {} patterns searched in {:?}: {} hits",
                d.heldout_tasks,
                d.patterns,
                d.sources,
                d.hits.len()
            );
            anyhow::ensure!(
                d.is_clean(),
                "held-out tasks leak into training data; see {}",
                out.join("decontamination.json").display()
            );
        }
        Command::Ladder { preset, seed, out, fresh, kb, threads, overrides, until, only } => {
            let opts = ladder::LadderOptions {
                preset,
                seed,
                out: out.clone(),
                fresh,
                quiet: false,
                kb,
                threads,
                overrides,
                until,
                only,
            };
            let mut print_row = |r: &report::RungReport| {
                let fams: Vec<String> = report::FAMILY_ORDER
                    .iter()
                    .filter_map(|f| r.accuracy.get(*f).map(|a| format!("{f} {:.0}%", 100.0 * a)))
                    .collect();
                println!(
                    "rung {:<13} knowledge {} corpus {} | {} | recall probe train {:.0}% held-out {:.0}% | {:.0}s{}",
                    r.name,
                    &r.knowledge_sha256[..12],
                    &r.corpus_sha256[..12],
                    fams.join(", "),
                    100.0 * r.recall_probe.train,
                    100.0 * r.recall_probe.heldout,
                    r.seconds,
                    if r.reused { " (reused)" } else { "" }
                );
            };
            let rep = ladder::run(&opts, &mut print_row).context("the ladder failed")?;
            println!(
                "ladder done in {:.0}s: {} rungs; knowledge {} ({} facts)",
                rep.total_seconds,
                rep.rungs.len(),
                rep.world.knowledge_sha256,
                rep.world.facts
            );
            println!("report: {}", out.join("report.md").display());
        }
        Command::Sweep { kind: SweepKind::Lr(f) } => {
            let opts = ladder::LrSweepOptions {
                out: f.out.clone(),
                seed: f.seed,
                widths: f.widths,
                lrs: f.lrs,
                steps: f.steps,
                people: f.people,
                threads: f.threads,
                ..Default::default()
            };
            let sweep = ladder::lr_sweep(&opts).context("the learning-rate sweep failed")?;
            println!("best learning rate per width (final validation loss; refined by a parabola in log2 lr):");
            for b in sweep.best() {
                println!(
                    "  {:<8} width {:>4}: lr {:.3e} (2^{:.1}), loss {:.4}, refined 2^{:.2}{}",
                    b.parameterisation,
                    b.width,
                    b.lr,
                    b.lr.log2(),
                    b.loss,
                    b.lr_fit.log2(),
                    if b.at_edge { " (at the edge of the grid)" } else { "" }
                );
            }
            let widths = sweep.widths();
            let drift: Vec<String> = sweep.drift().iter().map(|(p, d)| format!("{p} {d:.2} octaves")).collect();
            println!(
                "drift of the best rate over widths {}: {}",
                widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(", "),
                drift.join(", ")
            );
            let diverged = sweep.points.iter().filter(|p| !p.loss.is_finite()).count();
            println!(
                "{} runs ({diverged} diverged) in {:.0}s; report: {}",
                sweep.points.len(),
                sweep.seconds,
                f.out.join("lr-sweep.md").display()
            );
        }
        Command::Sweep { kind: SweepKind::Scale(f) } => {
            let tokens_per_step = (ladder::sweep::BATCH_SIZE * ladder::sweep::SEQ_LEN) as u64;
            let steps = f.tokens.map_or(f.steps, |t| t.div_ceil(tokens_per_step) as usize);
            let opts = ladder::ScaleSweepOptions {
                out: f.out.clone(),
                seed: f.seed,
                sizes: f.sizes.iter().map(|s| s.0).collect(),
                steps,
                lr: f.lr,
                mup: !f.standard,
                people: f.people,
                threads: f.threads,
                ..Default::default()
            };
            let sweep = ladder::scale_sweep(&opts).context("the scale sweep failed")?;
            println!("power laws (loss = final validation loss, N = non-embedding parameters, C = training FLOPs):");
            if sweep.fits.is_empty() {
                println!("  none: fewer than 3 models reached a finite loss");
            }
            for fit in &sweep.fits {
                println!("  {} [x = {}]", fit.equation(), fit.x);
            }
            println!(
                "knowledge stored (bits of facts per parameter, all parameters; Allen-Zhu & Li report up to {} at capacity):",
                report::sweep::KNOWLEDGE_BITS_PER_PARAM
            );
            for (p, (_, bpp)) in sweep.points.iter().zip(sweep.bits_per_param()) {
                println!("  {:<8} {:>9.0} bits / {:>8} params = {bpp:.4}", p.name, p.knowledge_bits, p.total_params);
            }
            println!(
                "{} models in {:.0}s; report: {}",
                sweep.points.len(),
                sweep.seconds,
                f.out.join("scale-sweep.md").display()
            );
        }
        Command::Eval { checkpoint, tasks, verifier, mode, kb, out, limit, batch, max_new } => {
            let text = std::fs::read_to_string(&tasks).with_context(|| format!("cannot read {}", tasks.display()))?;
            let verifier =
                train::qa::QaVerifier::from_name(&verifier).map_err(|e| anyhow::anyhow!("--verifier: {e}"))?;
            if train::qa::is_qa_file(&text) {
                // {"question", "answer"[, "verifier"]}: each line graded by its verifier.
                let mut list = train::qa::read_qa_tasks(&tasks, verifier)?;
                if limit > 0 {
                    list.truncate(limit);
                }
                let device = model::engine::device(Backend::Cpu).map_err(anyhow::Error::msg)?;
                let (m, tok, _) = train::eval::load_for_inference(&checkpoint, &device)?;
                let r = train::qa::evaluate_qa(&m, &tok, &list, max_new.unwrap_or(256), &device)?;
                println!(
                    "{}/{} correct, {:.1}% [{:.1}–{:.1}]",
                    r.correct,
                    r.n,
                    100.0 * r.accuracy,
                    100.0 * r.ci95[0],
                    100.0 * r.ci95[1]
                );
                let out = out.unwrap_or_else(|| tasks.with_extension("eval.json"));
                train::checkpoint::write_atomic(&out, serde_json::to_string_pretty(&r)?.as_bytes())?;
                println!("{} tasks in {:.1}s; report: {}", r.n, r.seconds, out.display());
                return Ok(());
            }
            let mode: train::eval::AnswerMode = mode.parse().map_err(anyhow::Error::msg)?;
            let tools = match (mode, &kb) {
                (train::eval::AnswerMode::Tools, None) => {
                    anyhow::bail!("--mode tools needs --kb KB.jsonl (the facts `lookup` and `find` read)")
                }
                (train::eval::AnswerMode::Tools, Some(path)) => {
                    let facts = world::KnowledgeBase::read(path, &world::KbConfig::default())?.facts();
                    Some(std::sync::Arc::new(tools::Registry::standard(&facts)))
                }
                _ => None,
            };
            let mut list = train::eval::read_tasks(&tasks)?;
            if limit > 0 {
                let mut seen = std::collections::BTreeMap::<String, usize>::new();
                list.retain(|t| {
                    let n = seen.entry(t.family.as_str().to_string()).or_default();
                    *n += 1;
                    *n <= limit
                });
            }
            let device = model::engine::device(Backend::Cpu).map_err(anyhow::Error::msg)?;
            let (m, tok, _) = train::eval::load_for_inference(&checkpoint, &device)?;
            let opts = train::eval::EvalOptions { mode, batch, max_new, tools, prefixes: None };
            let r = train::eval::evaluate(&m, &tok, &list, &opts, &device)?;
            print!("{}", r.table());
            let out = out.unwrap_or_else(|| tasks.with_extension("eval.json"));
            train::checkpoint::write_atomic(&out, serde_json::to_string_pretty(&r)?.as_bytes())?;
            println!("{} tasks in {:.1}s; report: {}", r.overall.n, r.seconds, out.display());
        }
        Command::Generate { checkpoint, prompt, chat, stop, json, gen } => {
            let opts = gen.options(stop)?;
            let device = model::engine::device(Backend::Cpu).map_err(anyhow::Error::msg)?;
            let (m, tok, _) = train::eval::load_for_inference(&checkpoint, &device)?;
            let text = if chat {
                tok.render_chat(&[tokenizer::Message::new(tokenizer::Role::User, prompt)], true)?
            } else {
                prompt
            };
            let outs = train::infer::complete(&m, &tok, &text, &opts, &|_, _| {}, &device)?;
            for c in outs {
                if json {
                    println!("{}", serde_json::to_string(&c)?);
                } else {
                    println!("{}", c.text);
                }
            }
        }
        Command::Chat { checkpoint, system, gen } => {
            use std::io::{BufRead, Write};
            let opts = gen.options(Vec::new())?;
            let device = model::engine::device(Backend::Cpu).map_err(anyhow::Error::msg)?;
            let (m, tok, _) = train::eval::load_for_inference(&checkpoint, &device)?;
            let mut session = train::infer::ChatSession::new(system.as_deref());
            let stdin = std::io::stdin();
            let interactive = stdin.is_terminal();
            loop {
                if interactive {
                    print!("> ");
                    std::io::stdout().flush()?;
                }
                let mut line = String::new();
                if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
                    break;
                }
                let printed = std::sync::Mutex::new(0usize);
                let show = |text: &str| {
                    let mut n = printed.lock().expect("not poisoned");
                    // Replacement characters at the end are a character still being decoded.
                    let ready = text.trim_end_matches('\u{FFFD}').len();
                    if ready > *n && text.is_char_boundary(*n) {
                        print!("{}", &text[*n..ready]);
                        let _ = std::io::stdout().flush();
                        *n = ready;
                    }
                };
                let c = session.reply(&m, &tok, line.trim_end_matches(['\n', '\r']), &opts, &show, &device)?;
                // Streaming printed the raw text; finish the line with whatever it did not show.
                let shown = *printed.lock().expect("not poisoned");
                if c.text.len() > shown && c.text.is_char_boundary(shown) {
                    print!("{}", &c.text[shown..]);
                }
                println!();
            }
        }
        Command::Export { checkpoint, out, format, quant } => {
            let format = train::export::Format::parse(&format, &quant).map_err(anyhow::Error::msg)?;
            let device = model::engine::device(Backend::Cpu).map_err(anyhow::Error::msg)?;
            let (m, tok, _) = train::eval::load_for_inference(&checkpoint, &device)?;
            let name = checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let r = train::export::export(&m, &tok, format, &name, &out)?;
            let types: Vec<String> = r.tensor_types.iter().map(|(t, n)| format!("{n} {t}")).collect();
            println!("wrote {} ({} bytes; tensors: {})", out.display(), r.bytes, types.join(", "));
        }
        Command::Serve(args) => serve::run(args).context("ascent serve failed")?,
        Command::Info { config, preset } => {
            let mut cfg = load_config(&config)?;
            if let Some(p) = preset {
                cfg.model.preset = p;
            }
            cfg.check()?;
            let m = cfg.model_config(cfg.data.vocab_size)?;
            let p = m.param_count();
            println!("{}", m.summary());
            println!("parameters: {} total, {} embedding, {} non-embedding", p.total, p.embedding, p.non_embedding);
            let seq = cfg.train.seq_len;
            println!(
                "FLOPs per token at T={seq}: forward {:.3e}, train {:.3e}",
                m.forward_flops_per_token(seq) as f64,
                m.train_flops_per_token(seq) as f64
            );
        }
        Command::Bench { mode } => {
            let (flags, train) = match mode {
                BenchMode::Train(f) => (f, true),
                BenchMode::Generate(f) => (f, false),
            };
            let args: BenchArgs = flags.into();
            let r = if train { bench_train(&args) } else { bench_generate(&args) }.map_err(anyhow::Error::msg)?;
            if !r.breakdown.is_empty() {
                eprintln!("{}", r.breakdown);
            }
            println!("{}", r.result_line());
        }
    }
    Ok(())
}
