//! Retrieval over the knowledge corpus: a BM25 index ([`Index`]) built once per corpus and kept
//! on disk, and the prompt format that puts retrieved passages before a question
//! ([`prompt_with_passages`]).
//!
//! # Data flow
//!
//! ```text
//! corpus (Knowledge::corpus_documents(R), or corpus.txt split by passages_from_corpus)
//!   │  one passage per document; id = its position in that list; identical passages and
//!   │  blank ones are dropped (the first copy keeps its id)
//!   ▼
//! Index::build(dir, passages, corpus_sha256)       (tantivy, BM25; built in a sibling temporary
//!   │                                               folder, then renamed into place)
//!   ▼
//! dir/ ── Index::open(dir, corpus_sha256) ── refuses another corpus's index
//!   │
//!   ▼
//! Index::search(question, k) ──► Vec<Hit { id, score, text }>, best first
//!   │
//!   ▼
//! prompt_with_passages(prompt, hits) ──► "Passage: ...\n" per hit, "\n", then the prompt
//! ```
//!
//! # On-disk layout
//!
//! ```text
//! dir/
//!   meta.json   {"format": 1, "corpus_sha256": "<hex>", "passages": N, "input_passages": M,
//!                "tantivy_version": "tantivy v0.27.0, index_format v7"}
//!   tantivy/    the tantivy index (its own meta.json, .managed.json and one segment's files);
//!               schema: `id` (u64, stored: the passage id) and `text` (tokenised with
//!               tantivy's `default` analyser: split on non-alphanumerics, lowercased; stored)
//! ```
//!
//! `passages` counts the passages indexed (after dropping duplicates and blanks),
//! `input_passages` the passages given. The folder is replaced as a whole: a build writes a
//! sibling `.<name>.building-<pid>-<nanos>/`, fsyncs it, moves an existing index aside to
//! `.<name>.old-<pid>-<nanos>/`, renames the new one into place and deletes the old one. At every
//! moment `dir` is either a complete index or absent (a crash between the two renames leaves it
//! absent, which [`Index::open_or_build`] repairs by building); it is never a mix of two. A build
//! only replaces a folder that holds nothing but `meta.json` and `tantivy/`, so pointing it at
//! the wrong folder is an error, not a deletion.
//!
//! # Scoring
//!
//! A query is free text: it is tokenised by the same analyser as the passages and every distinct
//! token becomes an optional term (a BM25 sum over the terms, tantivy's k1 = 1.2, b = 0.75). No
//! query syntax is interpreted, so punctuation, quotes, `AND`, `-` or `field:` in a question are
//! just text. Ties are broken by passage order (lower id first), so a search is deterministic
//! and the same after reopening.

mod error;
mod index;
mod prompt;

pub use error::RetrievalError;
pub use index::{passages_from_corpus, Hit, Index, Meta, Origin, FORMAT_VERSION};
pub use prompt::{prompt_with_passages, PASSAGE_PREFIX};
