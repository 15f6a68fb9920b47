//! Markdown rendering of the document model (CommonMark with GitHub tables).

use crate::doc::{Block, Inline, Para, Table};

pub(crate) fn render(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Title(t) => out.push_str(&format!("# {}\n\n", escape(t))),
            Block::Heading(t) => out.push_str(&format!("## {}\n\n", escape(t))),
            Block::P(p) => out.push_str(&format!("{}\n\n", para(p))),
            Block::List(items) => {
                for item in items {
                    out.push_str(&format!("- {}\n", para(item)));
                }
                out.push('\n');
            }
            Block::Table(t) => table(t, &mut out),
            Block::Charts => out.push_str("Charts of these numbers are in `report.html`.\n\n"),
        }
    }
    out
}

fn table(t: &Table, out: &mut String) {
    let row = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    out.push_str(&row(t.head.iter().map(|h| escape(h)).collect()));
    out.push_str(&row(t.numeric.iter().map(|&n| if n { "---:" } else { "---" }.to_string()).collect()));
    for r in &t.rows {
        out.push_str(&row(r.iter().map(para).collect()));
    }
    out.push('\n');
}

fn para(p: &Para) -> String {
    p.0.iter()
        .map(|inline| match inline {
            Inline::Text(s) => escape(s),
            Inline::Strong(s) => format!("**{}**", escape(s)),
            Inline::Code(s) => code(s),
        })
        .collect()
}

/// Inline code; uses a longer fence when the text holds backticks. Pipes are escaped for tables.
fn code(s: &str) -> String {
    let s = one_line(s).replace('|', "\\|");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// Escapes characters markdown would read as markup; newlines become spaces so a table row stays one line.
fn escape(s: &str) -> String {
    let chars: Vec<char> = one_line(s).chars().collect();
    let mut out = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        let escape = match c {
            '\\' | '`' | '*' | '|' | '<' | '>' | '&' | '#' | '~' => true,
            // Brackets make a link only as `[..](..)`, `[..][..]` or `[..]: ..`; "[66–79]" stays plain.
            ']' => matches!(chars.get(i + 1), Some('(' | '[' | ':')),
            // An underscore between letters (two_hop) is never emphasis; elsewhere it may be.
            '_' => {
                let word = |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(|c| c.is_alphanumeric());
                !(word(i.checked_sub(1)) && word(Some(i + 1)))
            }
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("two_hop"), "two_hop");
        assert_eq!(escape("_x_"), "\\_x\\_");
        assert_eq!(escape("<b>a|b</b>"), "\\<b\\>a\\|b\\</b\\>");
        assert_eq!(escape("a\nb"), "a b");
        assert_eq!(escape("73.1 [66–79]"), "73.1 [66–79]");
        assert_eq!(escape("[x](y)"), "[x\\](y)");
        assert_eq!(code("a`b"), "`` a`b ``");
    }
}
