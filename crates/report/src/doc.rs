//! The report's content as a small document model, built once and rendered as markdown or HTML,
//! so both renderings say the same thing.

use std::collections::BTreeMap;

use crate::format::{self, MISSING};
use crate::{LadderReport, RungReport};

/// A run of text with one style.
pub(crate) enum Inline {
    Text(String),
    Code(String),
    Strong(String),
}

/// A paragraph or a table cell: styled runs.
#[derive(Default)]
pub(crate) struct Para(pub Vec<Inline>);

impl Para {
    fn text(s: impl Into<String>) -> Self {
        Para(vec![Inline::Text(s.into())])
    }
    fn code(s: impl Into<String>) -> Self {
        Para(vec![Inline::Code(s.into())])
    }
    fn strong(s: impl Into<String>) -> Self {
        Para(vec![Inline::Strong(s.into())])
    }
    fn t(mut self, s: impl Into<String>) -> Self {
        self.0.push(Inline::Text(s.into()));
        self
    }
    fn c(mut self, s: impl Into<String>) -> Self {
        self.0.push(Inline::Code(s.into()));
        self
    }
    fn b(mut self, s: impl Into<String>) -> Self {
        self.0.push(Inline::Strong(s.into()));
        self
    }
}

/// A table: a name for styling, header cells, which columns hold numbers (right-aligned), rows of cells.
pub(crate) struct Table {
    pub name: &'static str,
    pub head: Vec<String>,
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<Para>>,
}

/// A block of the document.
pub(crate) enum Block {
    Title(String),
    Heading(String),
    P(Para),
    List(Vec<Para>),
    Table(Table),
    /// Where the HTML page puts its charts; the markdown points to the HTML file instead.
    Charts,
}

/// The report's content, top to bottom.
pub(crate) fn document(r: &LadderReport) -> Vec<Block> {
    let mut out = Vec::new();
    out.push(Block::Title(format!("ascent ladder report: {} preset", r.preset)));
    out.push(Block::P(Para::text(format!(
        "ascent {} · {} · {} rungs · total wall time {} s · report format {}",
        r.version,
        r.machine,
        r.rungs.len(),
        format::seconds(r.total_seconds),
        r.format
    ))));

    world(r, &mut out);

    out.push(Block::Heading("Setup".into()));
    if r.setup.is_empty() {
        out.push(Block::P(Para::text("(no setup lines recorded)")));
    } else {
        out.push(Block::List(r.setup.iter().map(Para::text).collect()));
    }

    let families = r.families();
    out.push(Block::Heading("Held-out accuracy per rung".into()));
    out.push(Block::P(Para::text(
        "Percent of held-out tasks answered correctly per task family, with the 95% Wilson interval \
         in brackets. Mean: unweighted mean over families. Δ mean: change from the rung it is compared \
         with (its parent, or the rung named in its lever's comparison), else the rung before, in \
         percentage points. Recall probe: facts recalled about train / held-out people, percent. \
         Train tokens, FLOPs and seconds are this rung's own stage.",
    )));
    out.push(Block::Charts);
    out.push(Block::Table(accuracy_table(r, &families)));
    tasks_lines(r, &families, &mut out);
    let reused: Vec<&str> = r.rungs.iter().filter(|g| g.reused).map(|g| g.name.as_str()).collect();
    if !reused.is_empty() {
        out.push(Block::P(
            Para::strong("Reused")
                .t(format!(" (a finished earlier result, not re-run in this run): {}.", reused.join(", "))),
        ));
    }

    out.push(Block::Heading("Knowledge and corpus per rung".into()));
    hashes(r, &mut out);

    out.push(Block::Heading("Models".into()));
    out.push(Block::Table(Table {
        name: "models",
        head: vec!["rung".into(), "model".into(), "params".into(), "answer mode".into()],
        numeric: vec![false, false, true, false],
        rows: r
            .rungs
            .iter()
            .map(|g| {
                vec![
                    rung_cell(g),
                    Para::text(&g.model),
                    Para::text(format::human_count(g.params as u64)),
                    Para::text(&g.answer_mode),
                ]
            })
            .collect(),
    }));

    seeds(r, &mut out);
    hops(r, &mut out);
    extra(r, &mut out);
    out
}

