//! The ladder report's JSON contract and its markdown and HTML renderings.

use std::collections::BTreeMap;

use report::{wilson_interval, LadderReport, RecallProbe, ReportError, RungReport, Seeds, WorldInfo, FORMAT_VERSION};

const KNOWLEDGE: &str = "5f2b9c0e7a41d3386e0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";
const CORPUS: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const CORPUS_AUGMENTED: &str = "0f0e0d0c0b0a09080706050403020100ffeeddccbbaa99887766554433221100";

fn rung(name: &str, lever: &str, corpus: &str, skill: f64) -> RungReport {
    let families = ["recall", "two_hop", "three_hop", "compare", "arithmetic", "parity", "inverse"];
    let mut accuracy = BTreeMap::new();
    let mut accuracy_ci95 = BTreeMap::new();
    let mut tasks = BTreeMap::new();
    for (i, f) in families.iter().enumerate() {
        let n = 120;
        let correct = ((skill - 0.05 * i as f64).clamp(0.0, 1.0) * n as f64).round() as usize;
        accuracy.insert(f.to_string(), correct as f64 / n as f64);
        accuracy_ci95.insert(f.to_string(), wilson_interval(correct, n));
        tasks.insert(f.to_string(), n);
    }
    let mean_accuracy = accuracy.values().sum::<f64>() / accuracy.len() as f64;
    RungReport {
        name: name.into(),
        lever: lever.into(),
        knowledge_sha256: KNOWLEDGE.into(),
        corpus_sha256: corpus.into(),
        renderings: if corpus == CORPUS { 1 } else { 4 },
        model: "4 layers, width 128, RMSNorm, SwiGLU, RoPE".into(),
        params: 1_234_567,
        answer_mode: "direct".into(),
        accuracy,
        accuracy_ci95,
        tasks,
        accuracy_by_hops: BTreeMap::from([("1".into(), skill), ("2".into(), skill * 0.8), ("3".into(), skill * 0.6)]),
        mean_accuracy,
        recall_probe: RecallProbe { train: 0.95, heldout: 0.94 },
        train_tokens: 2_050_000,
        flops: 1.23e13,
        seconds: 42.5,
        reused: false,
        extra: BTreeMap::new(),
        seeds: None,
    }
}

fn sample() -> LadderReport {
    let mut schedule = rung("schedule", "warmup + cosine instead of constant LR", CORPUS_AUGMENTED, 0.62);
    schedule.reused = true;
    schedule.extra.insert("warmup_steps".into(), serde_json::json!(100));
    LadderReport {
        format: FORMAT_VERSION,
        preset: "smoke".into(),
        version: "0.1.0".into(),
        world: WorldInfo {
            seed: 42,
            facts: 1234,
            knowledge_sha256: KNOWLEDGE.into(),
            corpus_sha256: CORPUS.into(),
            corpus_tokens: 250_000,
            people: BTreeMap::from([("train".into(), 80), ("heldout".into(), 20)]),
            source: "generated".into(),
        },
        setup: vec!["world: 100 people, 1234 facts".into(), "budget: 2M tokens per rung".into()],
        rungs: vec![
            rung("baseline", "single rendering, plain transformer", CORPUS, 0.35),
            rung("augmentation", "each fact rendered 4 ways", CORPUS_AUGMENTED, 0.55),
            schedule,
        ],
        total_seconds: 131.0,
        machine: "2 threads, cpu backend".into(),
    }
}

#[test]
fn json_round_trip() {
    let r = sample();
    let json = r.to_json();
    assert!(json.ends_with("}\n"), "pretty JSON with a trailing newline");
    assert_eq!(LadderReport::from_json(&json).unwrap(), r);
}

#[test]
fn json_has_stable_field_names() {
    let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
    assert_eq!(v["format"], 1);
    assert_eq!(v["world"]["seed"], 42);
    assert_eq!(v["world"]["facts"], 1234);
    assert_eq!(v["world"]["knowledge_sha256"], KNOWLEDGE);
    assert_eq!(v["world"]["corpus_sha256"], CORPUS);
    assert_eq!(v["world"]["corpus_tokens"], 250_000);
    let rungs = v["rungs"].as_array().unwrap();
    assert_eq!(rungs.len(), 3);
    for r in rungs {
        assert!(r["name"].is_string());
        assert_eq!(r["knowledge_sha256"], KNOWLEDGE);
        assert!(r["corpus_sha256"].is_string());
        assert!(r["accuracy"]["two_hop"].is_f64());
        assert!(r["recall_probe"]["train"].is_f64());
        assert!(r["recall_probe"]["heldout"].is_f64());
        assert!(r["train_tokens"].is_u64());
        assert!(r["flops"].is_f64());
        assert!(r["seconds"].is_f64());
    }
}

