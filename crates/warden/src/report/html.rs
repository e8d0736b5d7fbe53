//! The report as one self-contained HTML file: inline CSS, the diagram as inline SVG, no script
//! and nothing fetched, so it can be mailed, archived or opened offline. Every text is escaped.

use super::Report;
use super::sections::{Section, sections, summary};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#1d1d1f;max-width:1600px}\
h1{font-size:24px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ccc;padding-bottom:4px}\
table{border-collapse:collapse;margin:10px 0;font-size:12px}th,td{border:1px solid #ccc;padding:4px 6px;\
vertical-align:top;text-align:left}th{background:#f0f0f3}td{word-break:break-word;max-width:420px}\
.notes{background:#fff4e5;border:1px solid #f0b429;padding:8px 12px}.diagram{overflow-x:auto}\
nav a{margin-right:12px}li{margin:3px 0}";

/// `text` escaped for HTML and SVG text and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters have no place in a report; shown as their escape.
            c if c.is_control() && c != '\n' => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// The whole HTML document.
pub fn render(report: &Report) -> String {
    let sections = sections(report);
    let mut h = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // No script, no fetch: the policy says so to the browser too.
    h.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n",
    );
    h.push_str("<title>Warden security review</title>\n");
    h.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    h.push_str("<h1>Warden security review</h1>\n");
    h.push_str(&format!("<p id=\"summary\">{}</p>\n", esc(&summary(report))));
    if !report.notes.is_empty() {
        h.push_str("<div class=\"notes\"><strong>Notes</strong><ul>\n");
        for n in &report.notes {
            h.push_str(&format!("<li>{}</li>\n", esc(n)));
        }
        h.push_str("</ul></div>\n");
    }
    h.push_str("<nav>");
    for s in &sections {
        h.push_str(&format!("<a href=\"#{}\">{}</a>", s.id, esc(s.title)));
    }
    h.push_str("</nav>\n");
    for s in &sections {
        section(&mut h, s, report);
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn section(h: &mut String, s: &Section, report: &Report) {
    h.push_str(&format!("<section id=\"{}\">\n<h2>{}</h2>\n", s.id, esc(s.title)));
    for p in &s.text {
        h.push_str(&format!("<p>{}</p>\n", esc(p)));
    }
    if s.diagram {
        h.push_str("<div class=\"diagram\">\n");
        h.push_str(&super::svg::diagram(report));
        h.push_str("</div>\n");
    }
    if !s.items.is_empty() {
        let tag = if s.ordered { "ol" } else { "ul" };
        h.push_str(&format!("<{tag}>\n"));
        for i in &s.items {
            h.push_str(&format!("<li>{}</li>\n", esc(i)));
        }
        h.push_str(&format!("</{tag}>\n"));
    }
    for t in &s.tables {
        h.push_str(&format!("<table id=\"{}\">\n<thead><tr>", t.id));
        for c in &t.header {
            h.push_str(&format!("<th>{}</th>", esc(c)));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        if t.rows.is_empty() {
            h.push_str(&format!("<tr><td colspan=\"{}\">none</td></tr>\n", t.header.len().max(1)));
        }
        for row in &t.rows {
            h.push_str("<tr>");
            for c in row {
                h.push_str(&format!("<td>{}</td>", esc(c)));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table>\n");
    }
    h.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_escaped() {
        assert_eq!(esc("<img src=x onerror=alert(1)>"), "&lt;img src=x onerror=alert(1)&gt;");
        assert_eq!(esc("a\"b'c&d"), "a&quot;b&#39;c&amp;d");
        assert_eq!(esc("bell\u{7}\u{1b}[31m"), "bell\\u{7}\\u{1b}[31m");
    }
}