/// The rungs trained at several seeds: mean ± standard deviation of the mean accuracy, the
/// reference rung's at the same seeds, and the paired difference.
fn seeds(r: &LadderReport, out: &mut Vec<Block>) {
    let with: Vec<&RungReport> = r.rungs.iter().filter(|g| g.seeds.is_some()).collect();
    if with.is_empty() {
        return;
    }
    out.push(Block::Heading("Over seeds".into()));
    out.push(Block::P(Para::text(
        "Rungs trained at several seeds (model initialisation and data order; the same world), each \
         beside the rung it is compared with at the same seeds. Mean accuracy over families, percent: \
         mean ± standard deviation over seeds; Δ: the paired difference seed by seed; verdict: a \
         two-sided paired t-test at 5% over the seeds (with three seeds the mean difference must be \
         about 2.5 standard deviations of the differences from zero to count).",
    )));
    let pm = |(m, sd): (f64, f64)| format!("{} ± {}", format::pct(m), format::pct(sd));
    let rows = with
        .iter()
        .map(|g| {
            let s = g.seeds.as_ref().expect("filtered");
            let per = |xs: &[f64]| xs.iter().map(|&x| format::pct(x)).collect::<Vec<_>>().join(", ");
            vec![
                rung_cell(g),
                Para::text(s.mean_accuracy.len().to_string()),
                Para::text(pm(s.own())),
                Para::text(per(&s.mean_accuracy)),
                Para::text(s.reference.clone().unwrap_or_else(|| MISSING.to_string())),
                Para::text(s.reference().map_or(MISSING.to_string(), pm)),
                Para::text(per(&s.reference_mean_accuracy)),
                Para::text(s.difference().map_or(MISSING.to_string(), |(d, sd)| {
                    format!("{} ± {}", format::delta_points(d), format::pct(sd))
                })),
                Para::text(s.verdict().map_or(MISSING, |v| v.as_str())),
            ]
        })
        .collect();
    out.push(Block::Table(Table {
        name: "seeds",
        head: [
            "rung",
            "seeds",
            "mean ± sd",
            "per seed",
            "compared with",
            "its mean ± sd",
            "per seed",
            "Δ ± sd",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
        numeric: vec![false, true, true, true, false, true, true, true, false],
        rows,
    }));
}

fn world(r: &LadderReport, out: &mut Vec<Block>) {
    let w = &r.world;
    out.push(Block::Heading("World".into()));
    let people = if w.people.is_empty() {
        MISSING.to_string()
    } else {
        w.people.iter().map(|(split, n)| format!("{split} {n}")).collect::<Vec<_>>().join(", ")
    };
    out.push(Block::P(
        Para::text("Seed ")
            .b(w.seed.to_string())
            .t(" · ")
            .b(w.facts.to_string())
            .t(" facts · knowledge ")
            .c(format::short_hash(&w.knowledge_sha256))
            .t(" · corpus ")
            .b(format::human_count(w.corpus_tokens))
            .t(" tokens (single rendering) · people: ")
            .t(people)
            .t(" · source: ")
            .t(&w.source),
    ));
    out.push(Block::P(
        Para::text("Full hashes: knowledge sha256 ")
            .c(or_missing(&w.knowledge_sha256))
            .t("; corpus sha256 (single rendering) ")
            .c(or_missing(&w.corpus_sha256))
            .t("."),
    ));
}

fn accuracy_table(r: &LadderReport, families: &[String]) -> Table {
    let mut head = vec!["rung".to_string(), "lever".to_string()];
    head.extend(families.iter().cloned());
    head.extend(
        ["mean", "Δ mean", "recall probe train / held-out", "train tokens", "FLOPs", "seconds"].map(String::from),
    );
    let mut numeric = vec![false, false];
    numeric.extend(std::iter::repeat_n(true, families.len() + 6));

    let mut rows = Vec::new();
    let mut previous: Option<f64> = None;
    let mean_of = |name: &str| r.rungs.iter().find(|g| g.name == name).map(|g| g.mean_accuracy);
    for g in &r.rungs {
        // The rung this one was compared with, if the runner recorded one.
        let compared = g.extra.get("vs").and_then(|v| v["rung"].as_str()).and_then(mean_of);
        let base = compared.or(previous);
        let mut row = vec![rung_cell(g), Para::text(&g.lever)];
        for f in families {
            let cell = match g.accuracy.get(f) {
                None => MISSING.to_string(),
                Some(&a) => match g.accuracy_ci95.get(f) {
                    Some(&interval) => format!("{} {}", format::pct(a), format::ci(interval)),
                    None => format::pct(a),
                },
            };
            row.push(Para::text(cell));
        }
        row.push(Para::text(format::pct(g.mean_accuracy)));
        row.push(Para::text(match base {
            Some(p) => format::delta_points(g.mean_accuracy - p),
            None => MISSING.to_string(),
        }));
        previous = Some(g.mean_accuracy);
        row.push(Para::text(format!(
            "{} / {}",
            format::pct(g.recall_probe.train),
            format::pct(g.recall_probe.heldout)
        )));
        row.push(Para::text(format::human_count(g.train_tokens)));
        row.push(Para::text(format::flops(g.flops)));
        row.push(Para::text(format::seconds(g.seconds)));
        rows.push(row);
    }
    Table { name: "accuracy", head, numeric, rows }
}

/// One line with the number of held-out tasks per family, or one per rung when rungs differ.
fn tasks_lines(r: &LadderReport, families: &[String], out: &mut Vec<Block>) {
    let line = |tasks: &BTreeMap<String, usize>| {
        families.iter().filter_map(|f| tasks.get(f).map(|n| format!("{f} {n}"))).collect::<Vec<_>>().join(", ")
    };
    let Some(first) = r.rungs.first() else { return };
    if r.rungs.iter().all(|g| g.tasks == first.tasks) {
        if !first.tasks.is_empty() {
            out.push(Block::P(Para::text(format!("Held-out tasks scored per family: {}.", line(&first.tasks)))));
        }
    } else {
        let items = r.rungs.iter().map(|g| Para::text(format!("{}: {}", g.name, line(&g.tasks)))).collect();
        out.push(Block::P(Para::text("Held-out tasks scored per family, by rung:")));
        out.push(Block::List(items));
    }
}

fn hashes(r: &LadderReport, out: &mut Vec<Block>) {
    let reference = &r.world.knowledge_sha256;
    let differs = |g: &RungReport| &g.knowledge_sha256 != reference;
    let mut rows = Vec::new();
    for g in &r.rungs {
        let knowledge = format::short_hash(&g.knowledge_sha256);
        let knowledge = if differs(g) { Para::strong(knowledge) } else { Para::code(knowledge) };
        rows.push(vec![
            rung_cell(g),
            knowledge,
            Para::code(format::short_hash(&g.corpus_sha256)),
            Para::text(g.renderings.to_string()),
        ]);
    }
    out.push(Block::Table(Table {
        name: "hashes",
        head: vec!["rung".into(), "knowledge sha256".into(), "corpus sha256".into(), "renderings".into()],
        numeric: vec![false, false, false, true],
        rows,
    }));

    let differing: Vec<&str> = r.rungs.iter().filter(|g| differs(g)).map(|g| g.name.as_str()).collect();
    if r.rungs.is_empty() {
        out.push(Block::P(Para::text("No rungs were run.")));
    } else if differing.is_empty() {
        out.push(Block::P(
            Para::text("Knowledge hash ").c(format::short_hash(reference)).t(" identical on every rung."),
        ));
    } else {
        out.push(Block::P(
            Para::strong(format!(
                "Knowledge hash differs from the world's ({}) on: {}.",
                format::short_hash(reference),
                differing.join(", ")
            ))
            .t(" The ladder's premise is the same knowledge on every rung; these rungs are not comparable."),
        ));
    }

    let changed: Vec<&str> = r
        .rungs
        .windows(2)
        .filter(|pair| pair[0].corpus_sha256 != pair[1].corpus_sha256)
        .map(|pair| pair[1].name.as_str())
        .collect();
    if r.rungs.len() > 1 {
        out.push(Block::P(Para::text(if changed.is_empty() {
            "Corpus text identical on every rung.".to_string()
        } else {
            format!("Corpus text changes from the rung before on: {}.", changed.join(", "))
        })));
    }
}

fn hops(r: &LadderReport, out: &mut Vec<Block>) {
    let mut keys: Vec<&String> = Vec::new();
    for g in &r.rungs {
        for k in g.accuracy_by_hops.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    if keys.is_empty() {
        return;
    }
    keys.sort_by_key(|k| (k.parse::<u64>().unwrap_or(u64::MAX), (*k).clone()));
    out.push(Block::Heading("Accuracy by number of hops".into()));
    out.push(Block::P(Para::text("Percent of held-out tasks correct, grouped by the number of facts chained.")));
    let mut head = vec!["rung".to_string()];
    head.extend(keys.iter().map(|k| match k.as_str() {
        "1" => "1 hop".to_string(),
        k if k.parse::<u64>().is_ok() => format!("{k} hops"),
        k => k.to_string(),
    }));
    let mut numeric = vec![false];
    numeric.extend(std::iter::repeat_n(true, keys.len()));
    let rows = r
        .rungs
        .iter()
        .map(|g| {
            let mut row = vec![rung_cell(g)];
            row.extend(keys.iter().map(|k| {
                Para::text(g.accuracy_by_hops.get(*k).map(|&a| format::pct(a)).unwrap_or_else(|| MISSING.to_string()))
            }));
            row
        })
        .collect();
    out.push(Block::Table(Table { name: "hops", head, numeric, rows }));
}

fn extra(r: &LadderReport, out: &mut Vec<Block>) {
    let items: Vec<Para> = r
        .rungs
        .iter()
        .filter(|g| !g.extra.is_empty())
        .map(|g| {
            let fields = g.extra.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join("; ");
            Para::strong(&g.name).t(": ").t(fields)
        })
        .collect();
    if !items.is_empty() {
        out.push(Block::Heading("Further measurements".into()));
        out.push(Block::List(items));
    }
}

/// The rung's name, marked when its result was reused.
fn rung_cell(g: &RungReport) -> Para {
    if g.reused {
        Para::text(&g.name).t(" (reused)")
    } else {
        Para::text(&g.name)
    }
}

fn or_missing(s: &str) -> &str {
    if s.is_empty() {
        MISSING
    } else {
        s
    }
}
