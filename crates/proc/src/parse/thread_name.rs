//! Thread-name groups: `worker-1`..`worker-4` are one group `worker-#`.
//!
//! The manual forensics in incident 000 was `jstack | awk | sort | uniq -c`; grouping by name
//! with the numbers collapsed is what made 30,000 "Analytics" threads stand out.

/// Collapses every run of ASCII digits to one `#` and decodes the rest lossily.
/// `pool-3-thread-12` becomes `pool-#-thread-#`; a trailing newline is dropped. A name with
/// control characters (an escape sequence, a newline) is shown escaped
/// (`leakwatch_model::text::visible`): groups are keys, labels and lines of text everywhere.
pub fn normalise(comm: &[u8]) -> String {
    let comm = comm.strip_suffix(b"\n").unwrap_or(comm);
    let mut out = Vec::with_capacity(comm.len());
    collapse_digits(comm, &mut out);
    let text = match String::from_utf8(out) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    };
    if leakwatch_model::text::has_control(&text) {
        leakwatch_model::text::visible(&text)
    } else {
        text
    }
}

/// Appends `bytes` to `out` with every run of ASCII digits as one `#` (thread names here,
/// path words in `fd_path`).
pub(crate) fn collapse_digits(bytes: &[u8], out: &mut Vec<u8>) {
    let mut in_digits = false;
    for &byte in bytes {
        if byte.is_ascii_digit() {
            if !in_digits {
                out.push(b'#');
            }
            in_digits = true;
        } else {
            out.push(byte);
            in_digits = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn groups() {
        assert_eq!(normalise(b"worker-1\n"), "worker-#");
        assert_eq!(normalise(b"Analytics-17"), "Analytics-#");
        assert_eq!(normalise(b"pool-3-thread-12"), "pool-#-thread-#");
        assert_eq!(normalise(b"C2 CompilerThread0"), "C# CompilerThread#");
        assert_eq!(normalise(b"java"), "java");
        assert_eq!(normalise(b"12345"), "#");
        assert_eq!(normalise(b""), "");
        assert_eq!(normalise(b"\xffname7"), "\u{fffd}name#");
        // Regression (issue 16): escape sequences reached terminals and files raw.
        assert_eq!(normalise(b"\x1b[2Jw1"), "\\e[#Jw#");
        assert_eq!(normalise(b"a\nb"), "a\\nb");
        assert_eq!(normalise(b"back\\slash"), "back\\slash");
    }
}
