//! Escaping for untrusted text: HTML/SVG text and attributes, and URL components.

use std::fmt::Write;

/// Text safe inside HTML or SVG element content and quoted attribute values: `& < > " '`
/// become entities, and control characters (other than tab and newline) become U+FFFD, so a
/// thread name or a command line can never open a tag, close an attribute or break the XML
/// of an inline SVG.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(ch),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Text safe on a terminal and in a line-oriented file (see `leakwatch_model::text`).
pub use leakwatch_model::text::{visible as terminal, visible_bytes as terminal_bytes};

/// Percent-encodes everything but RFC 3986 unreserved characters: for a target name used
/// as a path segment or query value.
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Text safe inside a Markdown table cell or inline text: backslash-escapes emphasis,
/// code, link brackets, table pipes and strikethrough, and HTML-escapes so raw HTML in a
/// name cannot render. Text holding control characters or bidi overrides (a program's
/// stderr; names arrive already escaped) is shown escaped ([`terminal`]) first, since a
/// Markdown report is read in a terminal as often as rendered. (Used mid-line only: `#`
/// would need escaping at a line's start.)
pub fn markdown(text: &str) -> String {
    let shown = if leakwatch_model::text::has_control(text) {
        std::borrow::Cow::Owned(terminal(text))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    let mut out = String::with_capacity(text.len() + 8);
    for ch in html(&shown).chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_cannot_drive_the_terminal_or_forge_lines() {
        assert_eq!(terminal("Analytics-7"), "Analytics-7");
        assert_eq!(terminal("a\nb\nc"), "a\\nb\\nc");
        assert_eq!(terminal("\u{1b}[2Jx"), "\\e[2Jx");
        assert_eq!(terminal("\u{1b}]0;title\u{7}"), "\\e]0;title\\x07");
        assert_eq!(terminal("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(terminal("c:\\x"), "c:\\\\x");
        assert_eq!(terminal("\u{9b}"), "\\x9b");
        assert_eq!(terminal_bytes(b"ok\xff\r"), "ok\\xff\\r");
        for text in ["\u{1b}[31m", "x\ry", "\u{2066}", "\u{85}"] {
            assert!(!terminal(text).chars().any(|c| c.is_control()), "{text:?}");
        }
    }

    #[test]
    fn markup_cannot_escape_its_context() {
        assert_eq!(
            html(r#"<script>alert("x")</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        );
        assert_eq!(html("a'b&c"), "a&#39;b&amp;c");
        assert_eq!(html("bell\u{7}nul\u{0}"), "bell\u{fffd}nul\u{fffd}");
        assert_eq!(html("pool-#-thread-#"), "pool-#-thread-#");
        // Raw control characters and bidi overrides are escaped once; escaped names as is.
        assert_eq!(
            markdown("a\u{1b}]0;t\u{7}\u{202e}b"),
            "a\\\\e\\]0;t\\\\x07\\\\u{202e}b"
        );
        assert_eq!(markdown("\\e]#;pwn"), "\\\\e\\]#;pwn");
    }

    #[test]
    fn url_components_are_percent_encoded() {
        assert_eq!(url_component("grower"), "grower");
        assert_eq!(
            url_component("nginx.service/a b?&"),
            "nginx.service%2Fa%20b%3F%26"
        );
        assert_eq!(url_component("é"), "%C3%A9");
    }

    #[test]
    fn markdown_special_characters_are_literal() {
        assert_eq!(markdown("a|b*c_d"), "a\\|b\\*c\\_d");
        assert_eq!(markdown("Leaky-#"), "Leaky-#");
        assert_eq!(markdown("[x](y)"), "\\[x\\](y)");
        assert_eq!(markdown("<b>x</b>"), "&lt;b&gt;x&lt;/b&gt;");
    }
}
