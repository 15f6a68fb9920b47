//! The tools reproduce every tool call in the world's tool traces (train and held-out), and a
//! tool trace turns into the chat protocol's text.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use tools::protocol::{segments_text, TOOL_CALL, TOOL_CALL_END, TOOL_RESULT, TOOL_RESULT_END};
use tools::{calc, parse_call, split_trace_line, trace_to_chat, KnowledgeMap, Registry, Segment};
use world::{Fact, KbConfig, KnowledgeBase, Split, Task, World, WorldConfig};

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World::generate(&WorldConfig::default()).expect("the default world generates"))
}

/// Every task of the train and held-out sets.
fn tasks() -> Vec<Task> {
    let w = world();
    let mut t = w.tasks_in(Split::Train);
    t.extend(w.tasks_in(Split::Heldout));
    t
}

/// `(tool, args, result)` of every call line of every task's tool trace, the references in the
/// arguments (`#k`) replaced by the earlier results they name.
fn calls(tasks: &[Task]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for t in tasks {
        let mut results: Vec<String> = Vec::new();
        for line in t.tool_trace.lines().filter(|l| !l.starts_with("Answer:")) {
            let (call, result) = split_trace_line(line).unwrap_or_else(|| panic!("{}: bad line {line:?}", t.id));
            let c = parse_call(call).unwrap_or_else(|e| panic!("{}: {e}", t.id));
            let earlier: Vec<&str> = results.iter().map(String::as_str).collect();
            let args = world::refs::resolve(c.args, &earlier).unwrap_or_else(|e| panic!("{}: {e}", t.id));
            out.push((c.name.to_string(), args, result.to_string()));
            results.push(result.to_string());
        }
    }
    out
}

#[test]
fn world_traces_pass_results_on_by_reference() {
    // Every number a calc uses and every entity a later lookup starts from was found by an
    // earlier call: the traces name it `#k` instead of copying it.
    let (mut refs, mut calcs) = (0, 0);
    for t in tasks() {
        for line in t.tool_trace.lines().filter(|l| l.starts_with("calc(")) {
            calcs += 1;
            let (call, _) = split_trace_line(line).unwrap();
            let args = parse_call(call).unwrap().args;
            let literals: Vec<&str> =
                args.split(|c: char| !c.is_ascii_alphanumeric() && c != '#').filter(|w| !w.is_empty()).collect();
            assert!(literals.iter().all(|w| w.starts_with('#') || *w == "abs" || *w == "2"), "{}: {line}", t.id);
        }
        refs += t.tool_trace.lines().filter(|l| l.starts_with("lookup(#")).count();
    }
    assert!(calcs > 200 && refs > 200, "{calcs} calcs, {refs} lookups by reference");
}

#[test]
fn every_calc_in_the_world_traces_reproduces() {
    let tasks = tasks();
    let mut per_family: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &tasks {
        for (tool, args, result) in calls(std::slice::from_ref(t)) {
            if tool == "calc" {
                assert_eq!(calc(&args).as_deref(), Ok(result.as_str()), "{}: calc({args})", t.id);
                *per_family.entry(t.family.as_str()).or_default() += 1;
            }
        }
    }
    // Comparisons, differences and parities all occur, many times.
    for family in ["compare", "arithmetic", "parity"] {
        assert!(per_family.get(family).copied().unwrap_or(0) >= 50, "{per_family:?}");
    }
}

#[test]
fn every_lookup_and_find_in_the_world_traces_reproduces() {
    let kb = KnowledgeMap::new(&world().facts());
    let (mut lookups, mut finds) = (0, 0);
    for (tool, args, result) in calls(&tasks()) {
        match tool.as_str() {
            "lookup" => {
                assert_eq!(kb.lookup_call(&args).as_deref(), Ok(result.as_str()), "lookup({args})");
                lookups += 1;
            }
            "find" => {
                assert_eq!(kb.find_call(&args).as_deref(), Ok(result.as_str()), "find({args})");
                finds += 1;
            }
            _ => {}
        }
    }
    assert!(lookups > 1000 && finds > 20, "{lookups} lookups, {finds} finds");
}

/// Replays each trace through a registry: every result and the final answer come out as gold.
fn replay(registry: &Registry, tasks: &[Task]) -> usize {
    let mut n = 0;
    for t in tasks {
        let mut results: Vec<String> = Vec::new();
        for line in t.tool_trace.lines() {
            if let Some(answer) = line.strip_prefix("Answer: ") {
                assert_eq!(answer, t.answer, "{}", t.id);
                continue;
            }
            let (call, result) = split_trace_line(line).unwrap_or_else(|| panic!("{}: {line:?}", t.id));
            let earlier: Vec<&str> = results.iter().map(String::as_str).collect();
            let got = registry.call_text_after(call, &earlier);
            assert_eq!(got, result, "{}: {call}", t.id);
            results.push(got);
            n += 1;
        }
    }
    n
}

