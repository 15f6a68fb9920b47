//! Post-training stages as files drive them: `ascent sft --config` and `ascent dpo|orpo --config`
//! read one of these TOML recipes (the checkpoint to start from, the data, the output folder,
//! and the stage's settings), and the data from JSONL.
//!
//! ```toml
//! init = "runs/pretrain/checkpoints/step-003200"
//! data = "data/sft.jsonl"          # prompt/completion or chat messages (train::sftdata)
//! out_dir = "runs/sft"
//! [sft]
//! steps = 300
//! pack = true
//! ```
//!
//! ```toml
//! init = "runs/sft/checkpoints/step-000300"
//! pairs = "data/pairs.jsonl"       # {"prompt", "chosen", "rejected"} per line
//! out_dir = "runs/dpo"
//! # reference = "..."              # DPO's frozen reference; default: init
//! [prefs]
//! objective = { kind = "dpo", beta = 0.1 }
//! ```
//!
//! ```toml
//! init = "runs/sft/checkpoints/step-000300"
//! tasks = "world/tasks.jsonl"      # world tasks; only split = "train" ones are used
//! mode = "trace"                   # or "tools" (then kb = "world/kb.jsonl")
//! out_dir = "runs/grpo"
//! [grpo]
//! steps = 100
//! group = 8
//! ```

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::distill::DistillConfig;
use crate::error::{io_err, TrainError};
use crate::eval::AnswerMode;
use crate::grpo::GrpoConfig;
use crate::prefs::{Pair, PrefConfig};
use crate::sft::{Example, SftConfig};

/// `ascent sft --config`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SftRun {
    /// Checkpoint folder to start from.
    pub init: PathBuf,
    /// JSONL examples ([`crate::sftdata`]).
    pub data: PathBuf,
    pub out_dir: PathBuf,
    /// Plain-text documents (separated by blank lines) replayed with the examples, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<PathBuf>,
    #[serde(default)]
    pub sft: SftConfig,
}

/// `ascent dpo|orpo --config`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrefRun {
    pub init: PathBuf,
    /// DPO's frozen reference (default: `init`); stepwise DPO names the previous round here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<PathBuf>,
    /// JSONL pairs: `{"prompt", "chosen", "rejected"[, "chosen_forced", "rejected_forced"]}`.
    pub pairs: PathBuf,
    pub out_dir: PathBuf,
    #[serde(default)]
    pub prefs: PrefConfig,
}

/// `ascent distill --config`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistillRun {
    /// The teacher's checkpoint folder.
    pub teacher: PathBuf,
    /// The student's starting checkpoint (same tokenizer, any size).
    pub student: PathBuf,
    /// JSONL examples whose completions the student learns the teacher's distributions on
    /// ([`crate::sftdata`]).
    pub data: PathBuf,
    pub out_dir: PathBuf,
    /// Plain-text documents (separated by blank lines) distilled on with the examples
    /// (`distill.replay_fraction` of each batch), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<PathBuf>,
    #[serde(default)]
    pub distill: DistillConfig,
}

impl DistillRun {
    pub fn example() -> Self {
        Self {
            teacher: "runs/sft/checkpoints/step-000200".into(),
            student: "runs/small/checkpoints/step-003200".into(),
            data: "data/sft.jsonl".into(),
            out_dir: "runs/distill".into(),
            replay: None,
            distill: DistillConfig::default(),
        }
    }

    /// The examples and replay documents the recipe names.
    pub fn load_data(&self) -> Result<(Vec<Example>, Vec<String>), TrainError> {
        examples_and_replay(&self.data, self.replay.as_deref())
    }
}

/// `ascent grpo --config`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrpoRun {
    pub init: PathBuf,
    /// The KL reference (default: `init`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<PathBuf>,
    /// World tasks (JSONL, as `ascent world` writes them; the train split is used), or your own
    /// `{"question", "answer"[, "verifier"]}` lines ([`crate::qa`]; all of them are used).
    pub tasks: PathBuf,
    /// How the model answers world tasks: `trace` or `tools` (`direct` works too). Your own
    /// tasks are asked as `ascent eval` asks them, and must leave it `direct`.
    pub mode: AnswerMode,
    /// The verifier of your own tasks' lines that name none (default `numeric`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
    /// The knowledge base (`kb.jsonl`) the tools read, in tools mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kb: Option<PathBuf>,
    pub out_dir: PathBuf,
    #[serde(default)]
    pub grpo: GrpoConfig,
}

impl GrpoRun {
    pub fn example() -> Self {
        Self {
            init: "runs/sft/checkpoints/step-000300".into(),
            reference: None,
            tasks: "world/tasks.jsonl".into(),
            mode: AnswerMode::Trace,
            verifier: None,
            kb: None,
            out_dir: "runs/grpo".into(),
            grpo: GrpoConfig::default(),
        }
    }

