//! Writing a world or a knowledge base to disk ([`World::write`],
//! [`crate::KnowledgeBase::write`]), every file atomically.
//!
//! Layout of the output directory (the same for both):
//! - `corpus.txt`: the corpus ([`World::corpus`], [`crate::KnowledgeBase::corpus`])
//! - `kb.jsonl`: the knowledge ([`World::kb_jsonl`], [`crate::KnowledgeBase::kb_jsonl`])
//! - `tasks/train.jsonl`, `tasks/heldout.jsonl`: one [`crate::Task`] per line
//! - `world.json`: a [`WorldSummary`]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::tasks::{Family, Task};
use crate::world::{sha256_hex, Split, World};
use crate::WorldError;

/// Version of the on-disk layout in `world.json`.
pub const FORMAT_VERSION: u32 = 1;

/// Entity counts of a world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldSizes {
    /// Countries.
    pub countries: usize,
    /// Cities.
    pub cities: usize,
    /// Universities.
    pub universities: usize,
    /// Companies.
    pub companies: usize,
    /// Majors.
    pub majors: usize,
    /// People.
    pub people: usize,
    /// First-name pool.
    pub first_name_pool: usize,
    /// Last-name pool.
    pub last_name_pool: usize,
}

/// Entity and relation counts of a [`crate::KnowledgeBase`] (its `world.json` has these in
/// place of [`WorldSizes`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbSizes {
    /// The entity type whose entities are divided into train and held-out.
    pub split_type: String,
    /// Distinct subjects (one corpus document each per rendering).
    pub subjects: usize,
    /// Entities per type (subjects and objects, numbers included).
    pub entities: BTreeMap<String, usize>,
    /// Facts per relation.
    pub relations: BTreeMap<String, usize>,
}

