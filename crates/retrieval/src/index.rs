//! [`Index`]: building, opening and searching the on-disk BM25 index (layout and replacement
//! protocol in the crate docs).

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::merge_policy::NoMergePolicy;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, Value, STORED, TEXT};
use tantivy::tokenizer::TokenStream;
use tantivy::{IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::RetrievalError;

/// Version of the on-disk layout (`meta.json`'s `format`); bumped when an index written by an
/// older build can no longer be read as is.
pub const FORMAT_VERSION: u32 = 1;

/// Our metadata file, at the top of the index folder.
const META_FILE: &str = "meta.json";
/// The tantivy index, a subfolder (tantivy writes its own `meta.json`).
const TANTIVY_DIR: &str = "tantivy";
/// Schema field holding the passage id.
const ID_FIELD: &str = "id";
/// Schema field holding the passage text.
const TEXT_FIELD: &str = "text";
/// Memory for the single indexing thread: the smallest corpora fit one segment; a bigger one
/// flushes several, merged into one after the commit.
const WRITER_MEMORY: usize = 64 << 20;

/// What `meta.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// [`FORMAT_VERSION`] of the build that wrote it.
    pub format: u32,
    /// SHA-256 (hex) of the corpus the passages came from, as given to [`Index::build`].
    pub corpus_sha256: String,
    /// Passages in the index (distinct, non-blank).
    pub passages: usize,
    /// Passages given to [`Index::build`], duplicates and blanks included.
    pub input_passages: usize,
    /// The tantivy that wrote the index (`tantivy::version_string()`), for the record.
    pub tantivy_version: String,
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The passage id: its position in the list given to [`Index::build`] (for duplicates, that
    /// of the first copy).
    pub id: usize,
    /// BM25 score; higher is better.
    pub score: f32,
    /// The passage text, as given.
    pub text: String,
}

/// Whether [`Index::open_or_build`] found a matching index or had to build one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Opened from disk.
    Opened,
    /// Built by this process.
    Built,
}

/// A BM25 index over passages, stored in a folder (see the crate docs for the layout).
/// Searching takes `&self` and may run from several threads at once.
pub struct Index {
    dir: PathBuf,
    meta: Meta,
    origin: Origin,
    index: tantivy::Index,
    reader: IndexReader,
    id: Field,
    text: Field,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("dir", &self.dir).field("meta", &self.meta).field("origin", &self.origin).finish()
    }
}

/// Splits corpus text (as in `corpus.txt`) into passages: runs of non-blank lines, separated by
/// one or more blank (empty or whitespace-only) lines; a passage's lines are joined with `\n`.
/// For a world's corpus this gives back `Knowledge::corpus_documents`, so ids agree either way.
pub fn passages_from_corpus(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        out.push(current.join("\n"));
    }
    out
}

fn schema() -> (Schema, Field, Field) {
    let mut builder = Schema::builder();
    let id = builder.add_u64_field(ID_FIELD, STORED);
    let text = builder.add_text_field(TEXT_FIELD, TEXT | STORED);
    (builder.build(), id, text)
}

/// A name for a sibling of `dir` that no other process or call uses: `.<name>.<what>-<pid>-<nanos>`.
fn sibling(dir: &Path, what: &str) -> Result<PathBuf, RetrievalError> {
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(|| RetrievalError::Invalid {
        dir: dir.to_path_buf(),
        reason: "the index folder needs a final path component that is valid UTF-8 (not `/`, `..` or empty)".into(),
    })?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    Ok(parent_of(dir).join(format!(".{name}.{what}-{}-{nanos}", std::process::id())))
}

