//! `schemas/tidings.toml`: registry-wide settings, read by `tidings check`
//! and by the runtime when it provisions streams.
//!
//! ```toml
//! [compatibility]
//! mode = "FULL_TRANSITIVE"   # any of the seven modes
//! policy = "strict"          # or "lenient"
//!
//! [stream_defaults]          # applied to every stream unless it overrides
//! max_age = "7d"             # s, m, h, d suffixes
//! max_bytes = "1GiB"         # B, KiB, MiB, GiB, TiB (or an integer)
//! discard = "old"            # "old" or "new"
//! duplicate_window = "2m"
//! storage = "file"           # "file" or "memory"
//!
//! [streams.AUTH_EVENTS]
//! subjects = ["auth.>"]
//! description = "..."
//! retention = "limits"       # "limits" (default), "interest" or "workqueue"
//!
//! [profiles.production]
//! replicas = 3
//!
//! [[lint.ignore]]            # a rule turned off for some files, with a reason
//! rule = "schema/no-examples"
//! path = "legacy/*.json"
//! reason = "imported schemas; examples follow in PLAT-12"
//! ```
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::compat::{Mode, Policy};

/// The name of the config file inside the registry directory.
pub const CONFIG_FILE: &str = "tidings.toml";

/// The whole of `tidings.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default compatibility mode and policy (an event type may override the
    /// mode with `x-compatibility`).
    #[serde(default)]
    pub compatibility: Compatibility,
    /// Settings shared by every stream.
    #[serde(default)]
    pub stream_defaults: StreamDefaults,
    /// The streams, by name (`AUTH_EVENTS`).
    #[serde(default)]
    pub streams: BTreeMap<String, Stream>,
    /// Deployment profiles by name (`production`, `dev`).
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// Directories (relative to the registry) that hold shared definitions
    /// instead of event schemas. Default `["common"]`.
    #[serde(default = "default_shared_dirs")]
    pub shared_dirs: Vec<String>,
    /// Lint settings: findings turned off for some paths, each with a reason.
    #[serde(default)]
    pub lint: Lint,
    /// Each service's consumer groups and the types they handle, for
    /// least-privilege permissions ([`super::access`]).
    #[serde(default)]
    pub services: BTreeMap<String, super::access::Service>,
    /// Kinds of tenant-scoped readers and the types they may read
    /// ([`super::access`]).
    #[serde(default)]
    pub readers: BTreeMap<String, super::access::Reader>,
}

/// `[lint]`: how the check's rules are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lint {
    /// `[[lint.ignore]]` entries: a rule turned off for matching files.
    #[serde(default)]
    pub ignore: Vec<LintIgnore>,
}

/// One `[[lint.ignore]]` entry.
///
/// ```toml
/// [[lint.ignore]]
/// rule = "schema/closed-model"        # a rule id, or a glob such as "schema/*"
/// path = "legacy/**"                  # a glob over registry-relative paths
/// reason = "imported from the old bus; closed on purpose"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintIgnore {
    /// The rule id (`schema/no-examples`), or a glob over rule ids (`schema/*`).
    pub rule: String,
    /// A glob over registry-relative file paths (`*` stays within a
    /// directory, `**` crosses directories).
    pub path: String,
    /// Why the rule does not apply there (required, shown in review).
    pub reason: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            compatibility: Default::default(),
            stream_defaults: Default::default(),
            streams: Default::default(),
            profiles: Default::default(),
            shared_dirs: default_shared_dirs(),
            lint: Lint::default(),
            services: Default::default(),
            readers: Default::default(),
        }
    }
}

fn default_shared_dirs() -> Vec<String> {
    vec!["common".to_string()]
}

/// Default compatibility settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compatibility {
    /// Mode used by event types without `x-compatibility`.
    pub mode: Mode,
    /// Policy for changes whose effect depends on the content model.
    pub policy: Policy,
}

impl Default for Compatibility {
    /// FULL_TRANSITIVE, strict.
    fn default() -> Self {
        Compatibility {
            mode: Mode::FullTransitive,
            policy: Policy::Strict,
        }
    }
}

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// On disk.
    File,
    /// In memory.
    Memory,
}

