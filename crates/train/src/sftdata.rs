//! Fine-tuning data files: JSONL, one example per line, in either of the two shapes fine-tuning
//! tools share.
//!
//! - **Prompt and completion** (TRL's "prompt-completion" shape): `{"prompt": "...",
//!   "completion": "..."}`, optionally `"forced": [[start, end], ...]`, byte ranges of the
//!   completion the runtime injects (tool results), which are read but never trained.
//! - **Conversation** (the OpenAI chat shape): `{"messages": [{"role": "system" | "user" |
//!   "assistant" | "tool", "content": "..."}, ...]}`, rendered with the chat template
//!   ([`tokenizer::chat`]). Only what the assistant writes is trained: each assistant turn's
//!   content and its closing `<|end|>`. System and user turns, role headers and separators are
//!   read only. A `tool` message continues the assistant turn before it: its content is injected
//!   as `<|tool_result|> R<|/tool_result|>\n` (forced), and the next assistant message goes on
//!   in the same turn, as the runtime would produce it.
//!
//! Every problem is reported with its line number, and no example is half-read.

use serde::Deserialize;
use tokenizer::chat::tool_result_text;
use tokenizer::Special;

use crate::error::TrainError;
use crate::sft::Example;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    role: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Chat {
        messages: Vec<Turn>,
    },
    Completion {
        prompt: String,
        completion: String,
        #[serde(default)]
        forced: Vec<(usize, usize)>,
    },
}

/// A conversation as one example: the text up to the first assistant turn's content is the
/// prompt; everything after is the completion, with every part the assistant does not write
/// in a forced (untrained) range.
pub fn chat_example(messages: &[(String, String)]) -> Result<Example, String> {
    let first = messages.iter().position(|(r, _)| r == "assistant").ok_or("no assistant message to learn from")?;
    let mut prompt = String::new();
    for (role, content) in &messages[..first] {
        prompt.push_str(header(role)?);
        prompt.push_str(content);
        prompt.push_str(Special::End.text());
        prompt.push('\n');
    }
    prompt.push_str(Special::Assistant.text());
    let mut completion = String::new();
    let mut forced: Vec<(usize, usize)> = Vec::new();
    let mut untrained = |completion: &mut String, text: &str| {
        let start = completion.len();
        completion.push_str(text);
        match forced.last_mut() {
            Some((_, end)) if *end == start => *end = completion.len(),
            _ if !text.is_empty() => forced.push((start, completion.len())),
            _ => {}
        }
    };
    let mut in_turn = true; // the first assistant header is in the prompt
    for (i, (role, content)) in messages.iter().enumerate().skip(first) {
        let next = messages.get(i + 1).map(|(r, _)| r.as_str());
        match role.as_str() {
            "assistant" => {
                if !in_turn {
                    untrained(&mut completion, Special::Assistant.text());
                }
                completion.push_str(content);
                in_turn = true;
                if next != Some("tool") {
                    completion.push_str(Special::End.text());
                    untrained(&mut completion, "\n");
                    in_turn = false;
                }
            }
            "tool" => {
                if !in_turn {
                    return Err(format!("message {}: a tool result must follow an assistant message", i + 1));
                }
                untrained(&mut completion, &tool_result_text(content));
                if next != Some("assistant") {
                    return Err(format!("message {}: a tool result must be followed by the assistant's reply", i + 1));
                }
            }
            other => {
                untrained(&mut completion, header(other)?);
                untrained(&mut completion, content);
                untrained(&mut completion, Special::End.text());
                untrained(&mut completion, "\n");
            }
        }
    }
    // The text after the last assistant turn teaches nothing; drop it.
    while let Some(&(a, b)) = forced.last() {
        if b == completion.len() {
            completion.truncate(a);
            forced.pop();
        } else {
            break;
        }
    }
    Ok(Example { prompt, completion, forced, messages: None })
}