#[test]
fn references_name_earlier_results_or_are_errors() {
    let r = Registry::standard(&world().facts());
    let earlier = ["1948", "1950", "error: unknown entity `Zed`"];
    assert_eq!(r.call_text_after("calc(abs(#1 - #2))", &earlier), "2");
    assert_eq!(r.call_text_after("calc(#2 % 2)", &earlier), "0");
    assert_eq!(r.call_text_after("calc(#1<#2)", &earlier), "yes");
    assert_eq!(
        r.call_text_after("calc(#4 + 1)", &earlier),
        "error: `#4` names no earlier result (this answer has 3 so far; they are numbered from 1)"
    );
    assert!(r.call_text_after("lookup(#3, birth_city)", &earlier).starts_with("error: `#3` is the failed call's"));
    assert!(r.call_text("calc(#1 + 1)").starts_with("error: `#1` names no earlier result (this answer has 0"));
    // A `#` with no digit is left to the tool.
    assert!(r.call_text_after("calc(# + 1)", &earlier).starts_with("error: "));
}

#[test]
fn the_standard_registry_replays_every_world_trace() {
    let registry = Registry::standard(&world().facts());
    assert_eq!(registry.names(), ["calc", "find", "lookup", "run"]);
    assert!(replay(&registry, &tasks()) > 1000);
}

/// Imported knowledge: names with `. ` and ` of `, relations the world does not have.
const BOOKS: &str = r#"{"subject":"The Glass Orchard","relation":"author","object":"Mira Tollan","subject_type":"book"}
{"subject":"The Glass Orchard","relation":"publication_year","object":"1952"}
{"subject":"Salt and Ember","relation":"author","object":"Mira Tollan","subject_type":"book"}
{"subject":"Salt and Ember","relation":"publication_year","object":"1961"}
{"subject":"North of Quiet","relation":"author","object":"J. R. Penhale","subject_type":"book"}
{"subject":"North of Quiet","relation":"publication_year","object":"1975"}
{"subject":"Copper Tide","relation":"author","object":"J. R. Penhale","subject_type":"book"}
{"subject":"Copper Tide","relation":"publication_year","object":"1947"}
{"subject":"Mira Tollan","relation":"birthplace","object":"Harrowgate","subject_type":"author"}
{"subject":"J. R. Penhale","relation":"birthplace","object":"Keswyn","subject_type":"author"}
{"subject":"Harrowgate","relation":"country","object":"Elmaria","subject_type":"city"}
{"subject":"Keswyn","relation":"country","object":"Dunmere","subject_type":"city"}
"#;

#[test]
fn the_standard_registry_replays_an_imported_knowledge_base() {
    let kb = KnowledgeBase::from_jsonl(BOOKS, &KbConfig::default()).expect("the books import");
    let registry = Registry::standard(&kb.facts());
    let tasks = kb.tasks();
    assert!(tasks.iter().any(|t| t.tool_trace.contains("calc(")));
    assert!(replay(&registry, &tasks) > 20);
    // find answers every subject, sorted, and matches names loosely.
    assert_eq!(registry.call_text("find(author=Mira Tollan)"), "Salt and Ember, The Glass Orchard");
    assert_eq!(registry.call_text("find(author=j r penhale, publication_year=1947)"), "Copper Tide");
}

#[test]
fn a_tool_trace_in_chat_form() {
    let trace = "lookup(Ilona Varsk, birth_city) -> Lormet\nlookup(Lormet, country) -> Dravia\nAnswer: Dravia";
    let segments = trace_to_chat(trace);
    assert_eq!(
        segments,
        [
            Segment::Sampled("<|tool_call|>lookup(Ilona Varsk, birth_city)<|/tool_call|>".into()),
            Segment::Forced("<|tool_result|> Lormet<|/tool_result|>\n".into()),
            Segment::Sampled("<|tool_call|>lookup(Lormet, country)<|/tool_call|>".into()),
            Segment::Forced("<|tool_result|> Dravia<|/tool_result|>\n".into()),
            Segment::Sampled("Answer: Dravia".into()),
        ]
    );
    // The example of the chat template (tokenizer::chat), byte for byte.
    let one = trace_to_chat("lookup(Ilona Varsk, birth_city) -> Lormet\nAnswer: Lormet");
    assert_eq!(
        segments_text(&one),
        "<|tool_call|>lookup(Ilona Varsk, birth_city)<|/tool_call|><|tool_result|> Lormet<|/tool_result|>\nAnswer: Lormet"
    );
    // The special-token texts are those of tokenizer::Special (ids 9..=12).
    assert_eq!(
        [TOOL_CALL, TOOL_CALL_END, TOOL_RESULT, TOOL_RESULT_END],
        ["<|tool_call|>", "<|/tool_call|>", "<|tool_result|>", "<|/tool_result|>"]
    );
    // A line that is not a call stays model-written text, merged with its neighbours.
    assert_eq!(
        trace_to_chat("First the year.\ncalc(1 + 1) -> 2\nAnswer: 2"),
        [
            Segment::Sampled("First the year.\n<|tool_call|>calc(1 + 1)<|/tool_call|>".into()),
            Segment::Forced("<|tool_result|> 2<|/tool_result|>\n".into()),
            Segment::Sampled("Answer: 2".into()),
        ]
    );
}

