//! The three ways a notice is written: generic JSON, a Slack incoming-webhook message, and a
//! Microsoft Teams message carrying an Adaptive Card.
//!
//! Each renderer reads some text as markup, so each format keeps names and reasons (already
//! [`super::clean`]ed) from becoming markup:
//! - Slack: `&`, `<` and `>` are escaped (so no `<!channel>`, `<@U…>` or `<url|text>` can be
//!   formed), and every text object is `verbatim`, so Slack does not turn bare URLs, channel
//!   names or `@here` into links or mentions; the fallback `text` holds Warden's words and the
//!   configured server name only.
//! - Teams: names and reasons go in `RichTextBlock` text runs, which Adaptive Cards never read
//!   as markdown (no link, no emphasis); `TextBlock` and `FactSet` (which are markdown) hold
//!   only Warden's own words, times and numbers.
//! - JSON: plain strings; the receiver decides how to show them.

use super::{Notice, WebhookFormat};
use serde_json::{Value, json};

/// The body POSTed to a webhook of `format` for `notice`, with its console `link`.
pub fn body(format: WebhookFormat, notice: &Notice, link: Option<&str>) -> Value {
    match format {
        WebhookFormat::Json => generic(notice, link),
        WebhookFormat::Slack => slack(notice, link),
        WebhookFormat::Teams => teams(notice, link),
    }
}

