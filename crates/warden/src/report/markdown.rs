//! The report as Markdown: the same sections as the HTML, the diagram as a list of what crosses
//! each boundary (the SVG is in the HTML). Table cells have their pipes and line breaks escaped,
//! and HTML in any text is neutralized, so a hostile name cannot break out of a cell or inject
//! markup into a renderer.

use super::Report;
use super::sections::{sections, summary};

/// `text` fit for Markdown: pipes, backticks and angle brackets escaped, on one line.
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push_str("\\`"),
            // No link or image from a hostile name (`![](https://…)` would be fetched).
            '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// The whole Markdown document.
pub fn render(report: &Report) -> String {
    let mut m = String::from("# Warden security review\n\n");
    m.push_str(&md(&summary(report)));
    m.push_str("\n\n");
    if !report.notes.is_empty() {
        m.push_str("**Notes**\n\n");
        for n in &report.notes {
            m.push_str(&format!("- {}\n", md(n)));
        }
        m.push('\n');
    }
    for s in sections(report) {
        m.push_str(&format!("## {}\n\n", s.title));
        for p in &s.text {
            m.push_str(&format!("{}\n\n", md(p)));
        }
        if s.diagram {
            m.push_str(&diagram(report));
        }
        for (i, item) in s.items.iter().enumerate() {
            if s.ordered {
                m.push_str(&format!("{}. {}\n", i + 1, md(item)));
            } else {
                m.push_str(&format!("- {}\n", md(item)));
            }
        }
        if !s.items.is_empty() {
            m.push('\n');
        }
        for t in &s.tables {
            let header: Vec<String> = t.header.iter().map(|c| md(c)).collect();
            m.push_str(&format!("| {} |\n", header.join(" | ")));
            m.push_str(&format!("|{}\n", "---|".repeat(t.header.len().max(1))));
            if t.rows.is_empty() {
                m.push_str(&format!("| none |{}\n", " |".repeat(t.header.len().saturating_sub(1))));
            }
            for row in &t.rows {
                let cells: Vec<String> = row.iter().map(|c| md(c)).collect();
                m.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            m.push('\n');
        }
    }
    m
}

/// The architecture as a list (the SVG diagram is in the HTML report).
fn diagram(report: &Report) -> String {
    let mut m = String::from("_The diagram itself is the SVG in the HTML report; in outline:_\n\n");
    m.push_str("- **Callers** (boundary B1 → Warden: client tokens, sessions, calls and results):\n");
    for p in &report.principals {
        m.push_str(&format!("  - {} ({:?}, {})\n", md(&p.label), p.principal.class, md(&p.credential)));
    }
    m.push_str("- **Warden gateway**: authenticate, authorize (Cedar), approve, sanitize, pin, audit\n");
    m.push_str("- **Servers** (boundary B2: injected credentials out; tool metadata and output in), each reaching its own systems (B3):\n");
    for s in &report.servers {
        m.push_str(&format!(
            "  - {}: {}, sandbox {}, {}, credential {}\n",
            md(&s.name),
            s.transport,
            s.sandbox,
            if s.trusted { "trusted annotations" } else { "untrusted" },
            md(&s.credential)
        ));
    }
    m.push('\n');
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_be_broken_out_of() {
        assert_eq!(md("a|b\n<script>`x`"), "a\\|b &lt;script&gt;\\`x\\`");
        assert_eq!(md("![](https://attacker.example/x)"), "!\\[\\](https://attacker.example/x)", "no image beacon");
    }
}