/// Contents of `world.json`: what a report needs to identify the knowledge and its data, for a
/// generated [`World`] or an imported [`crate::KnowledgeBase`] alike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldSummary {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// The seed (the world's, or the knowledge base's split and rendering seed).
    pub seed: u64,
    /// Entity counts of a generated world; absent (and not written) for a knowledge base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<WorldSizes>,
    /// Renderings in `corpus.txt`.
    pub renderings: usize,
    /// The configured held-out fraction.
    pub heldout_fraction: f64,
    /// People per split (`train`, `heldout`); for a knowledge base, the entities of its split
    /// type per split.
    pub people_per_split: BTreeMap<String, usize>,
    /// Number of facts (lines of `kb.jsonl`).
    pub fact_count: usize,
    /// SHA-256 of `kb.jsonl`.
    pub knowledge_sha256: String,
    /// SHA-256 of `corpus.txt`.
    pub corpus_sha256: String,
    /// Bytes in `corpus.txt`.
    pub corpus_bytes: usize,
    /// Tokens in the corpus: `null` here; a caller with a tokenizer fills it in.
    pub corpus_tokens: Option<u64>,
    /// Task counts: split → family → count (every family listed, zeros included).
    pub tasks: BTreeMap<String, BTreeMap<String, usize>>,
    /// SHA-256 of each task file: split → hash.
    pub tasks_sha256: BTreeMap<String, String>,
    /// Entity and relation counts of a knowledge base; absent (and not written) for a world.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_base: Option<KbSizes>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WorldError + '_ {
    move |source| WorldError::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// then fsync of the directory. Readers see the old file or the new one, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WorldError> {
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| WorldError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        #[cfg(unix)]
        File::open(&dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

/// Tasks as JSON lines.
pub fn tasks_jsonl(tasks: &[Task]) -> Result<String, WorldError> {
    let mut s = String::new();
    for t in tasks {
        s.push_str(&serde_json::to_string(t)?);
        s.push('\n');
    }
    Ok(s)
}

/// The parts of a [`WorldSummary`] every source of knowledge has: hashes and counts of the
/// knowledge, the corpus and the tasks. `sizes` and `knowledge_base` are left empty for the
/// caller to fill.
pub(crate) fn summarise(
    seed: u64,
    renderings: usize,
    heldout_fraction: f64,
    people_per_split: BTreeMap<String, usize>,
    kb_jsonl: &str,
    corpus: &str,
    tasks: &[Task],
) -> Result<WorldSummary, WorldError> {
    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut hashes = BTreeMap::new();
    for split in [Split::Train, Split::Heldout] {
        let per: &mut BTreeMap<String, usize> = counts.entry(split.as_str().to_string()).or_default();
        for f in Family::ALL {
            per.insert(f.as_str().to_string(), 0);
        }
        let of_split: Vec<Task> = tasks.iter().filter(|t| t.split == split).cloned().collect();
        for t in &of_split {
            *per.entry(t.family.as_str().to_string()).or_default() += 1;
        }
        hashes.insert(split.as_str().to_string(), sha256_hex(tasks_jsonl(&of_split)?.as_bytes()));
    }
    Ok(WorldSummary {
        format: FORMAT_VERSION,
        seed,
        sizes: None,
        renderings,
        heldout_fraction,
        people_per_split,
        fact_count: kb_jsonl.lines().count(),
        knowledge_sha256: sha256_hex(kb_jsonl.as_bytes()),
        corpus_sha256: sha256_hex(corpus.as_bytes()),
        corpus_bytes: corpus.len(),
        corpus_tokens: None,
        tasks: counts,
        tasks_sha256: hashes,
        knowledge_base: None,
    })
}

/// Writes the files of the directory layout (see the module docs) under `dir`, each atomically,
/// `world.json` last so that its presence means the rest is complete.
pub(crate) fn write_files(
    dir: &Path,
    corpus: &str,
    kb_jsonl: &str,
    tasks: &[Task],
    summary: &WorldSummary,
) -> Result<(), WorldError> {
    let task_dir = dir.join("tasks");
    fs::create_dir_all(&task_dir).map_err(io_err(&task_dir))?;
    write_atomic(&dir.join("corpus.txt"), corpus.as_bytes())?;
    write_atomic(&dir.join("kb.jsonl"), kb_jsonl.as_bytes())?;
    for split in [Split::Train, Split::Heldout] {
        let of_split: Vec<Task> = tasks.iter().filter(|t| t.split == split).cloned().collect();
        write_atomic(&task_dir.join(format!("{}.jsonl", split.as_str())), tasks_jsonl(&of_split)?.as_bytes())?;
    }
    let mut json = serde_json::to_string_pretty(summary)?;
    json.push('\n');
    write_atomic(&dir.join("world.json"), json.as_bytes())
}

impl World {
    /// The summary of this world rendered `renderings` times (what `world.json` holds).
    pub fn summary(&self, renderings: usize) -> Result<WorldSummary, WorldError> {
        let corpus = self.corpus(renderings)?;
        let tasks = self.tasks();
        self.summary_of(renderings, &corpus, &tasks)
    }

    /// People per split (`train`, `heldout`), as `world.json` lists them.
    pub fn people_per_split(&self) -> BTreeMap<String, usize> {
        [Split::Train, Split::Heldout].into_iter().map(|s| (s.as_str().to_string(), self.people_in(s).len())).collect()
    }

    fn summary_of(&self, renderings: usize, corpus: &str, tasks: &[Task]) -> Result<WorldSummary, WorldError> {
        let c = &self.config;
        let mut summary = summarise(
            c.seed,
            renderings,
            c.heldout_fraction,
            self.people_per_split(),
            &self.kb_jsonl(),
            corpus,
            tasks,
        )?;
        summary.sizes = Some(WorldSizes {
            countries: self.countries.len(),
            cities: self.cities.len(),
            universities: self.universities.len(),
            companies: self.companies.len(),
            majors: self.majors.len(),
            people: self.people.len(),
            first_name_pool: c.first_name_pool,
            last_name_pool: c.last_name_pool,
        });
        Ok(summary)
    }

    /// Writes `corpus.txt`, `kb.jsonl`, `tasks/train.jsonl`, `tasks/heldout.jsonl` and
    /// `world.json` (last) under `dir`, each atomically. Same world and renderings ⇒ same bytes.
    pub fn write(&self, dir: &Path, renderings: usize) -> Result<WorldSummary, WorldError> {
        self.write_counted(dir, renderings, None)
    }

    /// [`World::write`], with `world.json`'s `corpus_tokens` counted by `count_tokens` (this
    /// crate has no tokenizer; the caller brings one).
    pub fn write_counted(
        &self,
        dir: &Path,
        renderings: usize,
        count_tokens: Option<&dyn Fn(&str) -> u64>,
    ) -> Result<WorldSummary, WorldError> {
        let corpus = self.corpus(renderings)?;
        let tasks = self.tasks();
        let mut summary = self.summary_of(renderings, &corpus, &tasks)?;
        summary.corpus_tokens = count_tokens.map(|count| count(&corpus));
        write_files(dir, &corpus, &self.kb_jsonl(), &tasks, &summary)?;
        Ok(summary)
    }
}