#[test]
fn unknown_fields_are_accepted_and_extra_is_optional() {
    let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
    v["future_top_level"] = serde_json::json!({"anything": [1, 2]});
    v["world"]["future_world_field"] = serde_json::json!("x");
    v["rungs"][0]["future_rung_field"] = serde_json::json!(3.5);
    v["rungs"][0]["recall_probe"]["future_probe_field"] = serde_json::json!(true);
    v["rungs"][1].as_object_mut().unwrap().remove("extra");
    let r = LadderReport::from_json(&v.to_string()).unwrap();
    assert_eq!(r.rungs.len(), 3);
    assert!(r.rungs[1].extra.is_empty());
}

#[test]
fn non_finite_numbers_survive_as_nan() {
    let mut r = sample();
    r.rungs[0].mean_accuracy = f64::NAN;
    r.rungs[0].accuracy.insert("parity".into(), f64::NAN);
    let back = LadderReport::from_json(&r.to_json()).unwrap();
    assert!(back.rungs[0].mean_accuracy.is_nan());
    assert!(back.rungs[0].accuracy["parity"].is_nan());
    assert!(back.to_markdown().contains("n/a"));
}

#[test]
fn other_format_versions_are_refused_by_name() {
    let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
    v["format"] = serde_json::json!(2);
    match LadderReport::from_json(&v.to_string()) {
        Err(ReportError::UnsupportedFormat { found: 2, supported: 1 }) => {}
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
    assert!(matches!(LadderReport::from_json("not json"), Err(ReportError::Json(_))));
}

/// The rows of the markdown table whose header starts with `| rung | lever |`.
fn accuracy_rows(md: &str) -> Vec<&str> {
    let lines: Vec<&str> = md.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("| rung | lever |")).expect("accuracy table");
    lines[start + 2..].iter().take_while(|l| l.starts_with('|')).copied().collect()
}

#[test]
fn markdown_has_one_row_per_rung_and_the_numbers() {
    let r = sample();
    let md = r.to_markdown();
    let rows = accuracy_rows(&md);
    assert_eq!(rows.len(), r.rungs.len());
    for (row, rung) in rows.iter().zip(&r.rungs) {
        assert!(row.starts_with(&format!("| {}", rung.name)), "{row}");
    }
    let header = md.lines().find(|l| l.starts_with("| rung | lever |")).unwrap();
    let order = ["recall", "two_hop", "three_hop", "compare", "arithmetic", "parity", "inverse"];
    let positions: Vec<usize> = order.iter().map(|f| header.find(&format!("| {f} |")).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "families in display order: {header}");
    assert!(rows[0].contains("35.0 [27–44]"), "accuracy with its interval: {}", rows[0]);
    assert!(rows[1].contains("+20.0"), "Δ mean in signed points: {}", rows[1]);
    assert!(rows[0].contains("2.05M") && rows[0].contains("1.2e13") && rows[0].contains("95.0 / 94.0"));
    assert!(rows[2].contains("schedule (reused)"));
    assert!(md.contains("identical on every rung"));
    assert!(md.contains(KNOWLEDGE), "full knowledge hash in the details line");
    assert!(md.contains("Corpus text changes from the rung before on: augmentation."));
    assert!(md.contains("| rung | 1 hop | 2 hops | 3 hops |"));
    assert!(md.contains("warmup_steps = 100"));
    assert!(md.contains("- budget: 2M tokens per rung"));
}

#[test]
fn markdown_flags_a_differing_knowledge_hash() {
    let mut r = sample();
    r.rungs[1].knowledge_sha256 = "ffff".repeat(16);
    let md = r.to_markdown();
    assert!(!md.contains("identical on every rung"));
    let flag = md.lines().find(|l| l.starts_with("**Knowledge hash differs")).expect("bold flag line");
    assert!(flag.contains("augmentation") && !flag.contains("baseline"), "{flag}");
    assert!(md.contains("**ffffffffffff**"), "the differing hash is bold in the table");
}

#[test]
fn unknown_families_follow_the_known_ones() {
    let mut r = sample();
    r.rungs[0].accuracy.insert("analogy".into(), 0.5);
    r.rungs[0].accuracy.remove("compare");
    let families = r.families();
    assert_eq!(families.last().unwrap(), "analogy");
    assert!(families.contains(&"compare".to_string()), "present on another rung");
    let md = r.to_markdown();
    assert!(accuracy_rows(&md)[0].contains("| – |"), "a family missing on a rung shows a dash");
}