/// A conversation rendered with an imported model's chat template, cut into pieces marked
/// trained (what each assistant message adds to the text: its content and the template's end
/// of turn) or not (everything else). Turn `i`'s trained piece is the difference between the
/// conversation up to `i` rendered whole and the conversation before `i` rendered with the
/// generation prompt; a template for which these are not prefixes of one another (one that
/// rewrites earlier turns) is refused. Tool messages are not supported here.
pub fn template_segments(
    template: &tokenizer::ChatTemplate,
    messages: &[(String, String)],
) -> Result<Vec<(String, bool)>, String> {
    let msgs: Vec<tokenizer::Message> = messages
        .iter()
        .map(|(role, content)| {
            let role = match role.as_str() {
                "system" => tokenizer::Role::System,
                "user" => tokenizer::Role::User,
                "assistant" => tokenizer::Role::Assistant,
                other => {
                    return Err(format!(
                        "role `{other}` is not supported with a chat template (system, user, assistant)"
                    ))
                }
            };
            Ok(tokenizer::Message::new(role, content.clone()))
        })
        .collect::<Result<_, _>>()?;
    if !msgs.iter().any(|m| m.role == tokenizer::Role::Assistant) {
        return Err("no assistant message to learn from".into());
    }
    let render = |upto: usize, gen: bool| template.render(&msgs[..upto], gen).map_err(|e| e.to_string());
    let mut pieces = Vec::new();
    let mut done = 0; // bytes of the text emitted so far
    let mut text = String::new();
    for (i, m) in msgs.iter().enumerate() {
        if m.role != tokenizer::Role::Assistant {
            continue;
        }
        let before = render(i, true)?;
        let through = render(i + 1, false)?;
        if !before.starts_with(&text) || !through.starts_with(&before) {
            return Err(format!(
                "the chat template renders message {} in a way that rewrites the text before it; it cannot be fine-tuned turn by turn",
                i + 1
            ));
        }
        pieces.push((before[done..].to_string(), false));
        pieces.push((through[before.len()..].to_string(), true));
        done = through.len();
        text = through;
    }
    Ok(pieces.into_iter().filter(|(t, _)| !t.is_empty()).collect())
}

fn header(role: &str) -> Result<&'static str, String> {
    match role {
        "system" => Ok(Special::System.text()),
        "user" => Ok(Special::User.text()),
        "assistant" => Ok(Special::Assistant.text()),
        other => Err(format!("unknown role `{other}` (system, user, assistant or tool)")),
    }
}

/// Each non-blank line of a JSONL text through `parse`; every failure is reported as
/// `path:line: message` (the first ten), and a text with no item is an error naming `what`.
pub fn parse_jsonl<T>(
    text: &str,
    path: &str,
    what: &str,
    mut parse: impl FnMut(&str) -> Result<T, String>,
) -> Result<Vec<T>, TrainError> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match parse(line) {
            Ok(item) => out.push(item),
            Err(m) => problems.push(format!("{path}:{}: {m}", i + 1)),
        }
        if problems.len() >= 10 {
            break;
        }
    }
    if !problems.is_empty() {
        return Err(TrainError::Data(problems.join("\n")));
    }
    if out.is_empty() {
        return Err(TrainError::Data(format!("{path}: no {what}")));
    }
    Ok(out)
}

