//! Imported models' chat templates: Hugging Face's Jinja `chat_template` (from
//! `tokenizer_config.json`, `chat_template.jinja` or a GGUF's `tokenizer.chat_template`),
//! rendered with minijinja the way transformers renders it.
//!
//! transformers renders with `jinja2.Environment(trim_blocks=True, lstrip_blocks=True)`, the
//! globals `messages`, `add_generation_prompt`, `bos_token`, `eos_token` (and `tools` when
//! given), the function `raise_exception(msg)` and `strftime_now(fmt)`, and Python's string and
//! dict methods (`.strip()`, `.startswith()`, `.items()`, ...), and its `tojson` (Python's
//! `json.dumps`). minijinja with the same settings, `minijinja_contrib`'s Python-compatible
//! methods and a `tojson` filter writing Python's separators covers what Llama 3, Qwen2, Qwen3,
//! Mistral and SmolLM templates use (checked against transformers' rendering on templates in
//! their style: tests/templates.rs).

use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::{context, Environment, Error, ErrorKind};
use serde_json::Value;

use crate::{Message, TokenizerError};

/// A compiled chat template with the special-token strings it may refer to.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    source: String,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
}

const NAME: &str = "chat_template";

fn environment(source: &str) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", |fmt: String| strftime_now(&fmt));
    env.add_filter("tojson", tojson);
    env.add_template_owned(NAME, source.to_string())?;
    Ok(env)
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error is reported with its line.
    pub fn new(source: &str, bos_token: Option<String>, eos_token: Option<String>) -> Result<Self, TokenizerError> {
        environment(source).map_err(|e| TokenizerError::Template(format!("does not compile: {e:#}")))?;
        Ok(Self { source: source.to_string(), bos_token, eos_token })
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages` (`{"role", "content", ...}` objects as the OpenAI API and
    /// transformers take them: tool calls and tool results included), with `tools` (JSON
    /// schemas) when given, and the assistant's generation prompt when `add_generation_prompt`.
    pub fn render_values(
        &self,
        messages: &[Value],
        tools: Option<&[Value]>,
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        self.render_with(messages, tools.map(minijinja::Value::from_serialize), None, add_generation_prompt)
    }

    /// As [`render_values`](Self::render_values), with the tools given as the JSON text of
    /// their list (as a request carries it): their objects keep their keys in the order
    /// written, as Python keeps them, so a schema in the prompt reads as in training. `kwargs`
    /// are more variables for the template, as transformers' `apply_chat_template(**kwargs)`
    /// passes them (`{"enable_thinking": false}` for Qwen3); they cannot replace the ones above.
    pub fn render_with_tools_json(
        &self,
        messages: &[Value],
        tools_json: Option<&str>,
        kwargs: Option<&serde_json::Map<String, Value>>,
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let tools = match tools_json {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<minijinja::Value>(text)
                    .map_err(|e| TokenizerError::Template(format!("the tools are not JSON: {e}")))?,
            ),
        };
        self.render_with(messages, tools, kwargs, add_generation_prompt)
    }

    fn render_with(
        &self,
        messages: &[Value],
        tools: Option<minijinja::Value>,
        kwargs: Option<&serde_json::Map<String, Value>>,
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let env =
            environment(&self.source).map_err(|e| TokenizerError::Template(format!("does not compile: {e:#}")))?;
        let tmpl = env.get_template(NAME).map_err(|e| TokenizerError::Template(e.to_string()))?;
        let ctx = context! {
            messages => messages,
            tools => tools,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_deref().unwrap_or(""),
            eos_token => self.eos_token.as_deref().unwrap_or(""),
        };
        const FIXED: [&str; 5] = ["messages", "tools", "add_generation_prompt", "bos_token", "eos_token"];
        let extra: serde_json::Map<String, Value> = kwargs
            .into_iter()
            .flatten()
            .filter(|(k, _)| !FIXED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let extra = minijinja::Value::from_serialize(&extra);
        let ctx = context! { ..ctx, ..extra };
        tmpl.render(ctx).map_err(|e| TokenizerError::Template(format!("cannot render: {e:#}")))
    }

    /// Renders a plain conversation.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, TokenizerError> {
        let values: Vec<Value> =
            messages.iter().map(|m| serde_json::to_value(m).expect("messages serialise")).collect();
        self.render_values(&values, None, add_generation_prompt)
    }
}

/// The current UTC time formatted with the `strftime` codes chat templates use (`%Y %m %d %b
/// %B %H %M %S %%`; others are kept as written).
/// transformers' `tojson`: Python's `json.dumps(value, ensure_ascii=False, indent=indent)`, so
/// `", "` and `": "` between items (tool schemas in a system prompt read as the model was
/// trained on them) and no HTML escaping (minijinja's own `tojson` writes `<` as `\u003c`).
/// Objects keep their keys in the order they were given ([`ChatTemplate::render_with_tools_json`]
/// keeps a request's order; values that went through serde_json's map come sorted).
fn tojson(value: minijinja::Value, kwargs: minijinja::value::Kwargs) -> Result<minijinja::Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let v = &value;
    let mut out = Vec::new();
    let written = match indent {
        Some(n) => {
            let pad = vec![b' '; n];
            serde::Serialize::serialize(
                &v,
                &mut serde_json::Serializer::with_formatter(
                    &mut out,
                    serde_json::ser::PrettyFormatter::with_indent(&pad),
                ),
            )
        }
        None => serde::Serialize::serialize(&v, &mut serde_json::Serializer::with_formatter(&mut out, PythonFormatter)),
    };
    written.map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(minijinja::Value::from_safe_string(String::from_utf8(out).expect("JSON is UTF-8")))
}

/// Python's default JSON separators on one line: `", "` and `": "`.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

fn strftime_now(fmt: &str) -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format_time(secs, fmt)
}

fn format_time(secs: u64, fmt: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let days = (secs / 86_400) as i64;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('b') => out.push_str(&MONTHS[(month - 1) as usize][..3]),
            Some('B') => out.push_str(MONTHS[(month - 1) as usize]),
            Some('H') => out.push_str(&format!("{h:02}")),
            Some('M') => out.push_str(&format!("{m:02}")),
            Some('S') => out.push_str(&format!("{s:02}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    #[test]
    fn chatml_renders_as_transformers_does() {
        let t = ChatTemplate::new(CHATML, None, Some("<|im_end|>".into())).unwrap();
        let msgs = [Message::new(Role::System, "Be brief."), Message::new(Role::User, "Hi")];
        assert_eq!(
            t.render(&msgs, true).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn llama3_style_template_with_python_methods_and_trimming() {
        let src = "{{ bos_token }}{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
        let t = ChatTemplate::new(src, Some("<|begin_of_text|>".into()), None).unwrap();
        let out = t.render(&[Message::new(Role::User, "  Hi  ")], true).unwrap();
        assert_eq!(out, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        let py = ChatTemplate::new(
            "{% if messages[0].content.startswith('x') %}{{ messages[0].content.strip().upper() }}{% endif %}",
            None,
            None,
        )
        .unwrap();
        assert_eq!(py.render(&[Message::new(Role::User, "xy ")], false).unwrap(), "XY");
    }

    #[test]
    fn raise_exception_and_syntax_errors_are_errors() {
        let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", None, None).unwrap();
        assert!(t.render(&[], false).unwrap_err().to_string().contains("roles must alternate"));
        assert!(ChatTemplate::new("{% for %}", None, None).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(format_time(0, "%d %b %Y"), "01 Jan 1970");
        assert_eq!(format_time(1_764_460_800, "%Y-%m-%d %H:%M %B"), "2025-11-30 00:00 November");
    }
}
