//! What `tidings check` reports: one [`Finding`] per problem, each naming
//! the file, line and JSON pointer, a rule id, what is wrong and how to fix it.
use serde::Serialize;

/// How serious a finding is. Errors fail the check; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails the check (exit 1).
    Error,
    /// Reported, does not fail the check.
    Warning,
}

/// One problem found in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Path relative to the registry directory (`auth/user.created.v1.json`).
    pub file: String,
    /// 1-based line in `file`.
    pub line: usize,
    /// JSON pointer of the offending value in `file` (empty for the whole file).
    pub pointer: String,
    /// Stable rule id (`schema/file-name`, `compat/property-removed`).
    pub rule: String,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
    /// For compatibility findings: the change as the engine reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compat: Option<CompatDetail>,
}

/// The compatibility details of a `compat/*` or `against/*` finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompatDetail {
    /// Event type.
    pub event_type: String,
    /// The earlier version compared.
    pub old_version: u32,
    /// The later version compared.
    pub new_version: u32,
    /// Mode in force.
    pub mode: String,
    /// Policy in force.
    pub policy: String,
    /// Change kind reported by the engine.
    pub kind: String,
    /// Pointer in the old (bundled) schema.
    pub old_path: String,
    /// Pointer in the new (bundled) schema.
    pub new_path: String,
    /// `readers`, `writers` or `none`.
    pub breaks: String,
    /// A document one version accepts and the other rejects, when the engine
    /// could build one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<serde_json::Value>,
}

impl Finding {
    /// An error finding; `line` is filled in later from the pointer.
    pub fn error(
        file: impl Into<String>,
        pointer: impl Into<String>,
        rule: &str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Finding {
        Finding {
            file: file.into(),
            line: 0,
            pointer: pointer.into(),
            rule: rule.to_string(),
            severity: Severity::Error,
            message: message.into(),
            help: help.into(),
            compat: None,
        }
    }

    /// The same finding as a warning.
    pub fn warning(mut self) -> Finding {
        self.severity = Severity::Warning;
        self
    }

    /// The same finding at a known line.
    pub fn at_line(mut self, line: usize) -> Finding {
        self.line = line;
        self
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every finding, sorted by file, line and rule.
    pub findings: Vec<Finding>,
    /// Counts.
    pub summary: Summary,
    /// Every schema file read (events and shared), sorted by path.
    #[serde(skip)]
    pub files: Vec<CheckedFile>,
}

/// A schema file the check read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedFile {
    /// Path relative to the registry directory.
    pub file: String,
    /// Its declared event type (event schemas with a valid `x-event-type`).
    pub event_type: Option<String>,
    /// Its declared version.
    pub version: Option<u32>,
}

/// Counts of what was checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Schema files read (events and shared).
    pub files: usize,
    /// Distinct event types.
    pub event_types: usize,
    /// Event schema versions.
    pub versions: usize,
    /// Error findings.
    pub errors: usize,
    /// Warning findings.
    pub warnings: usize,
    /// Findings removed by `[[lint.ignore]]` entries of `tidings.toml`.
    pub ignored: usize,
}

impl Report {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }
}
