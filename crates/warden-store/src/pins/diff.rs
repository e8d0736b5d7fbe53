//! What changed between a pinned definition and a candidate, for `warden pins diff`.
//!
//! The diff lists changed leaves by JSON pointer; the rendering is what a person reads before
//! accepting, so it must not hide anything: control characters, zero-width and bidirectional
//! marks, tag characters and other invisible code points are written as `\u{...}` escapes,
//! and a literal backslash in a string as `\\`, so an escape cannot be faked either.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// Beyond this depth a subtree is compared, and shown, whole. Pinned definitions are at most
/// 128 deep (their canonical form refuses more); this bounds recursion on anything else.
const MAX_DEPTH: usize = 128;

/// Lines of unchanged text shown around a changed block of a string.
const CONTEXT: usize = 2;

/// One changed leaf: a scalar, an empty array or object, or a subtree past the depth limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// RFC 6901 JSON pointer (`~` as `~0`, `/` as `~1`); `""` for the whole value.
    pub pointer: String,
    /// `None` when the leaf was added.
    pub old: Option<Value>,
    /// `None` when the leaf was removed.
    pub new: Option<Value>,
}

/// A path segment; indexes sort as numbers, so `/10` follows `/9`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Index(usize),
    Key(String),
}

type Leaves<'a> = BTreeMap<Vec<Segment>, &'a Value>;

/// Every leaf that differs between `old` and `new`, sorted by path. A value whose type
/// changed (say a string that became an object) shows as its old leaves removed and its new
/// leaves added.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let (mut old_leaves, mut new_leaves) = (Leaves::new(), Leaves::new());
    leaves(old, &mut Vec::new(), &mut old_leaves);
    leaves(new, &mut Vec::new(), &mut new_leaves);
    let mut paths: Vec<&Vec<Segment>> = old_leaves.keys().chain(new_leaves.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| {
            let (before, after) = (old_leaves.get(path).copied(), new_leaves.get(path).copied());
            // An empty array or object that gained members is told by the members added.
            let filled = |leaf: Option<&Value>, other: &Value| {
                matches!(
                    (leaf, at(other, path)),
                    (Some(Value::Array(_)), Some(Value::Array(_))) | (Some(Value::Object(_)), Some(Value::Object(_)))
                )
            };
            let changed = before != after && !filled(before, new) && !filled(after, old);
            changed.then(|| Change { pointer: pointer(path), old: before.cloned(), new: after.cloned() })
        })
        .collect()
}

fn leaves<'a>(value: &'a Value, path: &mut Vec<Segment>, out: &mut Leaves<'a>) {
    match value {
        Value::Array(items) if !items.is_empty() && path.len() < MAX_DEPTH => {
            for (i, item) in items.iter().enumerate() {
                path.push(Segment::Index(i));
                leaves(item, path, out);
                path.pop();
            }
        }
        Value::Object(members) if !members.is_empty() && path.len() < MAX_DEPTH => {
            for (name, member) in members {
                path.push(Segment::Key(name.clone()));
                leaves(member, path, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone(), value);
        }
    }
}

/// The value at `path` in `root`, if there is one.
fn at<'a>(root: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter().try_fold(root, |value, segment| match (value, segment) {
        (Value::Array(items), Segment::Index(i)) => items.get(*i),
        (Value::Object(members), Segment::Key(name)) => members.get(name),
        _ => None,
    })
}

fn pointer(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        out.push('/');
        match segment {
            Segment::Index(i) => {
                let _ = write!(out, "{i}");
            }
            Segment::Key(name) => out.push_str(&name.replace('~', "~0").replace('/', "~1")),
        }
    }
    out
}

/// The changes as text for a person to review: a `@ pointer` header per change, then `-`
/// lines for the old value and `+` lines for the new. Strings are compared line by line
/// (unchanged lines around the change shown with two spaces, at most two either side); other
/// values are shown as JSON. Invisible characters are escaped everywhere, pointers included.
pub fn render_diff(changes: &[Change]) -> String {
    let mut out = String::new();
    for change in changes {
        let pointer = if change.pointer.is_empty() { "(root)" } else { &change.pointer };
        let _ = writeln!(out, "@ {}", visible(pointer, true));
        match (&change.old, &change.new) {
            (Some(Value::String(old)), Some(Value::String(new))) => render_text(&mut out, old, new),
            (old, new) => {
                for (sign, value) in [('-', old), ('+', new)] {
                    if let Some(value) = value {
                        render_value(&mut out, sign, value);
                    }
                }
            }
        }
    }
    out
}

