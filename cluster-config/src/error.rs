//! The one error type of this crate. Validation problems carry the key path of the offending value
//! so that an operator can find it in `config.toml` without reading code.

use std::fmt;
use std::path::PathBuf;

/// One problem found while validating a configuration, e.g. `quic.listen: not a socket address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path inside the TOML document (`storage.elements[1].path`).
    pub key: String,
    /// What is wrong and, where possible, what to do about it.
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("cannot write {path}: {error}")]
    Write { path: PathBuf, error: std::io::Error },
    #[error("{path} is not valid TOML for an ArtStore node: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration in {path}:\n{}", list(.problems))]
    Invalid { path: PathBuf, problems: Vec<Problem> },
    #[error("key or certificate generation failed: {0}")]
    Certificate(String),
    #[error("{0}")]
    Layout(String),
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

impl From<rcgen::Error> for ConfigError {
    fn from(e: rcgen::Error) -> Self {
        ConfigError::Certificate(e.to_string())
    }
}
