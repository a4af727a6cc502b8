//! Errors of the offline input parsers: each names where the problem is (line number,
//! series name) and what is wrong, in words a person can act on.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum InputError {
    /// A problem on one line of a CSV file (1-based line numbers).
    #[error("line {line}: {message}")]
    Csv { line: usize, message: String },
    /// The reader failed.
    #[error("reading input: {0}")]
    Io(String),
    /// The Prometheus response as a whole is unusable.
    #[error("Prometheus response: {0}")]
    Prometheus(String),
    /// One series of a Prometheus response is unusable.
    #[error("Prometheus response, series {series}: {message}")]
    PrometheusSeries { series: String, message: String },
}

impl InputError {
    pub(crate) fn csv(line: usize, message: impl Into<String>) -> InputError {
        InputError::Csv {
            line,
            message: message.into(),
        }
    }
}