fn render_value(out: &mut String, sign: char, value: &Value) {
    match value {
        Value::String(text) => {
            for line in text.split('\n') {
                let _ = writeln!(out, "{sign} {}", visible(line, true));
            }
        }
        // JSON text already escapes controls, quotes and backslashes; the rest is escaped here.
        other => {
            let _ = writeln!(out, "{sign} {}", visible(&other.to_string(), false));
        }
    }
}

/// A line diff: the common leading and trailing lines, and the changed block between.
fn render_text(out: &mut String, old: &str, new: &str) {
    let old: Vec<&str> = old.split('\n').collect();
    let new: Vec<&str> = new.split('\n').collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old.iter().rev().zip(new.iter().rev()).take(max_suffix).take_while(|(a, b)| a == b).count();
    let skipped_before = prefix.saturating_sub(CONTEXT);
    if skipped_before > 0 {
        let _ = writeln!(out, "  ... {skipped_before} unchanged line(s)");
    }
    for line in &old[skipped_before..prefix] {
        let _ = writeln!(out, "  {}", visible(line, true));
    }
    for line in &old[prefix..old.len() - suffix] {
        let _ = writeln!(out, "- {}", visible(line, true));
    }
    for line in &new[prefix..new.len() - suffix] {
        let _ = writeln!(out, "+ {}", visible(line, true));
    }
    let after = &new[new.len() - suffix..];
    for line in after.iter().take(CONTEXT) {
        let _ = writeln!(out, "  {}", visible(line, true));
    }
    if after.len() > CONTEXT {
        let _ = writeln!(out, "  ... {} unchanged line(s)", after.len() - CONTEXT);
    }
}

/// `text` as a terminal may print it for a reviewer: every character it would not show plainly
/// (controls, escapes, zero-width, bidi, tag characters) written as `\u{hex}`.
pub fn escaped(text: &str) -> String {
    visible(text, false)
}

