//! A small YAML writer for JSON values: block style for mappings and
//! sequences, every string double-quoted the JSON way (a JSON string is a
//! valid YAML double-quoted scalar), so no value is ever read back as another
//! type (`"yes"`, `"1.10"`, `"null"` stay strings). Keys are written plain
//! only when they cannot be mistaken for anything but a string.

use serde_json::Value;

/// One YAML document (without the `---` separator), ending in a newline.
pub fn document(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => mapping(&mut out, m, 0, false),
        Value::Array(a) if !a.is_empty() => sequence(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

/// Several documents, each introduced by `---`.
pub fn documents<'a>(vs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for v in vs {
        out.push_str("---\n");
        out.push_str(&document(v));
    }
    out
}

fn quote(s: &str) -> String {
    // serde_json escapes `"`, `\` and control characters; YAML's
    // double-quoted style reads exactly those escapes. Writing a `String`
    // cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Whether `k` can be written as a plain YAML key and still read as this
/// string (YAML 1.1 and 1.2 alike).
fn plain_key(k: &str) -> bool {
    const RESERVED: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];
    let mut chars = k.chars();
    let Some(first) = chars.next() else { return false };
    first.is_ascii_alphabetic()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !RESERVED.contains(&k.to_ascii_lowercase().as_str())
}

fn key(k: &str) -> String {
    if plain_key(k) {
        k.to_string()
    } else {
        quote(k)
    }
}

/// Whether a string can be written as a literal block (`|` or `|-`) and read
/// back byte for byte: it has a line break, no other control or
/// line-breaking character, no trailing white space on a line, does not start
/// with white space, and ends in at most one line break.
fn literal_block(s: &str) -> bool {
    s.contains('\n')
        && !s.ends_with("\n\n")
        && !s.starts_with([' ', '\t', '\n'])
        && s.chars()
            .all(|c| c == '\n' || !(c.is_control() || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')))
        && s.lines().all(|l| !l.ends_with([' ', '\t']))
}

/// A string as a literal block at `level` spaces, after `key:`.
fn write_literal(out: &mut String, s: &str, level: usize) {
    out.push_str(if s.ends_with('\n') { " |\n" } else { " |-\n" });
    for line in s.lines() {
        if !line.is_empty() {
            indent(out, level);
            out.push_str(line);
        }
        out.push('\n');
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A mapping at `level` spaces; when `inline_first`, the first key follows a
/// `- ` already written.
/// Keys are written sorted, whatever order the map keeps (serde_json's
/// `preserve_order` feature may be switched on by another crate).
fn mapping(out: &mut String, m: &serde_json::Map<String, Value>, level: usize, inline_first: bool) {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, level);
        }
        out.push_str(&key(k));
        out.push(':');
        if let Value::String(s) = v {
            if literal_block(s) {
                write_literal(out, s, level + 2);
                continue;
            }
        }
        if is_block(v) {
            out.push('\n');
            match v {
                Value::Object(inner) => mapping(out, inner, level + 2, false),
                Value::Array(a) => sequence(out, a, level + 2),
                _ => {}
            }
        } else {
            out.push(' ');
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

fn sequence(out: &mut String, a: &[Value], level: usize) {
    for v in a {
        indent(out, level);
        out.push('-');
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push(' ');
                mapping(out, m, level + 2, true)
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                sequence(out, inner, level + 2);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_style_with_quoted_strings() {
        let v = json!({
            "apiVersion": "v1",
            "metadata": {"labels": {"app.kubernetes.io/name": "yes", "y": "1.10"}, "annotations": {}},
            "spec": {"containers": [{"name": "a\"b\t", "ports": [{"containerPort": 7400}], "args": []}],
                     "nested": [[1, 2], []], "on": true, "n": null}
        });
        let text = document(&v);
        assert_eq!(
            text,
            "apiVersion: \"v1\"\n\
             metadata:\n  annotations: {}\n  labels:\n    app.kubernetes.io/name: \"yes\"\n    \"y\": \"1.10\"\n\
             spec:\n  containers:\n    - args: []\n      name: \"a\\\"b\\t\"\n      ports:\n        - containerPort: 7400\n\
             \x20 \"n\": null\n  nested:\n    -\n      - 1\n      - 2\n    - []\n  \"on\": true\n"
        );
        assert_eq!(documents([&json!(1), &json!({})]), "---\n1\n---\n{}\n");
        let v = json!({"a": "{\n  \"x\": 1,\n\n  \"y\": 2\n}\n", "b": "one\ntwo", "c": " lead\n", "d": "x\n\n", "e": "t \nu"});
        assert_eq!(
            document(&v),
            "a: |\n  {\n    \"x\": 1,\n\n    \"y\": 2\n  }\nb: |-\n  one\n  two\nc: \" lead\\n\"\nd: \"x\\n\\n\"\ne: \"t \\nu\"\n"
        );
    }
}