/// What a full stream does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    /// Delete the oldest messages to make room.
    Old,
    /// Refuse the new message.
    New,
}

/// When a stream deletes an event, besides its limits (`max_age`,
/// `max_bytes`), which apply under every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    /// Only the limits delete: an event stays, acked or not, until it is
    /// too old or the stream too full (the default; replays see it).
    #[default]
    Limits,
    /// An event is deleted once every consumer group on the stream whose
    /// filter covers it has acked it (and at once if no group covers it
    /// when it is stored).
    Interest,
    /// A work queue: an event is deleted when one consumer acks it, and
    /// the server allows only one consumer per subject (consumers' filters
    /// must not overlap), so only one group may handle each event type.
    #[serde(rename = "workqueue")]
    WorkQueue,
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Retention::Limits => "limits",
            Retention::Interest => "interest",
            Retention::WorkQueue => "workqueue",
        })
    }
}

/// Settings every stream inherits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamDefaults {
    /// Messages older than this are deleted.
    #[serde(deserialize_with = "de_duration")]
    pub max_age: Duration,
    /// Size limit of the stream.
    pub max_bytes: ByteSize,
    /// Policy when the stream is full.
    pub discard: Discard,
    /// Window in which a repeated `Nats-Msg-Id` is answered `duplicate`.
    #[serde(deserialize_with = "de_duration")]
    pub duplicate_window: Duration,
    /// Storage backend.
    pub storage: Storage,
}

impl Default for StreamDefaults {
    /// 7 days, 1 GiB discarding oldest, 2 minute duplicate window, file storage.
    fn default() -> Self {
        StreamDefaults {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: ByteSize(1 << 30),
            discard: Discard::Old,
            duplicate_window: Duration::from_secs(120),
            storage: Storage::File,
        }
    }
}

/// One stream. Unset limits come from [`StreamDefaults`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    /// Subject patterns the stream captures (`auth.>`).
    pub subjects: Vec<String>,
    /// What the stream is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Overrides `stream_defaults.max_age`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub max_age: Option<Duration>,
    /// Overrides `stream_defaults.max_bytes`.
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    /// Overrides `stream_defaults.discard`.
    #[serde(default)]
    pub discard: Option<Discard>,
    /// Overrides `stream_defaults.duplicate_window`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub duplicate_window: Option<Duration>,
    /// Overrides `stream_defaults.storage`.
    #[serde(default)]
    pub storage: Option<Storage>,
    /// When an event is deleted besides the limits. Default
    /// [`Retention::Limits`].
    #[serde(default)]
    pub retention: Retention,
    /// Whether event schemas may name this stream in `x-stream` (false for
    /// `DLQ_EVENTS`, which holds dead letters of any type). Default true.
    #[serde(default = "yes")]
    pub events: bool,
}

fn yes() -> bool {
    true
}

/// A deployment profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Stream replicas (1 to 5).
    pub replicas: u8,
}

/// A stream's settings with defaults and profile applied: what the runtime
/// provisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedStream {
    /// Stream name.
    pub name: String,
    /// Subject patterns.
    pub subjects: Vec<String>,
    /// Maximum age of a message.
    pub max_age: Duration,
    /// Size limit in bytes.
    pub max_bytes: u64,
    /// Policy when full.
    pub discard: Discard,
    /// Deduplication window.
    pub duplicate_window: Duration,
    /// Storage backend.
    pub storage: Storage,
    /// When an event is deleted besides the limits.
    pub retention: Retention,
    /// Replicas from the profile.
    pub replicas: u8,
}

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not valid TOML or not the expected shape.
    #[error("invalid {CONFIG_FILE}: {0}")]
    Parse(String),
    /// No such stream.
    #[error("no stream named {0:?} in {CONFIG_FILE}")]
    UnknownStream(String),
    /// No such profile.
    #[error("no profile named {0:?} in {CONFIG_FILE}")]
    UnknownProfile(String),
}

