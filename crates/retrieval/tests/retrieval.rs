//! The BM25 index over a generated world's corpus: recall questions find their person's
//! biography, results survive reopening, and bad or stale indexes are refused or rebuilt.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use retrieval::{passages_from_corpus, prompt_with_passages, Hit, Index, Origin, RetrievalError, PASSAGE_PREFIX};
use world::{sha256_hex, Family, Split, World, WorldConfig};

struct Fixture {
    world: World,
    docs: Vec<String>,
    sha: String,
}

fn fixture() -> Fixture {
    let world = World::generate(&WorldConfig { people: 48, ..Default::default() }).expect("world");
    let renderings = world.config.renderings;
    let docs = world.corpus_documents(renderings).expect("corpus documents");
    let sha = world.corpus_sha256(renderings).expect("corpus hash");
    Fixture { world, docs, sha }
}

/// Person index of a task id `recall/<kind>/p0012`.
fn person_of(task_id: &str) -> usize {
    let last = task_id.rsplit('/').next().expect("task id has a person");
    last.strip_prefix('p').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("bad task id {task_id}"))
}

/// Every biography of person `i`: rendering pass `r` holds all subjects, people first.
fn biographies(f: &Fixture, i: usize) -> HashSet<&str> {
    let per_pass = f.docs.len() / f.world.config.renderings;
    (0..f.world.config.renderings).map(|r| f.docs[r * per_pass + i].as_str()).collect()
}

fn heldout_recall(f: &Fixture) -> Vec<(String, usize)> {
    f.world
        .tasks_in(Split::Heldout)
        .into_iter()
        .filter(|t| t.family == Family::Recall)
        .map(|t| (t.question.clone(), person_of(&t.id)))
        .collect()
}

fn same_hits(a: &[Hit], b: &[Hit]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| x.id == y.id && x.text == y.text && x.score.to_bits() == y.score.to_bits())
}

#[test]
fn heldout_recall_questions_find_their_persons_biography_in_the_top_3() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::build(&tmp.path().join("index"), &f.docs, &f.sha).unwrap();
    assert_eq!(index.origin(), Origin::Built);
    let tasks = heldout_recall(&f);
    assert!(tasks.len() >= 100, "only {} held-out recall tasks", tasks.len());
    let (mut top1, mut top3) = (0, 0);
    let mut misses = Vec::new();
    for (question, person) in &tasks {
        // The biography names the person's full name.
        let name = f.world.people[*person].full_name();
        assert!(question.contains(&name), "{question} does not name {name}");
        let bios = biographies(&f, *person);
        let hits = index.search(question, 3).unwrap();
        assert!(hits.len() <= 3);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "hits not best first: {hits:?}");
        if hits.first().is_some_and(|h| bios.contains(h.text.as_str())) {
            top1 += 1;
        }
        if hits.iter().any(|h| bios.contains(h.text.as_str())) {
            top3 += 1;
        } else {
            misses.push(question.clone());
        }
    }
    let n = tasks.len();
    println!("held-out recall: own biography at rank 1 for {top1}/{n}, in the top 3 for {top3}/{n}");
    println!("misses: {misses:?}");
    assert!(top3 * 100 >= 95 * n, "own biography in the top 3 for only {top3}/{n}; misses: {misses:?}");
}

#[test]
fn reopening_gives_identical_results() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested").join("index");
    let built = Index::build(&dir, &f.docs, &f.sha).unwrap();
    let questions: Vec<String> = heldout_recall(&f).into_iter().map(|(q, _)| q).take(60).collect();
    let before: Vec<Vec<Hit>> = questions.iter().map(|q| built.search(q, 5).unwrap()).collect();
    let meta = built.meta().clone();
    drop(built);

    let opened = Index::open(&dir, &f.sha).unwrap();
    assert_eq!(opened.origin(), Origin::Opened);
    assert_eq!(opened.meta(), &meta);
    for (q, hits) in questions.iter().zip(&before) {
        assert!(same_hits(hits, &opened.search(q, 5).unwrap()), "{q}: results changed after reopening");
    }
    drop(opened);

    let again = Index::open_or_build(&dir, &f.docs, &f.sha).unwrap();
    assert_eq!(again.origin(), Origin::Opened, "a matching index is reused, not rebuilt");
    // A second build from the same passages gives the same results too.
    let other = Index::build(&tmp.path().join("other"), &f.docs, &f.sha).unwrap();
    for (q, hits) in questions.iter().zip(&before) {
        assert!(same_hits(hits, &again.search(q, 5).unwrap()), "{q}: open_or_build changed results");
        assert!(same_hits(hits, &other.search(q, 5).unwrap()), "{q}: a second build changed results");
    }
}