fn parent_of(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks that `dir`, if it exists, is something a build may replace: a folder holding nothing
/// but `meta.json` and `tantivy/` (possibly a partial or corrupt index, never someone's data).
fn check_replaceable(dir: &Path) -> Result<bool, RetrievalError> {
    let md = match fs::symlink_metadata(dir) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(RetrievalError::io("inspect", dir)(e)),
    };
    if !md.is_dir() {
        return Err(RetrievalError::NotAnIndex { path: dir.to_path_buf(), reason: "it is not a folder".into() });
    }
    for entry in fs::read_dir(dir).map_err(RetrievalError::io("list", dir))? {
        let entry = entry.map_err(RetrievalError::io("list", dir))?;
        let name = entry.file_name();
        if name != META_FILE && name != TANTIVY_DIR {
            return Err(RetrievalError::NotAnIndex {
                path: dir.to_path_buf(),
                reason: format!("it holds {:?}, which an index never has", name),
            });
        }
    }
    Ok(true)
}

fn sync_dir(dir: &Path) -> Result<(), RetrievalError> {
    fs::File::open(dir).and_then(|f| f.sync_all()).map_err(RetrievalError::io("fsync", dir))
}

/// Removes a temporary build folder unless the build got as far as renaming it into place.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            // Best effort: a leftover `.<name>.building-*` folder is harmless and named as such.
            let _ = fs::remove_dir_all(p);
        }
    }
}

impl Index {
    /// Builds the index of `passages` at `dir`, replacing any index there, and returns it opened.
    ///
    /// Passage `i` gets id `i`; blank passages and repeats of an earlier passage are not indexed.
    /// The build happens in a sibling temporary folder that is renamed into place only when
    /// complete (see the crate docs), so an existing index is never left half-overwritten. The
    /// parent folder is created if missing. `corpus_sha256` identifies the corpus the passages
    /// came from; [`Index::open`] checks it.
    pub fn build(dir: &Path, passages: &[String], corpus_sha256: &str) -> Result<Index, RetrievalError> {
        let corpus_sha256 = corpus_sha256.trim();
        if corpus_sha256.is_empty() {
            return Err(RetrievalError::Invalid { dir: dir.to_path_buf(), reason: "the corpus hash is empty".into() });
        }
        check_replaceable(dir)?;
        let parent = parent_of(dir);
        fs::create_dir_all(&parent).map_err(RetrievalError::io("create", &parent))?;
        let tmp = sibling(dir, "building")?;
        fs::create_dir(&tmp).map_err(RetrievalError::io("create", &tmp))?;
        let mut guard = TempDir(Some(tmp.clone()));

        let indexed = write_tantivy(&tmp.join(TANTIVY_DIR), passages)?;
        let meta = Meta {
            format: FORMAT_VERSION,
            corpus_sha256: corpus_sha256.to_string(),
            passages: indexed,
            input_passages: passages.len(),
            tantivy_version: tantivy::version_string().to_string(),
        };
        let meta_path = tmp.join(META_FILE);
        let json = serde_json::to_string_pretty(&meta).map_err(|e| RetrievalError::Invalid {
            dir: dir.to_path_buf(),
            reason: format!("meta.json could not be serialised: {e}"),
        })?;
        let mut f = fs::File::create(&meta_path).map_err(RetrievalError::io("create", &meta_path))?;
        f.write_all(json.as_bytes())
            .and_then(|_| f.write_all(b"\n"))
            .and_then(|_| f.sync_all())
            .map_err(RetrievalError::io("write", &meta_path))?;
        drop(f);
        sync_dir(&tmp)?;

        // Swap into place. Re-check: another process may have put something there meanwhile.
        if check_replaceable(dir)? {
            let old = sibling(dir, "old")?;
            fs::rename(dir, &old).map_err(RetrievalError::io("move aside the previous index", dir))?;
            if let Err(e) = fs::rename(&tmp, dir) {
                // Put the previous index back; if that fails too it stays at `old`, named as such.
                let _ = fs::rename(&old, dir);
                return Err(RetrievalError::io("rename the new index into place", dir)(e));
            }
            guard.0 = None;
            // Best effort: the new index is complete and in place; a leftover `.old-*` is harmless.
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(&tmp, dir).map_err(RetrievalError::io("rename the new index into place", dir))?;
            guard.0 = None;
        }
        sync_dir(&parent)?;
        Index::open_checked(dir, corpus_sha256, Origin::Built)
    }

