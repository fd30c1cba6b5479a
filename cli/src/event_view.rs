//! One stored event as `tail` and `replay` show it: decoded, checked
//! against the registry's schema of its type and version, and printed for
//! people (`pretty`, coloured on a terminal) or as one JSON object a line.
//! An event that cannot be decoded or breaks its schema is shown as such,
//! never skipped.
use std::collections::HashMap;

use clap::ValueEnum;
use serde_json::{json, Value};
use tidings::envelope::Envelope;
use tidings::publish::DynamicType;
use tidings::schema::Violation;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::registry_types::Registry;

/// How events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A header line per event (stream, sequence, type, version, subject,
    /// verdict) and its payload.
    Pretty,
    /// One JSON object per line: `stream`, `sequence`, `subject`,
    /// `stored_at`, `status`, the CloudEvent as `event`, and `violations`
    /// or `error` when it is not valid.
    Json,
}

/// What was found of one stored message.
#[derive(Debug)]
pub enum Status {
    /// Decoded, and its payload satisfies its registered schema.
    Valid,
    /// Decoded, but the payload breaks its registered schema.
    Invalid(Vec<Violation>),
    /// Decoded, but its type or version is not in the registry.
    Unregistered(String),
    /// Not a readable Tidings event (or its subject contradicts its body).
    Undecodable(String),
}

impl Status {
    fn word(&self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Invalid(_) => "invalid",
            Status::Unregistered(_) => "unregistered",
            Status::Undecodable(_) => "undecodable",
        }
    }

    /// Whether this is a finding (anything but valid).
    pub fn is_finding(&self) -> bool {
        !matches!(self, Status::Valid)
    }
}

/// One stored message, decoded and checked.
#[derive(Debug)]
pub struct Shown {
    /// Its stream.
    pub stream: String,
    /// Its stream sequence.
    pub sequence: u64,
    /// Its NATS subject.
    pub subject: String,
    /// When the stream stored it.
    pub stored_at: Option<OffsetDateTime>,
    /// The event, when it decoded.
    pub envelope: Option<Envelope>,
    /// The raw body, when it did not.
    pub raw: Option<Vec<u8>>,
    /// The verdict.
    pub status: Status,
}

/// Checks decoded events against the registry, each type and version's
/// schema compiled once.
pub struct Checker {
    registry: Registry,
    types: HashMap<(String, u32), Result<DynamicType, String>>,
}

impl Checker {
    /// A checker of `registry`'s schemas.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            types: HashMap::new(),
        }
    }

    /// The verdict on a decoded envelope.
    pub fn check(&mut self, envelope: &Envelope) -> Status {
        let key = (envelope.event_type.clone(), envelope.schema_version);
        let registry = &self.registry;
        let found = self.types.entry(key).or_insert_with(|| {
            registry
                .dynamic(&envelope.event_type, Some(envelope.schema_version))
                .map_err(|e| format!("{e:#}"))
        });
        match found {
            Ok(event_type) => {
                let violations = event_type.violations(&envelope.data);
                if violations.is_empty() {
                    Status::Valid
                } else {
                    Status::Invalid(violations)
                }
            }
            Err(why) => Status::Unregistered(why.clone()),
        }
    }

    /// Decodes and checks a stored message.
    pub fn shown(
        &mut self,
        stream: &str,
        sequence: u64,
        subject: &str,
        stored_at: Option<OffsetDateTime>,
        headers: Option<&async_nats::HeaderMap>,
        body: &[u8],
    ) -> Shown {
        let decoded = Envelope::decode_message(headers, body)
            .map_err(|e| e.to_string())
            .and_then(|envelope| {
                tidings::subject::check_subject(subject, &envelope)
                    .map(|()| envelope)
                    .map_err(|e| e.to_string())
            });
        let (envelope, raw, status) = match decoded {
            Ok(envelope) => {
                let status = self.check(&envelope);
                (Some(envelope), None, status)
            }
            Err(error) => (None, Some(body.to_vec()), Status::Undecodable(error)),
        };
        Shown {
            stream: stream.to_string(),
            sequence,
            subject: subject.to_string(),
            stored_at,
            envelope,
            raw,
            status,
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// `shown` as text in `format`, ending with a newline; ANSI colours when
/// `colour`.
pub fn render(shown: &Shown, format: Format, colour: bool) -> String {
    match format {
        Format::Json => format!("{}\n", to_json(shown)),
        Format::Pretty => pretty(shown, colour),
    }
}

fn to_json(shown: &Shown) -> Value {
    let event = match (&shown.envelope, &shown.raw) {
        (Some(envelope), _) => envelope
            .to_json()
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or(Value::Null),
        (None, Some(raw)) => Value::String(String::from_utf8_lossy(raw).into_owned()),
        (None, None) => Value::Null,
    };
    let mut out = json!({
        "stream": shown.stream,
        "sequence": shown.sequence,
        "subject": shown.subject,
        "stored_at": shown.stored_at.map(rfc3339),
        "status": shown.status.word(),
        "event": event,
    });
    match &shown.status {
        Status::Invalid(violations) => {
            out["violations"] = violations.iter().map(|v| json!(v.to_string())).collect();
        }
        Status::Unregistered(error) | Status::Undecodable(error) => out["error"] = json!(error),
        Status::Valid => {}
    }
    out
}

fn pretty(shown: &Shown, colour: bool) -> String {
    let paint = |code: &str, text: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let verdict = match shown.status {
        Status::Valid => paint("32", "valid"),
        Status::Unregistered(_) => paint("33", "UNREGISTERED"),
        Status::Invalid(_) | Status::Undecodable(_) => {
            paint("31;1", &shown.status.word().to_uppercase())
        }
    };
    let stored = shown.stored_at.map(rfc3339).unwrap_or_default();
    let mut out = match &shown.envelope {
        Some(e) => format!(
            "{} {}  {}  {} v{}  {}  {}\n  id {}  org {}  time {}  source {}\n",
            shown.stream,
            paint("1", &format!("#{}", shown.sequence)),
            stored,
            paint("36", &e.event_type),
            e.schema_version,
            shown.subject,
            verdict,
            e.id,
            e.organization_id,
            rfc3339(e.time),
            e.source,
        ),
        None => format!(
            "{} {}  {}  {}  {}\n",
            shown.stream,
            paint("1", &format!("#{}", shown.sequence)),
            stored,
            shown.subject,
            verdict
        ),
    };
    match &shown.status {
        Status::Invalid(violations) => {
            for v in violations {
                out.push_str(&format!("  ! {v}\n"));
            }
        }
        Status::Unregistered(error) | Status::Undecodable(error) => {
            out.push_str(&format!("  ! {error}\n"));
        }
        Status::Valid => {}
    }
    match (&shown.envelope, &shown.raw) {
        (Some(e), _) => out.push_str(&format!("  {}\n", e.data)),
        (None, Some(raw)) => out.push_str(&format!("  {}\n", String::from_utf8_lossy(raw))),
        (None, None) => {}
    }
    out
}

/// Ends `tail` and `replay`: the count of events shown (`what` says how,
/// e.g. "shown", "replayed from AUTH_EVENTS") and of those that were
/// undecodable, invalid or unregistered, on stderr; exit 1 when there were
/// any, else 0.
pub fn summary(shown: u64, what: &str, findings: u64) -> std::process::ExitCode {
    eprintln!(
        "{shown} event{} {what}{}",
        if shown == 1 { "" } else { "s" },
        if findings > 0 {
            format!(", {findings} undecodable, invalid or unregistered")
        } else {
            String::new()
        }
    );
    if findings > 0 {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}
