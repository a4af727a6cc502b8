//! File-fd path groups: `/tmp/upload-1.tmp`..`/tmp/upload-9.tmp` are one group
//! `/tmp/upload-#.tmp`, the way thread names are grouped ([`super::thread_name`]).
//!
//! The path is what `readlink /proc/PID/fd/N` says: untrusted bytes (any byte but NUL),
//! possibly not UTF-8, possibly long (up to `PATH_MAX`). The group is made
//! - with each run of ASCII digits collapsed to one `#`, and each word (a run of ASCII
//!   letters and digits) of at least [`HEX_WORD_MIN`] hex digits with at least one decimal
//!   digit among them collapsed whole to `#` (`ab12cd34ef`, the segments of a UUID);
//! - marked deleted: the kernel's ` (deleted)` suffix is kept, after the collapsed path;
//! - terminal-safe: control characters, bidi overrides and invalid UTF-8 are escaped
//!   ([`leakwatch_model::text::visible_bytes`]), a backslash doubled, and a trailing space
//!   shown as `\x20` (series names are read back trimmed: `fds{/tmp/x }` would lose it);
//! - at most [`MAX_PATH_CHARS`] bytes of path: a longer one keeps its start and its end (the
//!   file name) around a `…`.
//!
//! A group always starts with `/`, as the link does: that is how an fd path group is told
//! from an fd kind in the text encoding of a series (`fds{/tmp/upload-#.tmp}`).

use leakwatch_model::text::visible_bytes;

/// The suffix the kernel appends to the link of an fd whose file was unlinked.
pub const DELETED: &str = " (deleted)";
/// Hex words at least this long (with a digit) are collapsed whole.
pub const HEX_WORD_MIN: usize = 4;
/// Longest path kept in a group, in bytes, before the ` (deleted)` marker.
pub const MAX_PATH_CHARS: usize = 240;
/// What a cut path keeps of its start; the rest of [`MAX_PATH_CHARS`] is its end.
const HEAD: usize = 64;
/// The mark where a long path was cut.
pub const CUT: &str = "…";

/// The group of the file `link` names (a `/proc/PID/fd/N` link target starting with `/`).
pub fn group(link: &[u8]) -> String {
    let (path, deleted) = match link.strip_suffix(DELETED.as_bytes()) {
        Some(path) => (path, true),
        None => (link, false),
    };
    let mut collapsed = Vec::with_capacity(path.len());
    let mut rest = path;
    while let Some(&first) = rest.first() {
        if !first.is_ascii_alphanumeric() {
            collapsed.push(first);
            rest = &rest[1..];
            continue;
        }
        let word_len = rest
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_len);
        collapse_word(word, &mut collapsed);
        rest = after;
    }
    let mut text = visible_bytes(&collapsed);
    if text.ends_with(' ') {
        text.pop();
        text.push_str("\\x20");
    }
    if text.len() > MAX_PATH_CHARS {
        text = cut(&text);
    }
    if deleted {
        text.push_str(DELETED);
    }
    text
}

/// One word of letters and digits: whole to `#` when it looks like a hex id, else each run of
/// decimal digits to `#`.
fn collapse_word(word: &[u8], out: &mut Vec<u8>) {
    let hex_id = word.len() >= HEX_WORD_MIN
        && word.iter().all(u8::is_ascii_hexdigit)
        && word.iter().any(u8::is_ascii_digit);
    if hex_id {
        out.push(b'#');
        return;
    }
    super::thread_name::collapse_digits(word, out);
}