/// `{"source": "warden", "event", "kind", "title", "text", "time", "link", ...facts}`.
fn generic(n: &Notice, link: Option<&str>) -> Value {
    let mut body = json!({
        "source": "warden",
        "event": n.event,
        "kind": n.kind,
        "title": n.title(),
        "text": n.summary(),
        "time": n.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "link": link,
    });
    let fields = [
        ("server", &n.server),
        ("item", &n.item),
        ("item_kind", &n.item_kind),
        ("subject", &n.subject),
        ("tenant", &n.tenant),
        ("why", &n.why),
        ("approval_id", &n.approval_id),
    ];
    for (key, value) in fields {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    if let Some((value, threshold)) = n.reading {
        body["value"] = json!(value);
        body["threshold"] = json!(threshold);
    }
    body
}

/// Text for Slack's mrkdwn: `&`, `<` and `>` escaped, as Slack asks.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A Slack message: fallback `text`, then blocks (header, summary, fields, time, a button).
fn slack(n: &Notice, link: Option<&str>) -> Value {
    let mrkdwn = |text: String| json!({ "type": "mrkdwn", "text": text, "verbatim": true });
    let fallback = match &n.server {
        Some(server) => format!("Warden: {} ({})", n.title(), slack_escape(server)),
        None => format!("Warden: {}", n.title()),
    };
    let facts = n.facts();
    // A section holds at most ten fields; the event is the header already.
    let fields: Vec<Value> = facts
        .iter()
        .filter(|f| f.label != "Event" && f.label != "Time")
        .take(10)
        .map(|f| mrkdwn(format!("*{}*\n{}", f.label, slack_escape(&f.value))))
        .collect();
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": n.title(), "emoji": false } }),
        json!({ "type": "section", "text": mrkdwn(slack_escape(&n.summary())) }),
    ];
    if !fields.is_empty() {
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    let when = n.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    blocks.push(json!({ "type": "context", "elements": [mrkdwn(format!("Warden · {}", slack_escape(&when)))] }));
    if let Some(link) = link {
        blocks.push(json!({ "type": "actions", "elements": [{
            "type": "button",
            "text": { "type": "plain_text", "text": "Open in the console", "emoji": false },
            "url": link,
        }]}));
    }
    json!({ "text": fallback, "blocks": blocks, "unfurl_links": false, "unfurl_media": false })
}

/// A Teams message with one Adaptive Card (1.4) attachment.
fn teams(n: &Notice, link: Option<&str>) -> Value {
    // Plain text: a text run is never read as markdown.
    let plain = |label: Option<&str>, text: &str| {
        let mut inlines = Vec::new();
        if let Some(label) = label {
            inlines.push(json!({ "type": "TextRun", "text": format!("{label}: "), "weight": "Bolder" }));
        }
        inlines.push(json!({ "type": "TextRun", "text": text }));
        json!({ "type": "RichTextBlock", "inlines": inlines })
    };
    let facts = n.facts();
    let ours: Vec<Value> =
        facts.iter().filter(|f| f.ours).map(|f| json!({ "title": f.label, "value": f.value })).collect();
    let mut body = vec![
        json!({ "type": "TextBlock", "text": n.title(), "weight": "Bolder", "size": "Medium", "wrap": true }),
        plain(None, &n.summary()),
    ];
    body.extend(facts.iter().filter(|f| !f.ours).map(|f| plain(Some(f.label), &f.value)));
    body.push(json!({ "type": "FactSet", "facts": ours }));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if let Some(link) = link {
        card["actions"] = json!([{ "type": "Action.OpenUrl", "title": "Open in the console", "url": link }]);
    }
    json!({
        "type": "message",
        "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card }],
    })
}

#[cfg(test)]
mod tests {
    use super::super::{NotifyEvent, clean};
    use super::*;
    use chrono::{TimeZone, Utc};

    fn hostile() -> Notice {
        Notice {
            event: NotifyEvent::Drift,
            kind: "definition_held",
            server: Some("odd_server".into()),
            item: Some(clean(
                "pwn<!channel> <@U123> <https://evil.example|click> [x](https://evil.example) \u{202E}gnp.exe",
            )),
            item_kind: Some("tool".into()),
            subject: None,
            tenant: None,
            why: Some(clean("new: it is new & this server's pins are strict **bold** _it_ @here")),
            approval_id: None,
            reading: None,
            time: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        }
    }

    fn approval() -> Notice {
        Notice {
            event: NotifyEvent::Approval,
            kind: "approval_requested",
            server: Some("files".into()),
            item: Some("write_file".into()),
            item_kind: Some("tool".into()),
            subject: Some("alice".into()),
            tenant: Some("acme".into()),
            why: Some("policy writes".into()),
            approval_id: Some("apr_1".into()),
            reading: None,
            time: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        }
    }

    /// Every string in a JSON value.
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }

    #[test]
    fn json_carries_each_fact_and_the_link() {
        let link = "https://w.example/console/#/approvals/apr_1";
        let b = body(WebhookFormat::Json, &approval(), Some(link));
        assert_eq!(b["source"], "warden");
        assert_eq!(b["event"], "approval");
        assert_eq!(b["kind"], "approval_requested");
        assert_eq!(b["title"], "Approval needed");
        assert_eq!(b["server"], "files");
        assert_eq!(b["item"], "write_file");
        assert_eq!(b["subject"], "alice");
        assert_eq!(b["tenant"], "acme");
        assert_eq!(b["approval_id"], "apr_1");
        assert_eq!(b["link"], link);
        assert_eq!(b["time"], "2026-01-02T03:04:05.000Z");
        assert!(b["text"].as_str().unwrap().contains("files/write_file by alice"), "{b}");
        let none = body(WebhookFormat::Json, &approval(), None);
        assert!(none["link"].is_null(), "{none}");
    }

    #[test]
    fn slack_has_text_and_blocks_and_a_button_to_the_console() {
        let link = "https://w.example/console/#/approvals/apr_1";
        let b = body(WebhookFormat::Slack, &approval(), Some(link));
        assert_eq!(b["text"], "Warden: Approval needed (files)");
        let blocks = b["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "Approval needed");
        let fields = blocks[2]["fields"].to_string();
        assert!(fields.contains("*Caller*\\nalice") && fields.contains("*Tenant*\\nacme"), "{fields}");
        let button = &blocks.last().unwrap()["elements"][0];
        assert_eq!(button["url"], link);
        assert_eq!(b["unfurl_links"], false);
        let none = body(WebhookFormat::Slack, &approval(), None);
        assert!(!none.to_string().contains("actions"), "no console, no button: {none}");
    }

    #[test]
    fn a_hostile_name_makes_no_mention_link_or_markup_in_slack() {
        let b = body(WebhookFormat::Slack, &hostile(), Some("https://w.example/console/#/reviews"));
        let mut texts = Vec::new();
        strings(&b, &mut texts);
        for t in &texts {
            assert!(!t.contains('<') && !t.contains('>'), "no Slack control sequence can be formed: {t}");
            assert!(!t.contains('\u{202E}'), "the bidi override is written out: {t}");
        }
        let all = texts.join("\n");
        assert!(all.contains("pwn&lt;!channel&gt;"), "{all}");
        assert!(all.contains("&lt;@U123&gt;") && all.contains("&lt;https://evil.example|click&gt;"), "{all}");
        assert!(all.contains("\\u{202e}gnp.exe"), "{all}");
        assert!(all.contains("new &amp; this"), "{all}");
        // Every text object is verbatim: Slack links and mentions nothing by itself.
        let verbatim = |v: &Value| v["type"] == "mrkdwn" && v["verbatim"] == true;
        let blocks = b["blocks"].as_array().unwrap();
        assert!(verbatim(&blocks[1]["text"]), "{b}");
        assert!(blocks[2]["fields"].as_array().unwrap().iter().all(verbatim), "{b}");
        assert!(!b["text"].as_str().unwrap().contains("pwn"), "the fallback text names no tool: {b}");
    }

    #[test]
    fn teams_is_an_adaptive_card_message_with_names_outside_markdown() {
        let link = "https://w.example/console/#/reviews";
        let b = body(WebhookFormat::Teams, &hostile(), Some(link));
        assert_eq!(b["type"], "message");
        let attachment = &b["attachments"][0];
        assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(card["actions"][0]["url"], link);
        let body = card["body"].as_array().unwrap();
        assert_eq!(body[0]["type"], "TextBlock");
        assert_eq!(body[0]["text"], "Definition held for review");
        // Markdown is read in TextBlocks and FactSets: only Warden's own words go there.
        for element in body.iter().filter(|e| e["type"] == "TextBlock" || e["type"] == "FactSet") {
            let text = element.to_string();
            assert!(!text.contains("pwn") && !text.contains("evil") && !text.contains("odd_server"), "{text}");
        }
        let facts = body.iter().find(|e| e["type"] == "FactSet").unwrap();
        assert_eq!(facts["facts"][0]["title"], "Event");
        assert_eq!(facts["facts"].as_array().unwrap().last().unwrap()["value"], "2026-01-02T03:04:05Z");
        let rich: Vec<&Value> = body.iter().filter(|e| e["type"] == "RichTextBlock").collect();
        let tool = rich.iter().find(|e| e["inlines"][0]["text"] == "Tool: ").expect("the tool, as plain text");
        let name = tool["inlines"][1]["text"].as_str().unwrap();
        assert!(name.starts_with("pwn<!channel>") && name.contains("\\u{202e}gnp.exe"), "{name}");
        assert!(!b.to_string().contains('\u{202E}'), "{b}");
        let none = super::body(WebhookFormat::Teams, &hostile(), None);
        assert!(none["attachments"][0]["content"]["actions"].is_null(), "{none}");
    }

    #[test]
    fn a_gate_reading_is_shown_in_each_format() {
        let gate = warden_store::gates::GateResult {
            name: "unapproved<writes>".into(),
            value: 0.25,
            threshold: 0.01,
            tripped: true,
            detail: "1 of 4 allowed calls (25.00%) in the last 15m".into(),
        };
        let n = Notice::gate(&gate, Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
        let j = body(WebhookFormat::Json, &n, None);
        assert_eq!((j["value"].as_f64(), j["threshold"].as_f64()), (Some(0.25), Some(0.01)));
        assert_eq!(j["item"], "unapproved<writes>");
        let s = body(WebhookFormat::Slack, &n, None).to_string();
        assert!(s.contains("unapproved&lt;writes&gt;") && s.contains("0.2500"), "{s}");
        let t = body(WebhookFormat::Teams, &n, None);
        let facts = t["attachments"][0]["content"]["body"].as_array().unwrap().last().unwrap().to_string();
        assert!(facts.contains("\"Value\"") && facts.contains("0.0100"), "{facts}");
    }
}
