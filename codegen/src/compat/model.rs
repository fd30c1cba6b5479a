//! The vocabulary of the compatibility engine: modes, policies and the
//! changes it reports. Shared by the CLI (`tidings check`, `tidings compat`),
//! the generator and the derive.
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A compatibility mode, as in Confluent Schema Registry.
///
/// BACKWARD: the new schema accepts every document the old one accepted
/// (upgraded readers can read old events). FORWARD: the old schema accepts
/// every document the new one accepts (old readers can read new events).
/// FULL: both. `*_TRANSITIVE`: against every earlier version, not only the
/// latest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// No check.
    None,
    /// New reads old, against the previous version.
    Backward,
    /// New reads old, against every earlier version.
    BackwardTransitive,
    /// Old reads new, against the previous version.
    Forward,
    /// Old reads new, against every earlier version.
    ForwardTransitive,
    /// Both directions, against the previous version.
    Full,
    /// Both directions, against every earlier version.
    FullTransitive,
}

impl Mode {
    /// All seven modes, in documentation order.
    pub const ALL: [Mode; 7] = [
        Mode::None,
        Mode::Backward,
        Mode::BackwardTransitive,
        Mode::Forward,
        Mode::ForwardTransitive,
        Mode::Full,
        Mode::FullTransitive,
    ];

    /// The canonical upper-case name (`BACKWARD_TRANSITIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "NONE",
            Mode::Backward => "BACKWARD",
            Mode::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Mode::Forward => "FORWARD",
            Mode::ForwardTransitive => "FORWARD_TRANSITIVE",
            Mode::Full => "FULL",
            Mode::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether a change that breaks readers (new rejects old) is a finding.
    pub fn checks_backward(self) -> bool {
        matches!(
            self,
            Mode::Backward | Mode::BackwardTransitive | Mode::Full | Mode::FullTransitive
        )
    }

    /// Whether a change that breaks writers (old rejects new) is a finding.
    pub fn checks_forward(self) -> bool {
        matches!(
            self,
            Mode::Forward | Mode::ForwardTransitive | Mode::Full | Mode::FullTransitive
        )
    }

    /// Whether every earlier version is compared, not only the latest.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Mode::BackwardTransitive | Mode::ForwardTransitive | Mode::FullTransitive
        )
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is not one of the seven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown compatibility mode {0:?}; expected one of NONE, BACKWARD, BACKWARD_TRANSITIVE, \
     FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE (any case, '-' or '_')"
)]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let canonical = s.trim().to_ascii_uppercase().replace('-', "_");
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == canonical)
            .ok_or_else(|| UnknownMode(s.to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How changes whose effect depends on what an open content model may
/// already carry are judged.
///
/// Strict: every document a schema accepts counts, including undeclared
/// properties an open model lets through. So adding a constrained property
/// to an open model breaks readers (an old document could carry that name
/// with another type), removing one so that an open model now lets anything
/// through breaks writers, and opening or closing a model breaks writers or
/// readers.
///
/// Lenient: documents carry only properties their own schema declares (by
/// name, by `patternProperties` or a schema-valued `additionalProperties`),
/// so those changes are accepted. Removing a declared property from a
/// closed model still breaks readers and adding one to a closed model still
/// breaks writers, because documents legitimately carry declared
/// properties. Adding a required property without a default is
/// incompatible under both; with a default it breaks readers under strict
/// and is informational under lenient (readers fill the default in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Confluent's reading: every possible document counts.
    #[default]
    Strict,
    /// Only documents that follow the declared properties count.
    Lenient,
}

impl Policy {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Strict => "strict",
            Policy::Lenient => "lenient",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy name that is neither `strict` nor `lenient`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compatibility policy {0:?}; expected strict or lenient")]
pub struct UnknownPolicy(pub String);

impl FromStr for Policy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "strict" => Ok(Policy::Strict),
            "lenient" => Ok(Policy::Lenient),
            _ => Err(UnknownPolicy(s.to_string())),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whom a change breaks. A change that breaks both directions is reported
/// as two [`Change`](super::Change)s, one per direction, each with the example
/// document for its own direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Breaks {
    /// The new schema rejects documents the old one accepted: readers built
    /// on the new version fail on old events (a BACKWARD incompatibility).
    Readers,
    /// The new schema accepts documents the old one rejects: readers still on
    /// the old version fail on events from new writers (a FORWARD
    /// incompatibility).
    Writers,
    /// Neither: recorded for information only.
    None,
}

/// One difference between two schema versions, in one direction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// What changed, as a stable snake_case name.
    pub kind: super::ChangeKind,
    /// JSON pointer of the keyword (or, if the old schema lacks it, of the
    /// subschema) in the old schema; `""` is the root.
    pub old_path: String,
    /// JSON pointer of the keyword (or subschema) in the new schema.
    pub new_path: String,
    /// Whom the change breaks.
    pub breaks: Breaks,
    /// One line: what changed and why it matters.
    pub message: String,
    /// A document one version accepts and the other rejects (the old one
    /// accepts it for [`Breaks::Readers`], the new one for
    /// [`Breaks::Writers`]). Every example is checked with a JSON Schema
    /// validator (formats asserted) before it is reported; `None` when none
    /// could be built or proven.
    pub example: Option<serde_json::Value>,
}

/// A change found between two versions of one history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The earlier version compared.
    pub old_version: u32,
    /// The later version compared.
    pub new_version: u32,
    /// What changed between them.
    pub change: Change,
}
