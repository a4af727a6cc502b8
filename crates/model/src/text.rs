//! How an untrusted name (a process, thread or file name, a command line) is shown as
//! text: never as raw control characters. Used by every place that prints or writes such a
//! name for people (the CLI, evidence files) and by the thread-name groups themselves.

use std::fmt::Write;

/// Text safe on a terminal and in a line-oriented file: control characters (C0, DEL, C1),
/// bidi overrides and isolates, and the line and paragraph separators are shown as escapes
/// (`\n`, `\e`, `\x07`, `\u{202e}`) and a backslash as `\\`, so a process or thread name
/// can neither move the cursor, set a window title, reorder the line, nor forge a line.
pub fn visible(text: &str) -> String {
    if !text.chars().any(needs_terminal_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        push_terminal(&mut out, ch);
    }
    out
}

/// [`visible`] for bytes that may not be UTF-8 (a `comm`, a `/proc` link): invalid bytes
/// are shown as `\xNN`.
pub fn visible_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            push_terminal(&mut out, ch);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// True when `text` holds a character [`visible`] escapes other than the backslash: a
/// control character, a bidi override or a line separator.
pub fn has_control(text: &str) -> bool {
    text.chars()
        .any(|ch| ch != '\\' && needs_terminal_escape(ch))
}

/// JSON text made safe on a terminal without changing its value: every character
/// [`visible`] would escape that `serde_json` leaves raw inside strings (DEL, the C1 range,
/// bidi overrides and isolates, the line and paragraph separators) becomes a `\uXXXX`
/// escape. Such characters can only occur inside JSON strings, so the document still parses
/// to the same value. (C0 controls are escaped by `serde_json` already; a raw newline is
/// the layout of pretty-printed JSON and is kept.)
pub fn json_safe(json: String) -> String {
    let unsafe_char = |ch: char| ch != '\\' && ch != '\n' && needs_terminal_escape(ch);
    if !json.chars().any(unsafe_char) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for ch in json.chars() {
        if unsafe_char(ch) {
            // Every such character is in the Basic Multilingual Plane: one \uXXXX.
            let _ = write!(out, "\\u{:04x}", ch as u32);
        } else {
            out.push(ch);
        }
    }
    out
}

fn needs_terminal_escape(ch: char) -> bool {
    ch == '\\'
        || ch.is_control()
        || matches!(ch, '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}')
        || ('\u{202a}'..='\u{202e}').contains(&ch)
        || ('\u{2066}'..='\u{2069}').contains(&ch)
}

fn push_terminal(out: &mut String, ch: char) {
    if !needs_terminal_escape(ch) {
        out.push(ch);
        return;
    }
    match ch {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{1b}' => out.push_str("\\e"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_made_terminal_safe_keeps_its_value() {
        let value = "threads=\u{202e}evil \u{7f}\u{9b}[2J \u{2028} ok\\";
        let json =
            serde_json::to_string_pretty(&serde_json::json!({ "cmdline": [value] })).unwrap();
        assert!(
            json.contains('\u{202e}'),
            "serde_json leaves bidi raw: {json}"
        );
        let safe = json_safe(json);
        assert!(
            !safe
                .chars()
                .any(|c| c != '\n' && (c.is_control() || has_control(&c.to_string()))),
            "{safe}"
        );
        assert!(
            safe.contains("\\u202e") && safe.contains("\\u009b"),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["cmdline"][0], value);
        assert_eq!(json_safe("{\n  \"a\": 1\n}".into()), "{\n  \"a\": 1\n}");
    }
}
