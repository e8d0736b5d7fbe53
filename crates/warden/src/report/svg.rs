//! The architecture and trust-boundary diagram, as inline SVG drawn from the configuration:
//! callers on the left, Warden in the middle, each configured server (transport, sandbox,
//! trusted or not, credential), and what each server reaches beyond it. Dashed lines are the
//! trust boundaries, each labelled with what crosses it.
//!
//! Every text comes from configuration or the audit log and is escaped; long texts are cut to
//! fit their box (the tables carry them whole).

use super::Report;
use super::html::esc;

const WIDTH: u32 = 1180;
const ROW: u32 = 92;
const TOP: u32 = 96;
/// Characters that fit one line of a box at the diagram's font size.
const LINE: usize = 34;

/// The diagram, as an `<svg>` element.
pub fn diagram(report: &Report) -> String {
    let callers: Vec<(String, String)> = report
        .principals
        .iter()
        .map(|p| {
            let class = format!("{:?}", p.principal.class).to_lowercase();
            let client = p.seen_as.as_ref().and_then(|k| report.audit.callers.get(k)).and_then(|c| c.client_id.clone());
            let second = match client {
                Some(c) => format!("{class}, client {c}"),
                None => format!("{class}, {}", p.credential),
            };
            (p.label.clone(), second)
        })
        .collect();
    let rows = callers.len().max(report.servers.len()).max(1) as u32;
    let height = TOP + rows * ROW + 40;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"architecture-diagram\" role=\"img\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <title>Architecture and trust boundaries</title>\n\
         <defs><marker id=\"arrow\" markerWidth=\"8\" markerHeight=\"8\" refX=\"7\" refY=\"4\" orient=\"auto\">\
         <path d=\"M0,0 L8,4 L0,8 z\" fill=\"#555\"/></marker></defs>\n"
    );
    // Columns and the boundaries between them.
    let (cx, wx, sx, dx) = (16, 330, 620, 950);
    let boundaries = [
        (300, "B1 client → Warden", "client tokens, sessions, calls and results"),
        (590, "B2 Warden → servers", "injected credentials out; tool metadata and output in"),
        (920, "B3 servers → systems", "the server's own access: files, network, APIs"),
    ];
    for (x, title, crossing) in boundaries {
        s.push_str(&format!(
            "<line x1=\"{x}\" y1=\"40\" x2=\"{x}\" y2=\"{}\" stroke=\"#b00\" stroke-dasharray=\"6 4\"/>\n\
             <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-weight=\"bold\" fill=\"#b00\">{}</text>\n\
             <text x=\"{}\" y=\"34\" text-anchor=\"middle\" font-size=\"10\" fill=\"#b00\">{}</text>\n",
            height - 10,
            x,
            esc(title),
            x,
            esc(crossing)
        ));
    }
    s.push_str(&heading(cx + 130, "Callers (principals)"));
    s.push_str(&heading(sx + 140, "Configured servers"));
    s.push_str(&heading(dx + 110, "Downstream systems"));
    for (i, (label, second)) in callers.iter().enumerate() {
        let y = TOP + i as u32 * ROW;
        s.push_str(&boxed(cx, y, 260, 56, "#eef3fb", "#4a6fa5", &[label, second]));
    }
    // Warden spans the rows.
    let wh = rows * ROW - 36;
    let policies = format!("{} tools, {} principals evaluated", report.tools.len(), report.principals.len());
    let chain = format!("audit: {}", report.audit.chain);
    s.push_str(&boxed(
        wx,
        TOP,
        240,
        wh.max(80),
        "#fff7e0",
        "#a67c00",
        &["Warden gateway", "authenticate · authorize (Cedar)", "approve · sanitize · pin", &policies, &chain],
    ));
    let mid = TOP + wh.max(80) / 2;
    for i in 0..callers.len() {
        let y = TOP + i as u32 * ROW + 28;
        s.push_str(&arrow(cx + 260, y, wx, mid));
    }
    for (i, srv) in report.servers.iter().enumerate() {
        let y = TOP + i as u32 * ROW;
        let trust = if srv.trusted { "trusted annotations" } else { "untrusted" };
        let (fill, stroke) = if srv.trusted { ("#eefaf0", "#2e7d32") } else { ("#fdeeee", "#b00020") };
        let line2 = format!("{} · sandbox {} · {trust}", srv.transport, srv.sandbox);
        let line3 = format!("credential: {}", srv.credential);
        s.push_str(&boxed(sx, y, 280, 70, fill, stroke, &[&srv.name, &line2, &line3]));
        s.push_str(&arrow(wx + 240, mid, sx, y + 35));
        let downstream = downstream(srv);
        s.push_str(&boxed(dx, y + 8, 220, 54, "#f4f4f4", "#777", &[&downstream.0, &downstream.1]));
        s.push_str(&arrow(sx + 280, y + 35, dx, y + 35));
    }
    s.push_str("</svg>\n");
    s
}

/// What a server reaches beyond Warden, in two lines.
fn downstream(srv: &super::ServerView) -> (String, String) {
    if srv.transport == "http" {
        let rest = srv.endpoint.split_once("://").map_or(srv.endpoint.as_str(), |(_, r)| r);
        let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        // Credentials in the URL's authority are not the diagram's to show.
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        return (format!("remote: {host}"), "its own backends".to_owned());
    }
    let files = if srv.sandbox == "off" {
        "all of the user's files".to_owned()
    } else if srv.sandbox_write.is_empty() {
        format!("read {}", if srv.sandbox_read.is_empty() { "-".to_owned() } else { srv.sandbox_read.join(", ") })
    } else {
        format!("write {}", srv.sandbox_write.join(", "))
    };
    let net = match (srv.sandbox, srv.egress.is_empty()) {
        ("off", _) => "network: unrestricted".to_owned(),
        (_, true) => "network: none".to_owned(),
        (_, false) => format!("network: {}", srv.egress.join(", ")),
    };
    (files, net)
}

fn heading(x: u32, text: &str) -> String {
    format!("<text x=\"{x}\" y=\"72\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n", esc(text))
}

/// A rounded box with lines of text; the first line bold.
fn boxed(x: u32, y: u32, w: u32, h: u32, fill: &str, stroke: &str, lines: &[&str]) -> String {
    let mut s = format!(
        "<g><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\"/>\n"
    );
    let fit = (w as usize / 7).min(LINE + 6);
    for (i, line) in lines.iter().enumerate() {
        let weight = if i == 0 { " font-weight=\"bold\"" } else { "" };
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\"{weight}>{}</text>\n",
            x + 8,
            y + 18 + i as u32 * 15,
            esc(&cut(line, fit))
        ));
    }
    s.push_str("</g>\n");
    s
}

fn arrow(x1: u32, y1: u32, x2: u32, y2: u32) -> String {
    format!("<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#555\" marker-end=\"url(#arrow)\"/>\n")
}

/// `text` cut to `n` characters, with an ellipsis when cut.
fn cut(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_escape_what_configuration_names() {
        let hostile = "</text><script>alert(1)</script>&\"'";
        let svg = boxed(0, 0, 400, 50, "#fff", "#000", &[hostile]);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("</text><"), "{svg}");
        assert!(svg.contains("&lt;/text&gt;&lt;script&gt;"), "{svg}");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