    /// Opens the index at `dir`, refusing one built from a corpus whose hash is not
    /// `expected_corpus_sha256`, one in another format, and a missing or unreadable one.
    pub fn open(dir: &Path, expected_corpus_sha256: &str) -> Result<Index, RetrievalError> {
        Index::open_checked(dir, expected_corpus_sha256.trim(), Origin::Opened)
    }

    /// Opens the index at `dir` if it exists and matches `corpus_sha256`; otherwise (missing,
    /// another corpus, another format, unreadable) builds it from `passages`. [`Index::origin`]
    /// says which happened. A folder that is not an index is never replaced (see
    /// [`RetrievalError::NotAnIndex`]).
    pub fn open_or_build(dir: &Path, passages: &[String], corpus_sha256: &str) -> Result<Index, RetrievalError> {
        match Index::open(dir, corpus_sha256) {
            Ok(index) => Ok(index),
            Err(_) => Index::build(dir, passages, corpus_sha256),
        }
    }

    fn open_checked(dir: &Path, expected: &str, origin: Origin) -> Result<Index, RetrievalError> {
        let corrupt = |reason: String| RetrievalError::Corrupt { dir: dir.to_path_buf(), reason };
        match fs::metadata(dir) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(RetrievalError::Missing { dir: dir.to_path_buf(), reason: "it is not a folder".into() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RetrievalError::Missing {
                    dir: dir.to_path_buf(),
                    reason: "the folder does not exist".into(),
                })
            }
            Err(e) => return Err(RetrievalError::io("inspect", dir)(e)),
        }
        let meta_path = dir.join(META_FILE);
        let bytes = match fs::read(&meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RetrievalError::Missing {
                    dir: dir.to_path_buf(),
                    reason: format!("{} does not exist", meta_path.display()),
                })
            }
            Err(e) => return Err(RetrievalError::io("read", &meta_path)(e)),
        };
        let meta: Meta = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(format!("{} is not valid index metadata: {e}", meta_path.display())))?;
        if meta.format != FORMAT_VERSION {
            return Err(RetrievalError::Format {
                dir: dir.to_path_buf(),
                expected: FORMAT_VERSION,
                found: meta.format,
                found_tantivy: meta.tantivy_version,
            });
        }
        if meta.corpus_sha256 != expected {
            return Err(RetrievalError::CorpusMismatch {
                dir: dir.to_path_buf(),
                expected: expected.to_string(),
                found: meta.corpus_sha256,
            });
        }
        let tantivy_dir = dir.join(TANTIVY_DIR);
        let index = tantivy::Index::open_in_dir(&tantivy_dir).map_err(|e| {
            corrupt(format!(
                "tantivy cannot open {} (written by {}, read by {}): {e}",
                tantivy_dir.display(),
                meta.tantivy_version,
                tantivy::version_string()
            ))
        })?;
        let schema = index.schema();
        let (Ok(id), Ok(text)) = (schema.get_field(ID_FIELD), schema.get_field(TEXT_FIELD)) else {
            return Err(corrupt(format!("{} lacks the `id` and `text` fields", tantivy_dir.display())));
        };
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(
            |e: tantivy::TantivyError| corrupt(format!("tantivy cannot read {}: {e}", tantivy_dir.display())),
        )?;
        let docs = reader.searcher().num_docs();
        if docs != meta.passages as u64 {
            return Err(corrupt(format!(
                "{} holds {docs} passages but meta.json says {}",
                tantivy_dir.display(),
                meta.passages
            )));
        }
        Ok(Index { dir: dir.to_path_buf(), meta, origin, index, reader, id, text })
    }

    /// The index folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What `meta.json` says.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Number of passages indexed (distinct, non-blank).
    pub fn len(&self) -> usize {
        self.meta.passages
    }

    /// Whether no passage is indexed.
    pub fn is_empty(&self) -> bool {
        self.meta.passages == 0
    }

    /// Whether this index was opened from disk or built by this process.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The distinct tokens of `query` under the passages' analyser, in order of appearance.
    fn query_terms(&self, query: &str) -> Result<Vec<Term>, RetrievalError> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.text)
            .map_err(RetrievalError::tantivy("tokenise a query for", &self.dir))?;
        let mut stream = analyzer.token_stream(query);
        let mut seen = HashSet::new();
        let mut terms = Vec::new();
        while stream.advance() {
            let token = &stream.token().text;
            if seen.insert(token.clone()) {
                terms.push(Term::from_field_text(self.text, token));
            }
        }
        Ok(terms)
    }

    /// The `k` passages that best match `query` by BM25, best first (ties: lower id first).
    ///
    /// The query is free text; no query syntax is interpreted (see the crate docs), so any
    /// string is accepted. A query with no word in it, or `k == 0`, gives no hits; passages
    /// that share no word with the query are never returned, so there may be fewer than `k`.
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<Hit>, RetrievalError> {
        let k = k.min(self.meta.passages);
        if k == 0 {
            return Ok(Vec::new());
        }
        let terms = self.query_terms(query)?;
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .into_iter()
            .map(|t| (Occur::Should, Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)) as Box<dyn Query>))
            .collect();
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(k).order_by_score())
            .map_err(RetrievalError::tantivy("search", &self.dir))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument =
                searcher.doc(address).map_err(RetrievalError::tantivy("read a passage of", &self.dir))?;
            let id = doc.get_first(self.id).and_then(|v| v.as_u64());
            let text = doc.get_first(self.text).and_then(|v| v.as_str());
            let (Some(id), Some(text)) = (id, text) else {
                return Err(RetrievalError::Corrupt {
                    dir: self.dir.clone(),
                    reason: format!("stored passage {address:?} lacks its id or text"),
                });
            };
            hits.push(Hit { id: id as usize, score, text: text.to_string() });
        }
        Ok(hits)
    }
}

