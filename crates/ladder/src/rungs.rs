//! The rungs: one lever each, as data.
//!
//! A rung is a [`RungSpec`]: a name, the lever in one line, the stage that trains its model and
//! how its model is asked (direct answer or reasoning trace). Adding a rung is adding an entry
//! to [`rungs`]; a new kind of training adds a [`Stage`] variant and its arm in `run.rs`.

use model::Sampling;
use serde::{Deserialize, Serialize};
use train::config::{OptimKind, ScheduleKind, ScheduleSection};
use train::distill::DistillConfig;
use train::eval::AnswerMode;
use train::grpo::GrpoConfig;
use train::prefs::{Objective, PrefConfig};
use train::reward::RewardConfig;
use train::rft::RftConfig;
use train::sft::SftConfig;
use train::testtime::Strategy;
use train::PretrainConfig;

use crate::preset::Preset;

/// How a rung's model is trained.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stage {
    /// Pretraining from scratch on the corpus rendered `renderings` times, mixed with
    /// direct-answer QA about the train people. `config.data.corpus`, `val_corpus`,
    /// `tokenizer` and `out_dir` are filled in by the runner.
    Pretrain { renderings: usize, config: Box<PretrainConfig> },
    /// Pretraining as [`Stage::Pretrain`] with the optimiser and peak rate chosen by a proxy
    /// sweep: each of `candidates` (and AdamW, for reference) run for `proxy_steps` (the
    /// schedule's warmup kept, the rest scaled) at its default rate
    /// ([`train::config::OptimKind::default_lr`], scaled by the recipe's own rate over AdamW's
    /// default) times each of `lr_factors`; the candidate with the lowest validation loss (on
    /// the corpus, never the questions) is trained in full.
    TunedPretrain {
        renderings: usize,
        config: Box<PretrainConfig>,
        candidates: Vec<OptimKind>,
        lr_factors: Vec<f64>,
        proxy_steps: usize,
    },
    /// Fine-tuning the model of rung `from` on `data` made from the train tasks, replaying the
    /// corpus it was pretrained on.
    Sft { from: String, data: SftData, config: SftConfig },
    /// No training of the answering model: the model of rung `from`, asked `k` times per question
    /// with `sampling`, one answer chosen by `strategy` (test-time compute). `reward` is the
    /// recipe of the reward model that [`Strategy::BestOfReward`] trains first.
    TestTime {
        from: String,
        strategy: Strategy,
        k: usize,
        sampling: Sampling,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reward: Option<RewardConfig>,
    },
    /// Preference optimisation of the model of rung `from` on pairs of its own answers to the
    /// train questions (`samples` per question, drawn with `sampling`): a verified-correct trace
    /// chosen over a wrong one for the same question. With `epochs > 0` the run takes that many
    /// passes over the pairs (`config.steps` is then set from the number of pairs, which is only
    /// known once they are sampled).
    /// With `rounds > 1`, stepwise: each round samples the previous round's model for new pairs
    /// and optimises it with itself as the reference.
    Prefs {
        from: String,
        samples: usize,
        sampling: Sampling,
        config: PrefConfig,
        epochs: f64,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        rounds: usize,
    },
    /// Rejection-sampling fine-tuning rounds from the model of rung `from` on its own verified
    /// answers to the train questions ([`train::rft`]), replaying the corpus.
    Rft { from: String, config: RftConfig },
    /// GRPO from the model of rung `from` on the train questions, rewarded by their verifiers
    /// ([`train::grpo`]). The held-out questions are also sampled `k` times with `sampling`,
    /// before (the parent's model) and after, for pass@1 and pass@k.
    Grpo { from: String, config: GrpoConfig, k: usize, sampling: Sampling },
    /// Distillation of the model of rung `from` (the teacher) into a smaller student: the student
    /// is pretrained with `student` on the teacher's corpus, then (the reference point) fine-tuned
    /// with `sft` on the gold traces, and (the rung's model) distilled from the teacher with
    /// `distill` (forward KL to the teacher's next-token distributions, replaying the corpus) on
    /// the gold traces and the teacher's own verified answers to the train questions (`samples`
    /// each, drawn with `sampling`; right answer, every step true, at most `per_question` kept).
    Distill {
        from: String,
        student: Box<PretrainConfig>,
        sft: SftConfig,
        distill: DistillConfig,
        samples: usize,
        sampling: Sampling,
        per_question: usize,
    },
}

