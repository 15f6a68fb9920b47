//! Diagnostic: is a fact stored, whatever the QA skill? Completes one biography sentence per
//! person and relation ("X's year of birth is") greedily and counts the completions that start
//! with the fact's object, per relation, for held-out and train people.
//!
//! `cargo run --release -p train --example probe -- CHECKPOINT WORLD/kb.jsonl WORLD/tasks/heldout.jsonl`
//! (the tasks file names the held-out people).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use model::burn::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 4 {
        eprintln!("usage: probe CHECKPOINT KB_JSONL HELDOUT_TASKS_JSONL");
        std::process::exit(2);
    }
    let dev = Device::flex();
    let (m, tok, _) = train::eval::load_for_inference(std::path::Path::new(&a[1]), &dev).unwrap();
    let mut held = BTreeSet::new();
    for l in std::fs::read_to_string(&a[3]).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        for p in v["people"].as_array().unwrap() {
            held.insert(p.as_str().unwrap().to_string());
        }
    }
    let tmpl: BTreeMap<&str, &str> = [
        ("birth_city", "{}'s birthplace is"),
        ("birth_year", "{}'s year of birth is"),
        ("employer", "{} works for"),
        ("major", "{} majored in"),
        ("university", "{} studied at"),
        ("mentor", "{}'s mentor is"),
    ]
    .into_iter()
    .collect();
    let mut rows = vec![];
    for l in std::fs::read_to_string(&a[2]).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let (s, r, o) =
            (v["subject"].as_str().unwrap(), v["relation"].as_str().unwrap(), v["object"].as_str().unwrap());
        if let Some(t) = tmpl.get(r) {
            rows.push((held.contains(s), r.to_string(), t.replace("{}", s), o.to_string()));
        }
    }
    let prompts: Vec<Vec<u32>> = rows.iter().map(|r| tok.encode(&r.2)).collect();
    let done = |ids: &[u32]| ids.len() >= 8;
    let out = model::generate::greedy_many(&m, &prompts, 8, 32, &done, &dev).unwrap();
    let mut acc: BTreeMap<(bool, String), (u32, u32)> = BTreeMap::new();
    for (r, ids) in rows.iter().zip(out) {
        let c = tok.decode(&ids);
        let ok = c.trim_start().starts_with(&r.3);
        let e = acc.entry((r.0, r.1.clone())).or_default();
        e.0 += ok as u32;
        e.1 += 1;
    }
    for ((h, r), (k, n)) in acc {
        println!("{} {:12} {}/{}", if h { "heldout" } else { "train  " }, r, k, n);
    }
}