#[test]
fn html_is_self_contained_with_a_legend_entry_per_rung_and_escapes_text() {
    let mut r = sample();
    r.rungs[2].name = "<b>".into();
    r.setup.push("a & b \"quoted\"".into());
    let html = r.to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "no script needed");
    assert!(!html.contains(" src=") && !html.contains(" href=") && !html.contains("<link"), "no external asset");
    assert!(!html.contains("<b>"), "a rung name is escaped everywhere");
    assert!(html.contains("&lt;b&gt;"));
    assert!(html.contains("a &amp; b &quot;quoted&quot;"));

    let start = html.find("<svg").expect("an inline svg");
    let end = html[start..].find("</svg>").unwrap() + start;
    let bars = &html[start..end];
    // Plotters writes one <text> element per label: `<text x=".." ...>\nLABEL\n</text>`.
    let texts: Vec<String> = bars
        .split("<text")
        .skip(1)
        .map(|t| t.split_once('>').map(|(_, rest)| rest).unwrap_or(""))
        .map(|t| t.split("</text").next().unwrap_or("").trim().to_string())
        .collect();
    for rung in &r.rungs {
        let escaped = rung.name.replace('<', "&lt;").replace('>', "&gt;");
        assert_eq!(texts.iter().filter(|t| **t == escaped).count(), 1, "one legend entry for {escaped}");
    }
    for family in r.families() {
        assert!(texts.contains(&family), "family label {family}");
    }
    assert_eq!(html.matches("<svg").count(), 2, "bar chart and mean/recall chart");
    assert_eq!(html.matches("<table").count(), 4, "accuracy, hashes, models, hops");
}

#[test]
fn write_all_writes_three_files_and_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ladder");
    let r = sample();
    r.write_all(&out).unwrap();
    r.write_all(&out).unwrap(); // overwriting works too
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["report.html", "report.json", "report.md"]);
    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert_eq!(LadderReport::from_json(&json).unwrap(), r);
    assert_eq!(std::fs::read_to_string(out.join("report.md")).unwrap(), r.to_markdown());
}

#[test]
fn write_all_reports_an_unwritable_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = sample().write_all(&file).unwrap_err();
    assert!(matches!(err, ReportError::Io { .. }), "{err}");
    assert!(err.to_string().contains("a-file"));
}

#[test]
fn wilson_interval_matches_known_values() {
    let [lo, hi] = wilson_interval(81, 263);
    assert!((lo - 0.2553).abs() < 1e-3 && (hi - 0.3662).abs() < 1e-3, "{lo} {hi}");
    assert_eq!(wilson_interval(0, 0), [0.0, 1.0]);
    let [lo, hi] = wilson_interval(10, 10);
    assert!(hi == 1.0 && lo > 0.69 && lo < 0.73, "{lo}");
}

#[test]
fn seeds_give_mean_spread_and_the_paired_difference() {
    let s = Seeds {
        seeds: vec![0, 1, 2],
        mean_accuracy: vec![0.40, 0.44, 0.42],
        reference: Some("schedule".into()),
        reference_mean_accuracy: vec![0.41, 0.41, 0.40],
    };
    let (m, sd) = s.own();
    assert!((m - 0.42).abs() < 1e-12 && (sd - 0.02).abs() < 1e-12, "{m} {sd}");
    // Differences −0.01, 0.03, 0.02: mean 0.04/3, sd √(((−0.07)² + 0.05² + 0.02²)/9/2).
    let (d, dsd) = s.difference().unwrap();
    assert!((d - 0.04 / 3.0).abs() < 1e-12, "{d}");
    assert!((dsd - ((0.0049f64 + 0.0025 + 0.0004) / 18.0).sqrt()).abs() < 1e-12, "{dsd}");
    // t = 0.0133 / (0.0208 / √3) = 1.11 < 4.30: within noise; a steady +2 points is not.
    assert_eq!(s.verdict(), Some(report::Verdict::WithinNoise));
    let steady = Seeds { mean_accuracy: vec![0.43, 0.43, 0.42], ..s.clone() };
    assert_eq!(steady.verdict(), Some(report::Verdict::Better), "{:?}", steady.difference());
    let worse = Seeds { mean_accuracy: vec![0.30, 0.31, 0.29], ..s.clone() };
    assert_eq!(worse.verdict(), Some(report::Verdict::Worse));
    // In a report: the JSON round trip keeps them (a NaN as NaN) and the markdown shows them.
    let mut r = sample();
    let mut with_nan = s.clone();
    with_nan.reference_mean_accuracy[2] = f64::NAN;
    r.rungs[1].seeds = Some(with_nan);
    let back = LadderReport::from_json(&r.to_json()).unwrap();
    let got = back.rungs[1].seeds.as_ref().unwrap();
    assert!(got.reference_mean_accuracy[2].is_nan() && got.mean_accuracy == s.mean_accuracy);
    r.rungs[1].seeds = Some(s);
    let md = r.to_markdown();
    assert!(md.contains("Over seeds") && md.contains("42.0 ± 2.0") && md.contains("+1.3 ±"), "{md}");
    assert!(md.contains("within seed noise"), "{md}");
    // Older reports without the field still read.
    assert!(sample().to_json().contains("\"rungs\"") && !sample().to_json().contains("\"seeds\""));
}