impl Stage {
    /// The rung this stage builds on, if any.
    pub fn parent(&self) -> Option<&str> {
        match self {
            Stage::Pretrain { .. } | Stage::TunedPretrain { .. } => None,
            Stage::Sft { from, .. }
            | Stage::TestTime { from, .. }
            | Stage::Prefs { from, .. }
            | Stage::Rft { from, .. }
            | Stage::Grpo { from, .. }
            | Stage::Distill { from, .. } => Some(from),
        }
    }

    /// The same stage with every seed it draws from moved by `offset` (a replicate), for the
    /// stages that support replicates: pretraining and fine-tuning.
    pub fn reseeded(&self, offset: u64) -> Option<Stage> {
        let mut s = self.clone();
        match &mut s {
            Stage::Pretrain { config, .. } | Stage::TunedPretrain { config, .. } => {
                config.seed = config.seed.wrapping_add(offset)
            }
            Stage::Sft { config, .. } => config.seed = config.seed.wrapping_add(offset),
            _ => return None,
        }
        Some(s)
    }

    /// The pretraining corpus renderings of a pretraining stage.
    pub fn renderings(&self) -> Option<usize> {
        match self {
            Stage::Pretrain { renderings, .. } | Stage::TunedPretrain { renderings, .. } => Some(*renderings),
            _ => None,
        }
    }

    /// The fine-tuning examples this stage trains on, made from the train tasks, if any.
    pub fn sft_data(&self) -> Option<SftData> {
        match self {
            Stage::Sft { data, .. } => Some(*data),
            Stage::Distill { .. } => Some(SftData::Traces),
            _ => None,
        }
    }
}

/// What a fine-tuning stage trains on, made from the train tasks.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SftData {
    /// The gold reasoning traces: one fact per line, then `Answer: X`.
    Traces,
    /// The tool traces in the chat protocol (`tools::trace_to_chat`): calls written by the
    /// model, results injected by the runtime (read, never trained on), then `Answer: X`.
    ToolTraces,
    /// The gold traces, half of them with one fact line first written wrong (not trained on),
    /// then retracted and written right ([`crate::reflect`]).
    ReflectionTraces,
}

impl SftData {
    /// The stem of the training file (`data/sft-{stem}.jsonl`).
    pub fn file_stem(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::ToolTraces => "tools",
            Self::ReflectionTraces => "reflection",
        }
    }
}

/// One rung of the ladder.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RungSpec {
    pub name: String,
    /// What this rung changes, in one line.
    pub lever: String,
    pub stage: Stage,
    pub answer_mode: AnswerMode,
    /// Passages retrieved (BM25 over the knowledge, one passage per subject) and put before every question
    /// this rung's model is fine-tuned on and asked; 0 = none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retrieve: usize,
    /// Copies of each fine-tuning example about fictional people ([`crate::fictional`]), on
    /// top of the example itself; 0 = none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fictional: usize,
    /// Seeds this rung's stage is trained at (the stage's seeds offset by 0, 1, ...), each
    /// evaluated; the rung it is compared with is trained at the same seeds. Children build
    /// on the first. 1 = no replicates.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub seeds: usize,
    /// The rung this one is compared with (paired test, seeds); unset = its parent, else the
    /// rung before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// The pretraining recipe of the baseline: `gpt2`, AdamW at a constant rate after warmup.
fn base_pretrain(p: &Preset, seed: u64) -> PretrainConfig {
    let mut c = PretrainConfig { seed, ..PretrainConfig::default() };
    c.model.preset = "gpt2".into();
    c.model.d_model = p.d_model;
    c.model.n_layers = p.n_layers;
    c.model.n_heads = p.n_heads;
    c.data.vocab_size = p.vocab;
    c.optim.lr = p.lr;
    c.schedule = ScheduleSection {
        kind: ScheduleKind::Constant,
        warmup_steps: p.warmup_steps,
        min_lr_ratio: 0.1,
        decay_fraction: 0.2,
    };
    c.train.steps = p.steps;
    c.train.batch_size = p.batch_size;
    c.train.seq_len = p.seq_len;
    c.train.eval_every = (p.steps / 5).max(1);
    c.train.eval_batches = 4;
    c.train.checkpoint_every = (p.steps / 4).max(1);
    c.train.log_every = (p.steps / 50).max(1);
    c
}