impl Config {
    /// Parses `tidings.toml` text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] with the TOML error (line and column included).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// The settings of stream `name` under `profile`.
    ///
    /// # Errors
    /// Unknown stream or profile.
    pub fn resolve_stream(&self, name: &str, profile: &str) -> Result<ResolvedStream, ConfigError> {
        let s = self
            .streams
            .get(name)
            .ok_or_else(|| ConfigError::UnknownStream(name.to_string()))?;
        let p = self
            .profiles
            .get(profile)
            .ok_or_else(|| ConfigError::UnknownProfile(profile.to_string()))?;
        let d = &self.stream_defaults;
        Ok(ResolvedStream {
            name: name.to_string(),
            subjects: s.subjects.clone(),
            max_age: s.max_age.unwrap_or(d.max_age),
            max_bytes: s.max_bytes.unwrap_or(d.max_bytes).0,
            discard: s.discard.unwrap_or(d.discard),
            duplicate_window: s.duplicate_window.unwrap_or(d.duplicate_window),
            storage: s.storage.unwrap_or(d.storage),
            retention: s.retention,
            replicas: p.replicas,
        })
    }

    /// Every stream resolved under `profile`, in name order.
    ///
    /// # Errors
    /// Unknown profile.
    pub fn resolve_streams(&self, profile: &str) -> Result<Vec<ResolvedStream>, ConfigError> {
        self.streams
            .keys()
            .map(|n| self.resolve_stream(n, profile))
            .collect()
    }

    /// Whether `path` (relative to the registry, `/`-separated) is inside a
    /// shared-definitions directory.
    pub fn is_shared(&self, path: &str) -> bool {
        self.shared_dirs.iter().any(|d| {
            path.strip_prefix(d.trim_end_matches('/'))
                .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// A size in bytes, written `1GiB`, `512MiB`, `1000` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size such as 1GiB"))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown size unit {other:?}; use B, KiB, MiB, GiB or TiB"
                ))
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} B", self.0)
    }
}

/// Parses `30s`, `2m`, `12h`, `7d` (an integer and one unit).
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 30s, 2m, 12h or 7d"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{s:?} is not a duration such as 30s, 2m, 12h or 7d"
            ))
        }
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2 weeks").is_err());
        assert_eq!("1GiB".parse::<ByteSize>(), Ok(ByteSize(1 << 30)));
        assert!("1GB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn resolves_with_defaults_and_profile() -> Result<(), ConfigError> {
        let c = Config::parse(
            r#"
            [streams.A]
            subjects = ["a.>"]
            max_age = "1d"
            [profiles.dev]
            replicas = 1
            "#,
        )?;
        let s = c.resolve_stream("A", "dev")?;
        assert_eq!(s.max_age, Duration::from_secs(86_400));
        assert_eq!(s.max_bytes, 1 << 30);
        assert_eq!(s.replicas, 1);
        assert_eq!(s.retention, Retention::Limits, "limits unless said");
        assert!(c.resolve_stream("A", "prod").is_err());
        assert!(c.is_shared("common/ids.json"));
        assert!(!c.is_shared("commons/ids.json"));
        Ok(())
    }

    #[test]
    fn reads_each_retention_kind_and_refuses_others() -> Result<(), ConfigError> {
        for (text, kind) in [
            ("limits", Retention::Limits),
            ("interest", Retention::Interest),
            ("workqueue", Retention::WorkQueue),
        ] {
            let c = Config::parse(&format!(
                "[streams.A]\nsubjects = [\"a.>\"]\nretention = \"{text}\"\n[profiles.dev]\nreplicas = 1\n"
            ))?;
            assert_eq!(c.resolve_stream("A", "dev")?.retention, kind);
            assert_eq!(kind.to_string(), text);
        }
        let Err(ConfigError::Parse(message)) =
            Config::parse("[streams.A]\nsubjects = [\"a.>\"]\nretention = \"work_queue\"\n")
        else {
            panic!("an unknown retention kind must be refused");
        };
        assert!(message.contains("workqueue"), "{message}");
        Ok(())
    }
}