    /// The recipe's questions: your own question/answer tasks when the task file holds them
    /// (`Ok(Err(tasks))`), else the train-split world tasks (`Ok(Ok(tasks))`).
    #[allow(clippy::type_complexity)]
    pub fn load_questions(&self) -> Result<Result<Vec<world::Task>, Vec<crate::qa::QaTask>>, TrainError> {
        let text = std::fs::read_to_string(&self.tasks).map_err(|e| io_err(&self.tasks, "cannot read tasks", e))?;
        if !crate::qa::is_qa_file(&text) {
            return self.load_tasks().map(Ok);
        }
        if self.mode != AnswerMode::Direct {
            return Err(TrainError::Config {
                field: "mode".into(),
                message: format!(
                    "{} holds question/answer tasks, asked as `ascent eval` asks them: leave mode = \"direct\"",
                    self.tasks.display()
                ),
            });
        }
        let default = crate::qa::QaVerifier::from_name(self.verifier.as_deref().unwrap_or("numeric"))
            .map_err(|message| TrainError::Config { field: "verifier".into(), message })?;
        crate::qa::read_qa_tasks(&self.tasks, default).map(Err)
    }

    /// The train-split tasks of the recipe's task file.
    pub fn load_tasks(&self) -> Result<Vec<world::Task>, TrainError> {
        let all = crate::eval::read_tasks(&self.tasks)?;
        let train: Vec<world::Task> = all.into_iter().filter(|t| t.split == world::Split::Train).collect();
        if train.is_empty() {
            return Err(TrainError::Data(format!("{}: no task of the train split", self.tasks.display())));
        }
        Ok(train)
    }
}

/// Examples from a JSONL file ([`crate::sftdata`]) and, if named, replay documents from a text
/// file (separated by blank lines).
fn examples_and_replay(data: &Path, replay: Option<&Path>) -> Result<(Vec<Example>, Vec<String>), TrainError> {
    let text = std::fs::read_to_string(data).map_err(|e| io_err(data, "cannot read examples", e))?;
    let examples = crate::sftdata::examples_from_jsonl(&text, &data.display().to_string())?;
    let replay = match replay {
        Some(p) => crate::corpus::from_file(p)?,
        None => Vec::new(),
    };
    Ok((examples, replay))
}

/// Reads a TOML recipe; errors name the file.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, "cannot read config", e))?;
    toml::from_str(&text).map_err(|e| TrainError::Toml { path: path.to_path_buf(), message: e.to_string() })
}

/// A recipe as commented-free TOML (for `--print-config`).
pub fn to_toml<T: Serialize>(value: &T) -> String {
    toml::to_string(value).expect("recipes serialise to TOML")
}

impl SftRun {
    /// An example recipe with the default settings.
    pub fn example() -> Self {
        Self {
            init: "runs/pretrain/checkpoints/step-003200".into(),
            data: "data/sft.jsonl".into(),
            out_dir: "runs/sft".into(),
            replay: None,
            sft: SftConfig { pack: true, ..SftConfig::default() },
        }
    }

    /// The examples and replay documents the recipe names.
    pub fn load_data(&self) -> Result<(Vec<Example>, Vec<String>), TrainError> {
        examples_and_replay(&self.data, self.replay.as_deref())
    }
}

impl PrefRun {
    pub fn example() -> Self {
        Self {
            init: "runs/sft/checkpoints/step-000200".into(),
            reference: None,
            pairs: "data/pairs.jsonl".into(),
            out_dir: "runs/dpo".into(),
            prefs: PrefConfig::default(),
        }
    }

    /// The pairs the recipe names; every bad line is named.
    pub fn load_pairs(&self) -> Result<Vec<Pair>, TrainError> {
        let text = std::fs::read_to_string(&self.pairs).map_err(|e| io_err(&self.pairs, "cannot read pairs", e))?;
        read_pairs(&text, &self.pairs.display().to_string())
    }
}

/// Pairs from JSONL text (`path` names it in errors). Blank lines are skipped.
pub fn read_pairs(text: &str, path: &str) -> Result<Vec<Pair>, TrainError> {
    crate::sftdata::parse_jsonl(text, path, "pairs", |line| {
        serde_json::from_str::<Pair>(line)
            .map_err(|e| format!("not a pair ({e}); expected {{\"prompt\", \"chosen\", \"rejected\"}}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefs::Objective;

    #[test]
    fn recipes_round_trip_and_bad_ones_are_named() {
        for text in [to_toml(&SftRun::example()), to_toml(&PrefRun::example()), to_toml(&DistillRun::example())] {
            assert!(text.contains("out_dir = "), "{text}");
        }
        let back: PrefRun = toml::from_str(&to_toml(&PrefRun::example())).unwrap();
        assert_eq!(back, PrefRun::example());
        let back: DistillRun = toml::from_str(&to_toml(&DistillRun::example())).unwrap();
        assert_eq!(back, DistillRun::example());
        let orpo: PrefRun = toml::from_str(
            "init = \"a\"\npairs = \"p.jsonl\"\nout_dir = \"o\"\n[prefs]\nobjective = { kind = \"orpo\", lambda = 0.5 }\nsteps = 10\n",
        )
        .unwrap();
        assert_eq!((orpo.prefs.objective, orpo.prefs.steps), (Objective::Orpo { lambda: 0.5 }, 10));
        assert!(toml::from_str::<SftRun>("init = \"a\"\ndata = \"d\"\nout_dir = \"o\"\nstep = 3\n").is_err());
        let e = read_pairs(
            "{\"prompt\": \"Q\", \"chosen\": \" A\", \"rejected\": \" B\"}\n{\"prompt\": \"Q\"}\n",
            "p.jsonl",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("p.jsonl:2: not a pair"), "{e}");
        assert_eq!(
            read_pairs("{\"prompt\": \"Q\", \"chosen\": \" A\", \"rejected\": \" B\"}\n", "p").unwrap().len(),
            1
        );
    }
}
