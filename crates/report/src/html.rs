//! HTML rendering: one self-contained page (inline CSS and SVG, no script, no external asset).

use crate::chart;
use crate::doc::{Block, Inline, Para, Table};
use crate::LadderReport;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1b1f24;background:#fff}
main{max-width:1440px;margin:0 auto;padding:1.5rem}
h1{font-size:1.6rem;margin:.2rem 0 .6rem}
h2{font-size:1.2rem;margin:1.8rem 0 .6rem;border-bottom:1px solid #d8dee4;padding-bottom:.2rem}
p,li{line-height:1.45}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;background:#f3f5f7;padding:0 .25em;border-radius:3px;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.9rem;margin:.4rem 0}
th,td{border:1px solid #d8dee4;padding:.3rem .55rem;vertical-align:top}
th{background:#f3f5f7;text-align:left}
table.accuracy td:nth-child(2){min-width:13rem}
td.num,th.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafbfc}
figure{margin:.6rem 0 1rem}
figure svg{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#57606a}
.charts{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.error{color:#b00020}
";

pub(crate) fn render(report: &LadderReport, blocks: &[Block]) -> String {
    let title = blocks
        .iter()
        .find_map(|b| match b {
            Block::Title(t) => Some(t.as_str()),
            _ => None,
        })
        .unwrap_or("ascent ladder report");
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n", escape(title)));
    for block in blocks {
        match block {
            Block::Title(t) => out.push_str(&format!("<h1>{}</h1>\n", escape(t))),
            Block::Heading(t) => out.push_str(&format!("<h2>{}</h2>\n", escape(t))),
            Block::P(p) => out.push_str(&format!("<p>{}</p>\n", para(p))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", para(item)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => table(t, &mut out),
            Block::Charts => charts(report, &mut out),
        }
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn charts(report: &LadderReport, out: &mut String) {
    if report.rungs.is_empty() {
        return;
    }
    out.push_str("<div class=\"charts\">\n");
    let figures = [
        (
            chart::accuracy_bars(report),
            "Held-out accuracy per task family, one bar per rung; whiskers: 95% Wilson interval.",
        ),
        (
            chart::mean_and_recall(report),
            "Mean held-out accuracy per rung, with the recall probe on train and held-out people.",
        ),
    ];
    for (svg, caption) in figures {
        out.push_str("<figure>\n");
        match svg {
            Ok(svg) => out.push_str(&svg),
            Err(e) => out.push_str(&format!("<p class=\"error\">chart could not be drawn: {}</p>\n", escape(&e))),
        }
        out.push_str(&format!("<figcaption>{}</figcaption>\n</figure>\n", escape(caption)));
    }
    out.push_str("</div>\n");
}

fn table(t: &Table, out: &mut String) {
    let class = |numeric: bool| if numeric { " class=\"num\"" } else { "" };
    out.push_str(&format!("<div class=\"scroll\"><table class=\"{}\">\n<thead><tr>", t.name));
    for (i, h) in t.head.iter().enumerate() {
        out.push_str(&format!("<th{}>{}</th>", class(t.numeric.get(i).copied().unwrap_or(false)), escape(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            out.push_str(&format!("<td{}>{}</td>", class(t.numeric.get(i).copied().unwrap_or(false)), para(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
}

fn para(p: &Para) -> String {
    p.0.iter()
        .map(|inline| match inline {
            Inline::Text(s) => escape(s),
            Inline::Strong(s) => format!("<strong>{}</strong>", escape(s)),
            Inline::Code(s) => format!("<code>{}</code>", escape(s)),
        })
        .collect()
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