/// The first [`HEAD`] and last bytes of `text` (on character boundaries) around [`CUT`], at
/// most [`MAX_PATH_CHARS`] bytes in all.
fn cut(text: &str) -> String {
    let mut head = HEAD;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let tail_len = MAX_PATH_CHARS - HEAD - CUT.len();
    let mut tail = text.len() - tail_len;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    let mut out = String::with_capacity(MAX_PATH_CHARS);
    out.push_str(&text[..head]);
    out.push_str(CUT);
    out.push_str(&text[tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_hex_ids_collapse() {
        assert_eq!(group(b"/tmp/upload-123.tmp"), "/tmp/upload-#.tmp");
        assert_eq!(group(b"/tmp/upload-7.tmp"), "/tmp/upload-#.tmp");
        assert_eq!(group(b"/tmp/ab12cd34ef.sock"), "/tmp/#.sock");
        assert_eq!(
            group(b"/var/lib/app/550e8400-e29b-41d4-a716-446655440000.db"),
            "/var/lib/app/#-#-#-#-#.db"
        );
        assert_eq!(
            group(b"/srv/orders/order-audit.log"),
            "/srv/orders/order-audit.log"
        );
        // Hex letters alone, or short words, are words: only their digit runs collapse.
        assert_eq!(group(b"/data/cafe/face.db"), "/data/cafe/face.db");
        assert_eq!(
            group(b"/data/e2e/x86_64/log4j.jar"),
            "/data/e#e/x#_#/log#j.jar"
        );
        assert_eq!(
            group(b"/var/log/app.2024-11-03.log"),
            "/var/log/app.#-#-#.log"
        );
        assert_eq!(group(b"/"), "/");
    }

    #[test]
    fn deleted_files_are_marked() {
        assert_eq!(
            group(b"/tmp/upload-42.tmp (deleted)"),
            "/tmp/upload-#.tmp (deleted)"
        );
        assert_eq!(group(b"/memfd:jit-7 (deleted)"), "/memfd:jit-# (deleted)");
        // Only the kernel's one suffix.
        assert_eq!(group(b"/a (deleted)x"), "/a (deleted)x");
    }

    #[test]
    fn hostile_bytes_are_escaped() {
        assert_eq!(group(b"/tmp/\x1b[2Jx.log"), "/tmp/\\e[#Jx.log");
        assert_eq!(group(b"/tmp/a\nb"), "/tmp/a\\nb");
        assert_eq!(group(b"/tmp/\xff\xfe1.log"), "/tmp/\\xff\\xfe#.log");
        assert_eq!(group(b"/tmp/back\\slash"), "/tmp/back\\\\slash");
        assert_eq!(
            group("/tmp/\u{202e}gol.exe".as_bytes()),
            "/tmp/\\u{202e}gol.exe"
        );
        assert_eq!(group("/tmp/zürich-1.log".as_bytes()), "/tmp/zürich-#.log");
        assert_eq!(group(b"/tmp/x "), "/tmp/x\\x20");
        assert_eq!(group(b"/tmp/x  (deleted)"), "/tmp/x\\x20 (deleted)");
        for hostile in [&b"/x\x07\x1b]0;title\x07"[..], b"/\xc3", b"/\r\n\t"] {
            let text = group(hostile);
            assert!(!text.chars().any(char::is_control), "{text:?}");
            assert!(text.starts_with('/'));
        }
    }

    #[test]
    fn long_paths_are_cut_keeping_the_file_name() {
        let long = format!("/{}/order-audit.log", "d/".repeat(3000));
        let text = group(long.as_bytes());
        assert!(text.len() <= MAX_PATH_CHARS, "{}", text.len());
        assert!(text.starts_with("/d/d/"), "{text}");
        assert!(text.contains(CUT), "{text}");
        assert!(text.ends_with("/order-audit.log"), "{text}");
        let deleted = group(format!("{long} (deleted)").as_bytes());
        assert_eq!(deleted, format!("{text} (deleted)"));
        // Cut on character boundaries, whatever the bytes.
        for filler in ["é", "\u{1b}", "€", "\u{10348}"] {
            let long = format!("/{}", filler.repeat(500));
            let text = group(long.as_bytes());
            assert!(text.len() <= MAX_PATH_CHARS);
            assert!(text.starts_with('/'));
        }
        let exact = format!("/{}", "a".repeat(MAX_PATH_CHARS - 1));
        assert_eq!(group(exact.as_bytes()), exact);
    }
}