#[test]
fn corpus_hash_mismatch_is_refused_and_open_or_build_rebuilds() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    Index::build(&dir, &f.docs, &f.sha).unwrap();
    let other_sha = sha256_hex(b"another corpus");
    let err = Index::open(&dir, &other_sha).unwrap_err();
    assert!(matches!(err, RetrievalError::CorpusMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    for needle in [dir.to_string_lossy().as_ref(), f.sha.as_str(), other_sha.as_str(), "build it again"] {
        assert!(msg.contains(needle), "message lacks {needle:?}: {msg}");
    }

    // Another corpus: open_or_build replaces the stale index.
    let other_docs: Vec<String> = f.docs[..10].to_vec();
    let rebuilt = Index::open_or_build(&dir, &other_docs, &other_sha).unwrap();
    assert_eq!(rebuilt.origin(), Origin::Built);
    assert_eq!(rebuilt.meta().corpus_sha256, other_sha);
    assert_eq!(rebuilt.len(), 10);
    assert!(matches!(Index::open(&dir, &f.sha), Err(RetrievalError::CorpusMismatch { .. })));
}

#[test]
fn missing_or_corrupt_indexes_are_clear_errors() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    let has_dir = |msg: &str| assert!(msg.contains(&*dir.to_string_lossy()), "message does not name the folder: {msg}");

    // No folder.
    let err = Index::open(&dir, &f.sha).unwrap_err();
    assert!(matches!(err, RetrievalError::Missing { .. }), "{err:?}");
    has_dir(&err.to_string());
    assert!(err.to_string().contains("does not exist"), "{err}");

    // A corrupted meta.json.
    Index::build(&dir, &f.docs, &f.sha).unwrap();
    fs::write(dir.join("meta.json"), "{\"format\": 1, \"corpus_sha2").unwrap();
    let err = Index::open(&dir, &f.sha).unwrap_err();
    assert!(matches!(err, RetrievalError::Corrupt { .. }), "{err:?}");
    has_dir(&err.to_string());
    assert!(err.to_string().contains("meta.json"), "{err}");

    // A missing meta.json.
    fs::remove_file(dir.join("meta.json")).unwrap();
    let err = Index::open(&dir, &f.sha).unwrap_err();
    assert!(matches!(err, RetrievalError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("meta.json"), "{err}");

    // A damaged tantivy index under a good meta.json.
    Index::build(&dir, &f.docs, &f.sha).unwrap();
    fs::remove_file(dir.join("tantivy").join("meta.json")).unwrap();
    let err = Index::open(&dir, &f.sha).unwrap_err();
    assert!(matches!(err, RetrievalError::Corrupt { .. }), "{err:?}");
    has_dir(&err.to_string());

    // A meta.json of another format.
    Index::build(&dir, &f.docs, &f.sha).unwrap();
    let meta = fs::read_to_string(dir.join("meta.json")).unwrap().replace("\"format\": 1", "\"format\": 99");
    fs::write(dir.join("meta.json"), meta).unwrap();
    let err = Index::open(&dir, &f.sha).unwrap_err();
    assert!(matches!(err, RetrievalError::Format { found: 99, .. }), "{err:?}");

    // open_or_build repairs all of these.
    let repaired = Index::open_or_build(&dir, &f.docs, &f.sha).unwrap();
    assert_eq!(repaired.origin(), Origin::Built);
    assert!(Index::open(&dir, &f.sha).is_ok());

    // An empty corpus hash cannot make an index.
    let err = Index::build(&tmp.path().join("x"), &f.docs, " ").unwrap_err();
    assert!(matches!(err, RetrievalError::Invalid { .. }), "{err:?}");
}

fn siblings(parent: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(parent).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_rebuild_replaces_the_index_whole_and_never_touches_a_foreign_folder() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    let people_docs = f.docs[..48].to_vec();
    let place_docs = f.docs[48..f.docs.len() / f.world.config.renderings].to_vec();
    let (sha_a, sha_b) = (sha256_hex(b"a"), sha256_hex(b"b"));

    let a = Index::build(&dir, &people_docs, &sha_a).unwrap();
    let question = heldout_recall(&f)[0].0.clone();
    assert!(!a.search(&question, 3).unwrap().is_empty());
    drop(a);

    let b = Index::build(&dir, &place_docs, &sha_b).unwrap();
    assert_eq!(b.meta().corpus_sha256, sha_b);
    assert_eq!(b.len(), place_docs.len());
    // Nothing of the old index is left: the question names a person, whom no description names
    // as a subject, and every hit is one of the new passages.
    let place_set: HashSet<&str> = place_docs.iter().map(String::as_str).collect();
    for hit in b.search(&question, 10).unwrap() {
        assert!(place_set.contains(hit.text.as_str()), "stale passage {hit:?}");
    }
    assert!(matches!(Index::open(&dir, &sha_a), Err(RetrievalError::CorpusMismatch { .. })));
    // The same results as a fresh build in an empty folder.
    let fresh = Index::build(&tmp.path().join("fresh"), &place_docs, &sha_b).unwrap();
    for q in ["Where is Lormet?", &question, "founded headquarters"] {
        assert!(same_hits(&b.search(q, 5).unwrap(), &fresh.search(q, 5).unwrap()), "{q}");
    }
    // No temporary or old folder is left behind.
    assert_eq!(siblings(tmp.path()), ["fresh", "index"]);
    assert_eq!(siblings(&dir), ["meta.json", "tantivy"]);

    // A folder with other things in it is refused and left as it was.
    let foreign = tmp.path().join("data");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("corpus.txt"), "precious").unwrap();
    for result in [Index::build(&foreign, &place_docs, &sha_b), Index::open_or_build(&foreign, &place_docs, &sha_b)] {
        let err = result.unwrap_err();
        assert!(matches!(err, RetrievalError::NotAnIndex { .. }), "{err:?}");
        assert!(err.to_string().contains("corpus.txt"), "{err}");
    }
    assert_eq!(fs::read_to_string(foreign.join("corpus.txt")).unwrap(), "precious");
    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    assert!(matches!(Index::build(&file, &place_docs, &sha_b), Err(RetrievalError::NotAnIndex { .. })));
}