/// The rungs of a preset, in order. Each changes one thing relative to the rung before.
pub fn rungs(p: &Preset, seed: u64) -> Vec<RungSpec> {
    let baseline = base_pretrain(p, seed);

    let augmentation = baseline.clone();

    let mut architecture = augmentation.clone();
    architecture.model.preset = "llama".into();

    let mut schedule = architecture.clone();
    schedule.optim.lr = p.tuned_lr;
    schedule.schedule.kind = ScheduleKind::Wsd;
    schedule.schedule.min_lr_ratio = 0.0;

    // The levers compared with `schedule` at several seeds: the optimiser, a mixture of
    // experts at equal active parameters, a wider model.
    let mut moe = schedule.clone();
    moe.model.moe = Some(p.moe.clone());
    // The wider model is parameterised by muP with the schedule rung's width as its base, so the
    // peak rate tuned at that width carries over (under the standard parameterisation the best
    // rate falls as width grows: `ascent sweep lr`); at the base width the two are the same model.
    let mut scale = schedule.clone();
    scale.model.d_model = p.scale_width;
    scale.model.n_heads = (p.n_heads * p.scale_width / p.d_model).max(1);
    scale.model.mup_base_width = Some(p.d_model);

    let sft = SftConfig { seed, ..p.sft.clone() };
    // The student: the schedule rung's recipe at `student_width` (heads cut to keep their size).
    let mut student = schedule.clone();
    student.model.d_model = p.student_width;
    student.model.n_heads = (p.n_heads * p.student_width / p.d_model).max(1);
    let sampling = Sampling::temperature(p.sample_temperature, seed);
    vec![
        RungSpec {
            name: "baseline".into(),
            lever: "gpt2 architecture, AdamW at a constant rate, one rendering per fact, direct-answer QA".into(),
            stage: Stage::Pretrain { renderings: 1, config: Box::new(baseline) },
            answer_mode: AnswerMode::Direct,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "augmentation".into(),
            lever: format!("each fact rendered {} times (templates and sentence order varied)", p.renderings),
            stage: Stage::Pretrain { renderings: p.renderings, config: Box::new(augmentation) },
            answer_mode: AnswerMode::Direct,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "architecture".into(),
            lever: "llama (RMSNorm, SwiGLU, RoPE, GQA) at matched parameters and the same token budget".into(),
            stage: Stage::Pretrain { renderings: p.renderings, config: Box::new(architecture) },
            answer_mode: AnswerMode::Direct,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "schedule".into(),
            lever: format!("warmup-stable-decay at a tuned peak rate {:.0e} (was constant {:.0e})", p.tuned_lr, p.lr),
            stage: Stage::Pretrain { renderings: p.renderings, config: Box::new(schedule.clone()) },
            answer_mode: AnswerMode::Direct,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "optimizer".into(),
            lever: format!(
                "the best of Lion, Muon and Sophia against AdamW (schedule), each at its best of {} rates in a {}-step \
                 proxy run (validation loss on the corpus), then trained in full; {} seeds each",
                p.optimizer_lr_factors.len(),
                p.optimizer_proxy_steps,
                p.seeds
            ),
            stage: Stage::TunedPretrain {
                renderings: p.renderings,
                config: Box::new(schedule.clone()),
                candidates: vec![OptimKind::Lion, OptimKind::Muon, OptimKind::Sophia],
                lr_factors: p.optimizer_lr_factors.clone(),
                proxy_steps: p.optimizer_proxy_steps,
            },
            answer_mode: AnswerMode::Direct,
            retrieve: 0,
            fictional: 0,
            seeds: p.seeds,
            compare: Some("schedule".into()),
        },
        RungSpec {
            name: "moe".into(),
            lever: format!(
                "a mixture of {} experts ({} per token{}) in place of each MLP, at the schedule rung's active \
                 parameters and tokens; {} seeds each",
                p.moe.experts,
                p.moe.top_k,
                if p.moe.shared_expert { ", plus a shared expert" } else { "" },
                p.seeds
            ),
            stage: Stage::Pretrain { renderings: p.renderings, config: Box::new(moe) },
            answer_mode: AnswerMode::Direct,
            retrieve: 0,
            fictional: 0,
            seeds: p.seeds,
            compare: Some("schedule".into()),
        },
        RungSpec {
            name: "scale".into(),
            lever: format!(
                "width {} (was {}) on the same tokens, muP from base width {} so the tuned rate carries over: a larger model, the same knowledge; {} seeds each",
                p.scale_width, p.d_model, p.d_model, p.seeds
            ),
            stage: Stage::Pretrain { renderings: p.renderings, config: Box::new(scale) },
            answer_mode: AnswerMode::Direct,
            retrieve: 0,
            fictional: 0,
            seeds: p.seeds,
            compare: Some("schedule".into()),
        },
        RungSpec {
            name: "cot-sft".into(),
            lever: "fine-tuned on gold reasoning traces of train questions; answers after the trace".into(),
            stage: Stage::Sft { from: "schedule".into(), data: SftData::Traces, config: sft.clone() },
            answer_mode: AnswerMode::Trace,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "curriculum".into(),
            lever: format!(
                "the cot-sft fine-tune with its examples ordered from fewer hops to more, drawn from the first {}% \
                 at the start, all of them after {}% of the steps; {} seeds each",
                (p.curriculum.start * 100.0).round(),
                (p.curriculum.ramp * 100.0).round(),
                p.seeds
            ),
            stage: Stage::Sft {
                from: "schedule".into(),
                data: SftData::Traces,
                config: SftConfig { curriculum: Some(p.curriculum), ..sft.clone() },
            },
            answer_mode: AnswerMode::Trace,
            retrieve: 0,
            fictional: 0,
            seeds: p.seeds,
            compare: Some("cot-sft".into()),
        },
        RungSpec {
            name: "self-consistency".into(),
            lever: format!(
                "majority vote over {} sampled traces (temperature {}) of the cot-sft model",
                p.samples, p.sample_temperature
            ),
            stage: Stage::TestTime { from: "cot-sft".into(), strategy: Strategy::Majority, k: p.samples, sampling: sampling.clone(), reward: None },
            answer_mode: AnswerMode::Trace,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "best-of-n".into(),
            lever: format!(
                "of {} sampled traces, the one a verifier trusts most (grounded in the question's people, steps checked against the knowledge base; never the answer)",
                p.samples
            ),
            stage: Stage::TestTime { from: "cot-sft".into(), strategy: Strategy::BestOfVerifier, k: p.samples, sampling: sampling.clone(), reward: None },
            answer_mode: AnswerMode::Trace,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "best-of-n-rm".into(),
            lever: format!(
                "of {} sampled traces, the one a trained outcome reward model (a scalar head on the cot-sft model, \
                 trained on its verified samples of train questions) scores highest",
                p.samples
            ),
            stage: Stage::TestTime {
                from: "cot-sft".into(),
                strategy: Strategy::BestOfReward,
                k: p.samples,
                sampling: sampling.clone(),
                reward: Some(RewardConfig { seed, ..p.reward.clone() }),
            },
            answer_mode: AnswerMode::Trace,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "rft".into(),
            lever: format!(
                "{} rounds of rejection sampling from cot-sft: {} sampled traces per train question, those with a right \
                 answer and every step true kept (at most {} per question), fine-tuned on ({} steps a round)",
                p.rft.rounds, p.rft.samples, p.rft.per_question, p.rft.sft.steps
            ),
            stage: Stage::Rft {
                from: "cot-sft".into(),
                config: RftConfig {
                    sampling: Sampling { seed: sampling.seed.wrapping_add(3), ..p.rft.sampling.clone() },
                    sft: SftConfig { seed, ..p.rft.sft.clone() },
                    ..p.rft.clone()
                },
            },
            answer_mode: AnswerMode::Trace,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: p.prefs.objective.name().into(),
            lever: format!(
                "{}{} from cot-sft ({} passes) on pairs of its own sampled traces of train questions, {} per question: \
                 a verified-correct trace chosen over a wrong one{}",
                p.prefs.objective.name().to_uppercase(),
                if p.pref_rounds > 1 { format!(" in {} stepwise rounds", p.pref_rounds) } else { String::new() },
                p.pref_epochs,
                p.pref_samples,
                match p.prefs.objective {
                    Objective::Dpo { beta } => format!("; β {beta}, the cot-sft model as the frozen reference"),
                    Objective::Orpo { lambda } => format!("; λ {lambda}, no reference model"),
                }
            ),
            stage: Stage::Prefs {
                from: "cot-sft".into(),
                samples: p.pref_samples,
                sampling: Sampling { seed: sampling.seed.wrapping_add(2), ..sampling },
                config: PrefConfig { seed, ..p.prefs.clone() },
                epochs: p.pref_epochs,
                rounds: p.pref_rounds,
            },
            answer_mode: AnswerMode::Trace,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "grpo".into(),
            lever: format!(
                "GRPO from cot-sft: {} steps, each {} train questions × {} sampled traces (temperature {}){}, reward 1 when \
                 the verifier accepts the answer, advantages normalised within each group, ratio clipped at ±{}, KL to \
                 cot-sft weighted {}",
                p.grpo.steps,
                p.grpo.questions,
                p.grpo.group,
                p.grpo.sampling.temperature,
                if p.grpo.dynamic_sampling {
                    format!(" (dynamic sampling: {} drawn, the first {} whose rewards differ kept)", 2 * p.grpo.questions, p.grpo.questions)
                } else {
                    String::new()
                },
                p.grpo.clip,
                p.grpo.kl_beta
            ),
            stage: Stage::Grpo {
                from: "cot-sft".into(),
                config: GrpoConfig { seed, ..p.grpo.clone() },
                k: p.samples,
                sampling: sampling.clone(),
            },
            answer_mode: AnswerMode::Trace,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "distill".into(),
            lever: format!(
                "the {} model distilled into a student of width {} (at most half the parameters; pretrained on the \
                 same corpus): forward KL at temperature {} to the teacher's distributions on the gold traces and the \
                 teacher's verified answers, beside the same student fine-tuned on the gold traces",
                p.distill_teacher, p.student_width, p.distill.temperature
            ),
            stage: Stage::Distill {
                from: p.distill_teacher.clone(),
                student: Box::new(student),
                sft: sft.clone(),
                distill: DistillConfig { seed, ..p.distill.clone() },
                samples: p.rft.samples,
                sampling: Sampling { seed: sampling.seed.wrapping_add(4), ..p.rft.sampling.clone() },
                per_question: p.rft.per_question,
            },
            answer_mode: AnswerMode::Trace,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "reflection".into(),
            lever: format!(
                "fine-tuned on traces where half have one fact written wrong, then retracted and rewritten; \
                 asked greedily, at most {} retractions per answer",
                train::eval::MAX_REVISIONS
            ),
            stage: Stage::Sft { from: "schedule".into(), data: SftData::ReflectionTraces, config: sft.clone() },
            answer_mode: AnswerMode::Trace,
            retrieve: 0,
            fictional: 0,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "tools".into(),
            lever: format!(
                "fine-tuned ({} steps) on tool traces (lookup, find, calc; earlier results passed on as #k), each \
                 also with {} fictional-people copies; the calls are run for real and their results injected",
                p.tool_sft.steps, p.tool_fictional
            ),
            stage: Stage::Sft {
                from: "schedule".into(),
                data: SftData::ToolTraces,
                config: SftConfig { seed, ..p.tool_sft.clone() },
            },
            answer_mode: AnswerMode::Tools,
            retrieve: 0,
            fictional: p.tool_fictional,
            seeds: 1,
            compare: None,
        },
        RungSpec {
            name: "retrieval".into(),
            lever: format!(
                "the top {} BM25 passages of the knowledge (one per subject) put before each question (fine-tuned, with {} fictional-people \
                 copies of each example, and asked that way)",
                p.retrieve, p.fictional
            ),
            stage: Stage::Sft { from: "schedule".into(), data: SftData::Traces, config: sft },
            answer_mode: AnswerMode::Trace,
            retrieve: p.retrieve,
            fictional: p.fictional,
            seeds: 1,
            compare: None,
        },
    ]
}
