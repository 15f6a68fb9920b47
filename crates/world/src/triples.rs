//! Bring your own knowledge: importing facts from JSON-lines triples.

use serde_json::Value;

use crate::world::Fact;
use crate::WorldError;

const FIELDS: [&str; 5] = ["subject", "relation", "object", "subject_type", "object_type"];

/// Parses JSON lines `{"subject": .., "relation": .., "object": ..}` (optionally with string
/// `subject_type` / `object_type`, as in `kb.jsonl`) into facts, in order. Blank lines are
/// skipped. Every malformed line is reported, with its 1-based number, in one
/// [`WorldError::Import`]. Importing [`crate::World::kb_jsonl`] gives back [`crate::World::facts`].
/// To make a corpus and tasks from the facts, see [`crate::KnowledgeBase`].
pub fn import_triples(text: &str) -> Result<Vec<Fact>, WorldError> {
    Ok(parse_records(text)?.into_iter().map(|r| r.fact).collect())
}

/// One parsed line of a triples file.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    /// 1-based line number.
    pub(crate) line: usize,
    /// The triple, exactly as written.
    pub(crate) fact: Fact,
    /// The declared subject type, if any.
    pub(crate) subject_type: Option<String>,
    /// The declared object type, if any.
    pub(crate) object_type: Option<String>,
}

/// [`import_triples`], keeping each line's number and declared types.
pub(crate) fn parse_records(text: &str) -> Result<Vec<Record>, WorldError> {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok((fact, subject_type, object_type)) => {
                records.push(Record { line: i + 1, fact, subject_type, object_type })
            }
            Err(e) => errors.push(format!("line {}: {e}", i + 1)),
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(WorldError::Import(errors))
    }
}

type Parsed = (Fact, Option<String>, Option<String>);

fn parse_line(line: &str) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Object(map) = value else { return Err("not a JSON object".into()) };
    let mut problems = Vec::new();
    for key in map.keys() {
        if !FIELDS.contains(&key.as_str()) {
            problems.push(format!("unknown field `{key}`"));
        }
    }
    let mut get = |key: &str, required: bool| -> Option<String> {
        match map.get(key) {
            None if required => {
                problems.push(format!("missing field `{key}`"));
                None
            }
            None => None,
            Some(Value::String(s)) if s.trim().is_empty() => {
                problems.push(format!("field `{key}` is empty"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                problems.push(format!("field `{key}` must be a string"));
                None
            }
        }
    };
    let subject = get("subject", true);
    let relation = get("relation", true);
    let object = get("object", true);
    let subject_type = get("subject_type", false);
    let object_type = get("object_type", false);
    match (subject, relation, object) {
        (Some(subject), Some(relation), Some(object)) if problems.is_empty() => {
            Ok((Fact { subject, relation, object }, subject_type, object_type))
        }
        _ => Err(problems.join(", ")),
    }
}
