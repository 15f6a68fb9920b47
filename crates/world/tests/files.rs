//! Writing worlds to disk and importing triples.

use world::{import_triples, World, WorldConfig, WorldError};

#[test]
fn write_produces_the_files_byte_identically() {
    let w = World::generate(&WorldConfig { seed: 11, ..WorldConfig::default() }).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = w.write(a.path(), 5).unwrap();
    let sb = World::generate(&WorldConfig { seed: 11, ..WorldConfig::default() }).unwrap().write(b.path(), 5).unwrap();
    assert_eq!(sa, sb);
    let files = ["corpus.txt", "kb.jsonl", "tasks/train.jsonl", "tasks/heldout.jsonl", "world.json"];
    for f in files {
        let x = std::fs::read(a.path().join(f)).unwrap();
        let y = std::fs::read(b.path().join(f)).unwrap();
        assert!(!x.is_empty(), "{f} is empty");
        assert_eq!(x, y, "{f} differs");
    }
    // Writing again over the same directory gives the same bytes and leaves no temp files.
    let before = std::fs::read(a.path().join("world.json")).unwrap();
    w.write(a.path(), 5).unwrap();
    assert_eq!(std::fs::read(a.path().join("world.json")).unwrap(), before);
    let mut entries: Vec<String> =
        std::fs::read_dir(a.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    entries.sort();
    assert_eq!(entries, ["corpus.txt", "kb.jsonl", "tasks", "world.json"]);

    // world.json content.
    let j: serde_json::Value = serde_json::from_slice(&before).unwrap();
    assert_eq!(j["seed"], 11);
    assert_eq!(j["fact_count"], w.facts().len());
    assert_eq!(j["knowledge_sha256"], w.knowledge_sha256());
    assert_eq!(j["corpus_sha256"], w.corpus_sha256(5).unwrap());
    assert!(j["corpus_tokens"].is_null());
    assert_eq!(j["sizes"]["people"], 200);
    let kb = std::fs::read_to_string(a.path().join("kb.jsonl")).unwrap();
    assert_eq!(world::sha256_hex(kb.as_bytes()), w.knowledge_sha256());
    let train = std::fs::read_to_string(a.path().join("tasks/train.jsonl")).unwrap();
    let n: u64 = j["tasks"]["train"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(train.lines().count() as u64, n);
    assert_eq!(j["tasks"]["heldout"].as_object().unwrap().len(), 7);
    assert_eq!(j["tasks_sha256"]["train"], world::sha256_hex(train.as_bytes()));

    // Another rendering: same knowledge, other corpus.
    let c = tempfile::tempdir().unwrap();
    let sc = w.write(c.path(), 1).unwrap();
    assert_eq!(sc.knowledge_sha256, sa.knowledge_sha256);
    assert_ne!(sc.corpus_sha256, sa.corpus_sha256);
    assert_eq!(sc.tasks_sha256, sa.tasks_sha256);
}

#[test]
fn triples_round_trip() {
    let w = World::generate(&WorldConfig::default()).unwrap();
    assert_eq!(import_triples(&w.kb_jsonl()).unwrap(), w.facts());
    let plain = "{\"subject\":\"Ada\",\"relation\":\"friend\",\"object\":\"Bo\"}\n\n";
    let facts = import_triples(plain).unwrap();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].object, "Bo");
    // Imported facts feed the trace checker.
    let kb = world::KnowledgeIndex::new(&facts);
    let c = world::verify_trace(
        &kb,
        &format!("{}\nAnswer: Bo", world::fact_sentence(&facts[0])),
        world::Verifier::Name,
        "Bo",
    );
    assert!(c.all_correct(), "{c:?}");
}

#[test]
fn triples_report_bad_lines_by_number() {
    let text = [
        r#"{"subject":"A","relation":"r","object":"B"}"#,
        r#"{"subject":"A","relation":"r","object":"C"}"#,
        r#"{"subject":"A","relation":"r"}"#,
        "",
        r#"{"subject":"A","relation":"r","object":5}"#,
        r#"["A","r","B"]"#,
        "this is not json",
        r#"{"subject":"A","relation":"r","object":"B","colour":"red"}"#,
        r#"{"subject":" ","relation":"r","object":"B","subject_type":"person"}"#,
    ]
    .join("\n");
    let err = import_triples(&text).unwrap_err();
    let WorldError::Import(lines) = &err else { panic!("{err:?}") };
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[0], "line 3: missing field `object`");
    assert_eq!(lines[1], "line 5: field `object` must be a string");
    assert_eq!(lines[2], "line 6: not a JSON object");
    assert!(lines[3].starts_with("line 7: not JSON"), "{}", lines[3]);
    assert_eq!(lines[4], "line 8: unknown field `colour`");
    assert_eq!(lines[5], "line 9: field `subject` is empty");
    let msg = err.to_string();
    assert!(msg.contains("line 3: missing field `object`; line 5"), "{msg}");
}

#[test]
fn heldout_questions_and_traces_are_not_in_training_data_and_leaks_are_caught() {
    let w = world::World::generate(&world::WorldConfig { seed: 5, people: 60, ..Default::default() }).unwrap();
    for r in [1, 5] {
        let report = w.decontamination(r).unwrap();
        assert!(report.heldout_tasks > 0 && report.patterns == 3 * report.heldout_tasks);
        assert!(
            report.is_clean(),
            "a generated world leaks held-out tasks: {:?}",
            &report.hits[..report.hits.len().min(5)]
        );
    }
    // Plant a held-out question in the corpus and a held-out trace (reflowed onto one line) in
    // the train tasks: both must be found, with the task named.
    let heldout = w.tasks_in(world::Split::Heldout);
    let (q, t) = (&heldout[3], &heldout[10]);
    let mut sources = w.training_sources(1).unwrap();
    sources[0].1.push_str(&format!("\n\n{}\n", q.question.to_uppercase()));
    sources[1].1.push_str(&format!("\n\n{}\n", t.trace.replace('\n', " ")));
    let report = world::decontaminate(&heldout, &sources);
    let found: Vec<(&str, &str, &str)> =
        report.hits.iter().map(|h| (h.task_id.as_str(), h.what, h.source.as_str())).collect();
    assert!(found.contains(&(q.id.as_str(), "question", "corpus.txt")), "{found:?}");
    assert!(found.contains(&(t.id.as_str(), "trace", "tasks/train.jsonl")), "{found:?}");
}