/// Writes the tantivy index of `passages` into the new folder `dir`; returns how many were
/// indexed (distinct, non-blank). One indexing thread, no merges while writing, then every
/// segment merged into one, so the same passages give the same segment every time.
fn write_tantivy(dir: &Path, passages: &[String]) -> Result<usize, RetrievalError> {
    fs::create_dir(dir).map_err(RetrievalError::io("create", dir))?;
    let (schema, id, text) = schema();
    let index = tantivy::Index::create_in_dir(dir, schema).map_err(RetrievalError::tantivy("create", dir))?;
    let mut writer: IndexWriter =
        index.writer_with_num_threads(1, WRITER_MEMORY).map_err(RetrievalError::tantivy("open a writer for", dir))?;
    writer.set_merge_policy(Box::new(NoMergePolicy));
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, passage) in passages.iter().enumerate() {
        if passage.trim().is_empty() || !seen.insert(passage.as_str()) {
            continue;
        }
        let mut doc = TantivyDocument::default();
        doc.add_u64(id, i as u64);
        doc.add_text(text, passage);
        writer.add_document(doc).map_err(RetrievalError::tantivy("add a passage to", dir))?;
    }
    writer.commit().map_err(RetrievalError::tantivy("commit", dir))?;
    let segments = index.searchable_segment_ids().map_err(RetrievalError::tantivy("list the segments of", dir))?;
    if segments.len() > 1 {
        writer.merge(&segments).wait().map_err(RetrievalError::tantivy("merge the segments of", dir))?;
    }
    writer.garbage_collect_files().wait().map_err(RetrievalError::tantivy("delete merged files of", dir))?;
    writer.wait_merging_threads().map_err(RetrievalError::tantivy("finish writing", dir))?;
    Ok(seen.len())
}
