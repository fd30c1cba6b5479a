//! The keywords an event schema declares about itself: `x-event-type`,
//! `x-schema-version` (and the file name they imply), `x-stream` and
//! `x-compatibility`, each checked (rules `schema/event-type`,
//! `schema/version`, `schema/file-name`, `stream/undeclared`,
//! `schema/compatibility`).
use serde_json::Value;

use super::config::Config;
use super::event_type::{parse_file_name, EventType};
use super::finding::Finding;
use crate::compat::Mode;

/// What a file declares, each `None` when missing or invalid (a finding).
pub(crate) struct Declared {
    pub(crate) event_type: Option<EventType>,
    pub(crate) version: Option<u32>,
    pub(crate) stream: Option<String>,
    pub(crate) mode: Option<Mode>,
}

/// Reads and checks the declarations of the event schema at `path`.
pub(crate) fn read(
    config: &Config,
    path: &str,
    value: &Value,
    findings: &mut Vec<Finding>,
) -> Declared {
    let obj = value.as_object();
    let get = |k: &str| obj.and_then(|o| o.get(k));

    let event_type = match get("x-event-type") {
        None => {
            findings.push(Finding::error(
                path,
                "",
                "schema/event-type",
                "the schema does not declare its event type",
                format!("add \"x-event-type\": \"service.entity.action\" (files outside {} are event schemas)", config.shared_dirs.join(", ")),
            ));
            None
        }
        Some(Value::String(s)) => match s.parse::<EventType>() {
            Ok(t) => Some(t),
            Err(e) => {
                findings.push(Finding::error(
                    path,
                    "/x-event-type",
                    "schema/event-type",
                    e.to_string(),
                    "use three lower-case tokens separated by dots, e.g. \"auth.user.created\"; tokens allow a-z, 0-9 and _",
                ));
                None
            }
        },
        Some(other) => {
            findings.push(Finding::error(
                path,
                "/x-event-type",
                "schema/event-type",
                format!("x-event-type must be a string, not {other}"),
                "write it as \"service.entity.action\"",
            ));
            None
        }
    };
    let version = match get("x-schema-version") {
        Some(Value::Number(n)) => match n.as_u64().and_then(|v| u32::try_from(v).ok()) {
            Some(v) if v >= 1 => Some(v),
            _ => {
                findings.push(Finding::error(
                    path,
                    "/x-schema-version",
                    "schema/version",
                    format!("x-schema-version must be a positive integer, not {n}"),
                    "versions count from 1 in steps of 1",
                ));
                None
            }
        },
        other => {
            findings.push(Finding::error(
                path,
                if other.is_some() { "/x-schema-version" } else { "" },
                "schema/version",
                "the schema does not declare an integer x-schema-version",
                "add \"x-schema-version\": N matching the file name (service/entity.action.vN.json)",
            ));
            None
        }
    };
    // File name.
    if let (Some(t), Some(v)) = (&event_type, version) {
        let expected = t.file_name(v);
        if expected != path {
            let hint = match parse_file_name(path) {
                Some((ft, fv)) => format!(
                    "the file name says {ft} v{fv}; rename the file to {expected}, or fix x-event-type / x-schema-version"
                ),
                None => format!("rename the file to {expected}"),
            };
            findings.push(Finding::error(
                path,
                if parse_file_name(path).is_some_and(|(ft, _)| ft == *t) {
                    "/x-schema-version"
                } else {
                    "/x-event-type"
                },
                "schema/file-name",
                format!("the file declares {t} v{v} but is not named {expected}"),
                hint,
            ));
        }
    }
    let stream = match get("x-stream") {
        Some(Value::String(s)) => Some(s.clone()),
        other => {
            findings.push(Finding::error(
                path,
                if other.is_some() { "/x-stream" } else { "" },
                "stream/undeclared",
                "the schema does not name its stream (x-stream)",
                format!(
                    "add \"x-stream\": one of {}",
                    config
                        .streams
                        .iter()
                        .filter(|(_, s)| s.events)
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            None
        }
    };
    let mode = match get("x-compatibility") {
        None => None,
        Some(Value::String(s)) => match s.parse::<Mode>() {
            Ok(m) => Some(m),
            Err(e) => {
                findings.push(Finding::error(path, "/x-compatibility", "schema/compatibility", e.to_string(), "use one of the seven modes, or remove x-compatibility to use the registry default"));
                None
            }
        },
        Some(other) => {
            findings.push(Finding::error(
                path,
                "/x-compatibility",
                "schema/compatibility",
                format!("x-compatibility must be a string, not {other}"),
                "e.g. \"x-compatibility\": \"FULL_TRANSITIVE\"",
            ));
            None
        }
    };
    Declared {
        event_type,
        version,
        stream,
        mode,
    }
}