/// `text` with every character a terminal would not show plainly written as `\u{hex}`, and
/// (for raw strings) each backslash doubled so a written-out escape cannot pass for one.
fn visible(text: &str, escape_backslash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' && escape_backslash {
            out.push_str("\\\\");
        } else if hidden(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that are invisible, reorder text, or drive the terminal.
fn hidden(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00..=0x1F          // C0 controls, including ESC (ANSI sequences), tab and CR
        | 0x7F..=0x9F        // DEL and C1 controls (including the 8-bit CSI)
        | 0xAD               // soft hyphen
        | 0x034F             // combining grapheme joiner
        | 0x061C             // Arabic letter mark
        | 0x115F | 0x1160    // Hangul fillers
        | 0x17B4 | 0x17B5    // Khmer inherent vowels
        | 0x180B..=0x180F    // Mongolian variation selectors and vowel separator
        | 0x200B..=0x200F    // zero-width space, joiners, LRM, RLM
        | 0x2028..=0x202E    // line/paragraph separators, bidi embeddings and overrides
        | 0x2060..=0x206F    // word joiner, invisible operators, bidi isolates, deprecated formats
        | 0x3164             // Hangul filler
        | 0xFE00..=0xFE0F    // variation selectors
        | 0xFEFF             // zero-width no-break space (BOM)
        | 0xFFA0             // halfwidth Hangul filler
        | 0xFFF0..=0xFFFB    // unassigned specials, interlinear annotation
        | 0x1D173..=0x1D17A  // musical formatting
        | 0xE0000..=0xE007F  // tag characters (ASCII smuggling)
        | 0xE0100..=0xE01EF  // variation selectors supplement
        | 0xF0000..=0x10FFFF // private use planes
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_have_no_changes() {
        let value = json!({"a": [1, {"b": "x"}], "c": {}});
        assert!(diff(&value, &value.clone()).is_empty());
    }

    #[test]
    fn lists_changed_leaves_by_pointer_in_order() {
        let old =
            json!({"description": "Reads.", "schema": {"a/b": 1, "m~n": [1, 2]}, "list": [0,1,2,3,4,5,6,7,8,9,10]});
        let mut new = old.clone();
        new["description"] = json!("Reads!");
        new["schema"]["a/b"] = json!(2);
        new["schema"]["m~n"] = json!([1]);
        new["list"][10] = json!(11);
        new["list"][2] = json!(-2);
        new["added"] = json!({"x": true, "e": []});
        let changes = diff(&old, &new);
        let pointers: Vec<&str> = changes.iter().map(|c| c.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/added/e", "/added/x", "/description", "/list/2", "/list/10", "/schema/a~1b", "/schema/m~0n/1"]
        );
        assert_eq!(changes[0], Change { pointer: "/added/e".into(), old: None, new: Some(json!([])) });
        assert_eq!(changes[6], Change { pointer: "/schema/m~0n/1".into(), old: Some(json!(2)), new: None });
    }

    #[test]
    fn a_type_change_removes_old_leaves_and_adds_new_ones() {
        let changes = diff(&json!({"a": "text"}), &json!({"a": {"b": 1}}));
        assert_eq!(
            changes,
            [
                Change { pointer: "/a".into(), old: Some(json!("text")), new: None },
                Change { pointer: "/a/b".into(), old: None, new: Some(json!(1)) },
            ]
        );
        // An empty object or array that gains members shows only the members.
        let filled = diff(&json!({"a": {}, "b": []}), &json!({"a": {"k": 1}, "b": [2]}));
        let pointers: Vec<&str> = filled.iter().map(|c| c.pointer.as_str()).collect();
        assert_eq!(pointers, ["/a/k", "/b/0"]);
        let emptied = diff(&json!({"a": {"k": 1}}), &json!({"a": {}}));
        assert_eq!(emptied, [Change { pointer: "/a/k".into(), old: Some(json!(1)), new: None }]);
        // But an array that became an object says so.
        let retyped = diff(&json!({"a": []}), &json!({"a": {"0": 1}}));
        assert_eq!(retyped.len(), 2, "{retyped:?}");
        let whole = diff(&json!(1), &json!("1"));
        assert_eq!(whole, [Change { pointer: String::new(), old: Some(json!(1)), new: Some(json!("1")) }]);
    }

    #[test]
    fn renders_a_line_diff_of_strings() {
        let old = "line 1\nline 2\nline 3\nline 4\nold 5\nline 6\nline 7\nline 8";
        let new = "line 1\nline 2\nline 3\nline 4\nnew 5\nextra\nline 6\nline 7\nline 8";
        let text = render_diff(&diff(&json!({ "description": old }), &json!({ "description": new })));
        assert_eq!(
            text,
            "@ /description\n  ... 2 unchanged line(s)\n  line 3\n  line 4\n- old 5\n+ new 5\n+ extra\n  line 6\n  line 7\n  ... 1 unchanged line(s)\n"
        );
    }

    #[test]
    fn renders_added_removed_and_non_string_values() {
        let text = render_diff(&diff(&json!({"a": 1, "gone": "x\ny"}), &json!({"a": [true], "new": null})));
        assert_eq!(text, "@ /a\n- 1\n@ /a/0\n+ true\n@ /gone\n- x\n- y\n@ /new\n+ null\n");
    }

    #[test]
    fn invisible_changes_are_visible() {
        // A description that looks identical in a terminal but carries a tag-character payload,
        // a zero-width space, a bidi override and an ANSI sequence.
        let old = json!({"description": "Adds two numbers."});
        let new = json!({"description": "Adds two numbers.\u{e0041}\u{e0042}\u{200b}\u{202e}\u{1b}[8m"});
        let text = render_diff(&diff(&old, &new));
        assert_eq!(
            text,
            "@ /description\n- Adds two numbers.\n+ Adds two numbers.\\u{e0041}\\u{e0042}\\u{200b}\\u{202e}\\u{1b}[8m\n"
        );
        assert!(text.chars().filter(|&c| c != '\n').all(|c| !hidden(c)), "{text:?}");
    }

    #[test]
    fn escapes_cannot_be_faked_and_pointers_are_escaped() {
        let text = render_diff(&diff(&json!({}), &json!({"k\u{200b}": "\\u{200b}"})));
        assert_eq!(text, "@ /k\\u{200b}\n+ \\\\u{200b}\n");
        let text = render_diff(&diff(&json!(1), &json!(["\u{200b}\u{1b}\"\\"])));
        assert_eq!(text, "@ (root)\n- 1\n@ /0\n+ \\u{200b}\\u{1b}\"\\\\\n");
        // JSON text (a subtree past the depth limit) keeps JSON's own escapes.
        assert_eq!(visible(&json!(["\u{200b}\"\\"]).to_string(), false), r#"["\u{200b}\"\\"]"#);
    }

    #[test]
    fn deep_values_are_bounded() {
        let mut deep = json!("leaf");
        for _ in 0..300 {
            deep = Value::Array(vec![deep]);
        }
        let changes = diff(&json!(null), &deep);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].pointer.matches('/').count(), MAX_DEPTH);
    }
}