#[test]
fn queries_full_of_punctuation_do_not_error() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::build(&tmp.path().join("index"), &f.docs, &f.sha).unwrap();
    let name = f.world.people[0].full_name();
    let long = "?".repeat(10_000) + &name;
    let named = [
        format!("In which country was {name} born?"),
        format!("\"{name}\"'s (mentor): who?!"),
        format!("text:{name} AND NOT -{name}^3~2*"),
        format!("[{name} TO }}] {{}} \\ / | && || ! + -"),
        format!("'{name}' \"unterminated"),
        long,
    ];
    for q in &named {
        let hits = index.search(q, 3).unwrap_or_else(|e| panic!("{q:?}: {e}"));
        assert!(!hits.is_empty(), "{q:?} found nothing");
    }
    for q in ["", "   ", "?", "?!.,;:'\"()[]{}<>", "\\", "***", "- + ^ ~", "\u{0}\u{7f}"] {
        assert!(index.search(q, 3).unwrap().is_empty(), "{q:?} should find nothing");
    }
    for q in ["Ünïcödé 名字 🚀 ?", "AND", "OR NOT"] {
        index.search(q, 3).unwrap_or_else(|e| panic!("{q:?}: {e}"));
    }
    assert!(index.search(&named[0], 0).unwrap().is_empty());
    assert!(index.search(&named[0], usize::MAX).unwrap().len() <= index.len());
}

#[test]
fn passages_come_from_corpus_text_and_duplicates_keep_the_first_id() {
    let f = fixture();
    let corpus = f.world.corpus(f.world.config.renderings).unwrap();
    assert_eq!(passages_from_corpus(&corpus), f.docs);
    assert_eq!(passages_from_corpus("a\nb\n\n\n  \nc\r\n\r\nd"), ["a\nb", "c", "d"]);
    assert!(passages_from_corpus("\n \n").is_empty());

    let passages: Vec<String> =
        ["alpha beta", "gamma", "", "alpha beta", "  ", "delta gamma"].map(String::from).to_vec();
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::build(&tmp.path().join("index"), &passages, "h").unwrap();
    assert_eq!((index.len(), index.meta().input_passages), (3, 6));
    let hits = index.search("beta", 10).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [0]);
    let hits = index.search("gamma", 10).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<HashSet<_>>(), HashSet::from([1, 5]));
    // An empty corpus makes an empty index that finds nothing.
    let empty = Index::build(&tmp.path().join("empty"), &[], "h").unwrap();
    assert!(empty.is_empty() && empty.search("alpha", 3).unwrap().is_empty());
}

#[test]
fn prompt_puts_passages_before_the_question_deterministically() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::build(&tmp.path().join("index"), &f.docs, &f.sha).unwrap();
    let (question, _) = heldout_recall(&f).remove(0);
    let prompt = format!("Question: {question}\nAnswer:");
    let hits = index.search(&question, 3).unwrap();
    assert_eq!(hits.len(), 3);
    let text = prompt_with_passages(&prompt, &hits);
    assert_eq!(text, prompt_with_passages(&prompt, &index.search(&question, 3).unwrap()));
    let lines: Vec<&str> = text.lines().collect();
    for (line, hit) in lines.iter().zip(&hits) {
        assert_eq!(*line, format!("{PASSAGE_PREFIX}{}", hit.text));
    }
    assert_eq!(lines[3], "");
    assert!(text.ends_with(&format!("\n\n{prompt}")), "{text}");
}