#[test]
fn every_world_trace_in_chat_form_forces_exactly_the_results() {
    for t in tasks() {
        let segments = trace_to_chat(&t.tool_trace);
        let forced: Vec<&str> = segments.iter().filter(|s| s.is_forced()).map(Segment::text).collect();
        let results: Vec<String> =
            calls(std::slice::from_ref(&t)).into_iter().map(|(_, _, r)| tools::protocol::result_text(&r)).collect();
        assert_eq!(forced, results, "{}", t.id);
        // Sampled and forced alternate, starting and ending with the model.
        assert!(segments.windows(2).all(|w| w[0].is_forced() != w[1].is_forced()), "{}", t.id);
        assert_eq!(segments.last(), Some(&Segment::Sampled(format!("Answer: {}", t.answer))), "{}", t.id);
        // Removing the tags gives back the trace's calls, results and answer.
        let plain = segments_text(&segments)
            .replace(TOOL_CALL, "")
            .replace(&format!("{TOOL_CALL_END}{TOOL_RESULT} "), " -> ")
            .replace(TOOL_RESULT_END, "");
        assert_eq!(plain, t.tool_trace, "{}", t.id);
    }
}

#[test]
fn knowledge_errors_name_what_was_wrong() {
    let facts = [
        Fact { subject: "Ada Lorn".into(), relation: "friend".into(), object: "Bo Reyes".into() },
        Fact { subject: "Cy Moss".into(), relation: "friend".into(), object: "Bo Reyes".into() },
        Fact { subject: "Bo Reyes".into(), relation: "city".into(), object: "Lormet".into() },
    ];
    let r = Registry::standard(&facts);
    assert_eq!(r.call_text("lookup(ada  LORN., friend)"), "Bo Reyes");
    assert_eq!(r.call_text("find(friend=bo reyes)"), "Ada Lorn, Cy Moss");
    assert_eq!(r.call_text("find(friend=Bo Reyes, city=Lormet)"), "");
    assert_eq!(r.call_text("lookup(Zed, friend)"), "error: unknown entity `Zed`");
    assert_eq!(r.call_text("lookup(Ada Lorn, enemy)"), "error: unknown relation `enemy` (known: city, friend)");
    assert_eq!(r.call_text("lookup(Ada Lorn, city)"), "error: `Ada Lorn` has no `city`");
    assert_eq!(r.call_text("find(enemy=Bo Reyes)"), "error: unknown relation `enemy` (known: city, friend)");
    assert_eq!(r.call_text("find(friend=Nobody)"), "error: unknown entity `Nobody`");
    assert!(r.call_text("lookup(Ada Lorn)").starts_with("error: lookup takes `entity, relation`"));
    assert!(r.call_text("find(friend)").starts_with("error: find takes `relation=object, ...`"));
    assert!(r.call_text("find()").starts_with("error: find takes"));
    assert_eq!(r.call_text("lookup(, friend)"), "error: unknown entity ``");
}

#[test]
fn the_registry_answers_every_call_with_text() {
    let mut r = Registry::standard(&[]);
    assert_eq!(r.call("calc", "1948 < 1950"), "yes");
    assert_eq!(r.call_text("calc((1 + 2) * 3)"), "9");
    assert_eq!(r.call_text("calc(1 / 0)"), "error: division by zero at byte 2");
    assert_eq!(r.call_text("run(let s = 0; let i = 1; while i <= 10 { s = s + i; i = i + 1; } print(s))"), "55");
    assert_eq!(r.call_text("run(let x = 1;)"), tools::NO_OUTPUT);
    assert_eq!(r.call("shell", "rm -rf /"), "error: unknown tool `shell` (known: calc, find, lookup, run)");
    assert_eq!(r.call_text("calc 1 + 1"), "error: `calc 1 + 1` is not a call: expected `name(arguments)`");
    assert_eq!(r.call_text("calc(1 + 1"), "error: call `calc(1 + 1` does not end with `)`");
    assert!(r.get("calc").is_some_and(|t| t.describe().contains("calc(")));
    assert_eq!(r.describe().lines().count(), 4);
    // Registering under a taken name replaces the tool.
    assert!(r.register(tools::CalcTool { limits: tools::CalcLimits { max_bits: 8, ..Default::default() } }).is_some());
    assert_eq!(r.call("calc", "256"), "error: number at byte 0 would have more than 8 bits");
    let empty = Registry::new();
    assert_eq!(empty.call("calc", "1"), "error: unknown tool `calc` (known: )");
}
