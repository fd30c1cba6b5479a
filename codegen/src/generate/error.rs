//! Why generation failed: every problem names the schema file and, where
//! there is one, the JSON pointer inside it.
use std::fmt;
use std::path::PathBuf;

/// One problem that stops generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The schema file, relative to the registry directory
    /// (`auth/user.created.v1.json`).
    pub file: String,
    /// 1-based line in `file`, when known (0 otherwise).
    pub line: usize,
    /// JSON pointer inside `file` (empty for the whole file).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it (may be empty).
    pub help: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.pointer.is_empty() {
            write!(f, " at {}", self.pointer)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// Why the registry could not be turned into Rust.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The registry directory could not be read.
    #[error("cannot read the registry {}: {source}", dir.display())]
    Io {
        /// The registry directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The registry has problems (lint errors, or schemas the generator
    /// cannot turn into Rust); each names its file and JSON pointer.
    #[error("{}", render(.0))]
    Schemas(Vec<Diagnostic>),
}

fn render(diags: &[Diagnostic]) -> String {
    let mut s = format!(
        "cannot generate Rust from the registry: {} problem{}",
        diags.len(),
        if diags.len() == 1 { "" } else { "s" }
    );
    for d in diags {
        s.push('\n');
        s.push_str(&d.to_string());
    }
    s
}

impl GenerateError {
    /// The diagnostics, if the failure is about schemas.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            GenerateError::Schemas(d) => d,
            GenerateError::Io { .. } => &[],
        }
    }
}
