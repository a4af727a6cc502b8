//! Command lines for people to read and paste: the `$ argv` header of a capture or
//! mitigation file, a check's workload, the "reproduce with" lines of a report. Never run
//! by leakwatch itself (it starts programs from argv, see [`crate::Program`]).
//!
//! Built on `shlex`: a word is left bare exactly when `shlex` would leave it bare (ASCII
//! letters, digits and `+-./:@]_`); anything else is single-quoted, a `'` inside written
//! `'\''`. One quoting style that every POSIX shell reads back, and that `shlex::split`
//! splits back into the same words (tested below).

use std::borrow::Cow;

/// `word` as one shell word.
pub fn word(word: &str) -> Cow<'_, str> {
    match shlex::try_quote(word) {
        Ok(Cow::Borrowed(bare)) if bare == word => Cow::Borrowed(word),
        // Needs quoting (or holds a NUL, which no argv can: quoted all the same for display).
        _ => Cow::Owned(format!("'{}'", word.replace('\'', "'\\''"))),
    }
}

/// `words` as one command line, each quoted by [`word`], separated by single spaces.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(word("grower"), "grower");
        assert_eq!(word("nginx.service"), "nginx.service");
        assert_eq!(word("a b"), "'a b'");
        assert_eq!(word("it's"), "'it'\\''s'");
        assert_eq!(word(""), "''");
        assert_eq!(
            join(&["jcmd", "42", "GC.heap_dump", "/var/x/heap.hprof"]),
            "jcmd 42 GC.heap_dump /var/x/heap.hprof"
        );
        assert_eq!(join(&["echo", "$HOME", "`id`"]), "echo '$HOME' '`id`'");
    }

    #[test]
    fn shlex_splits_a_joined_line_back_into_the_same_words() {
        let words = [
            "plain",
            "",
            "a b",
            "it's",
            "'",
            "\"quoted\"",
            "$HOME; rm -rf / `id`",
            "back\\slash",
            "tab\there",
            "new\nline",
            "{pid}",
            "k=v,w%",
            "~user/*.txt",
            "!bang ^caret",
            "ünïcödé",
        ];
        let line = join(&words);
        assert_eq!(shlex::split(&line).unwrap(), words, "{line}");
    }
}