/// The examples of a JSONL text (`path` names it in errors). Blank lines are skipped.
pub fn examples_from_jsonl(text: &str, path: &str) -> Result<Vec<Example>, TrainError> {
    parse_jsonl(text, path, "examples", |line| match serde_json::from_str::<Line>(line) {
        Ok(Line::Completion { prompt, completion, forced }) => {
            let ok = forced.windows(2).all(|w| w[0].1 <= w[1].0)
                && forced.iter().all(|&(a, b)| {
                    a <= b && b <= completion.len() && completion.is_char_boundary(a) && completion.is_char_boundary(b)
                });
            if ok {
                Ok(Example { prompt, completion, forced, messages: None })
            } else {
                Err("`forced` must be sorted, disjoint byte ranges of the completion".into())
            }
        }
        Ok(Line::Chat { messages }) => {
            let turns: Vec<(String, String)> = messages.into_iter().map(|t| (t.role, t.content)).collect();
            chat_example(&turns).map(|e| Example { messages: Some(turns), ..e })
        }
        Err(_) => Err("not an example: expected {\"prompt\", \"completion\"[, \"forced\"]} or \
                       {\"messages\": [{\"role\", \"content\"}, ...]}"
            .into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(r: &str, c: &str) -> (String, String) {
        (r.to_string(), c.to_string())
    }

    /// The trained pieces of an example's completion.
    fn trained(e: &Example) -> Vec<&str> {
        let mut out = Vec::new();
        let mut at = 0;
        for &(a, b) in &e.forced {
            out.push(&e.completion[at..a]);
            at = b;
        }
        out.push(&e.completion[at..]);
        out.into_iter().filter(|s| !s.is_empty()).collect()
    }

    #[test]
    fn only_the_assistant_is_trained() {
        let e = chat_example(&[
            t("system", "Be brief."),
            t("user", "Where was Ada born?"),
            t("assistant", "<|tool_call|>lookup(Ada, birth_city)<|/tool_call|>"),
            t("tool", "Lormet"),
            t("assistant", "Answer: Lormet"),
            t("user", "And Bo?"),
            t("assistant", "Answer: Dravia"),
        ])
        .unwrap();
        assert_eq!(e.prompt, "<|system|>Be brief.<|end|>\n<|user|>Where was Ada born?<|end|>\n<|assistant|>");
        assert_eq!(
            e.completion,
            "<|tool_call|>lookup(Ada, birth_city)<|/tool_call|><|tool_result|> Lormet<|/tool_result|>\nAnswer: Lormet<|end|>\n\
             <|user|>And Bo?<|end|>\n<|assistant|>Answer: Dravia<|end|>"
        );
        assert_eq!(
            trained(&e),
            ["<|tool_call|>lookup(Ada, birth_city)<|/tool_call|>", "Answer: Lormet<|end|>", "Answer: Dravia<|end|>"]
        );
        // The whole conversation renders as the chat template does.
        let msgs = [
            tokenizer::chat::Message::new(tokenizer::chat::Role::User, "Hi?"),
            tokenizer::chat::Message::new(tokenizer::chat::Role::Assistant, "Hello."),
        ];
        let e = chat_example(&[t("user", "Hi?"), t("assistant", "Hello.")]).unwrap();
        assert_eq!(format!("{}{}\n", e.prompt, e.completion), tokenizer::chat::render_chat(&msgs, false));
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(chat_example(&[t("user", "Hi?")]).unwrap_err().contains("no assistant"));
        assert!(chat_example(&[t("robot", "x"), t("assistant", "y")]).unwrap_err().contains("unknown role `robot`"));
        assert!(chat_example(&[t("user", "q"), t("assistant", "a"), t("tool", "r")])
            .unwrap_err()
            .contains("followed by"));
        let text = "{\"prompt\": \"Q\", \"completion\": \" A\"}\n\n{\"prompt\": \"Q\"}\n{\"prompt\": \"Q\", \"completion\": \"ab\", \"forced\": [[1, 5]]}\n";
        let e = examples_from_jsonl(text, "d.jsonl").unwrap_err().to_string();
        assert!(e.contains("d.jsonl:3: not an example") && e.contains("d.jsonl:4: `forced`"), "{e}");
        let ok = examples_from_jsonl(
            "{\"prompt\": \"Q\", \"completion\": \" A\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"A\"}]}",
            "d.jsonl",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].completion, "A<|end|>");
        assert!(examples_from_jsonl("\n", "e.jsonl").unwrap_err().to_string().contains("no examples"));
    }
}
