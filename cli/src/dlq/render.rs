//! How `ls` and `show` print dead letters, as text and as JSON.
use std::fmt::Write as _;

use serde_json::{json, Value};
use tidings::dlq::{DeadLetter, FailureRecord};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The longest last-error text in an `ls` row, in characters.
const ERROR_COLUMN: usize = 60;
/// The most of a poison body `show` prints as text, in bytes.
const BODY_SHOWN: usize = 2048;

/// RFC 3339 with all its digits (JSON).
fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// RFC 3339 to the second, in UTC (text).
fn short_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    rfc3339(t)
}

/// `text` cut to `max` characters, with `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The consumer group: from the record, else from the DLQ subject.
fn group(dead: &DeadLetter) -> String {
    match &dead.record {
        Ok(record) => record.group.clone(),
        Err(_) => dead
            .subject
            .split('.')
            .nth(1)
            .unwrap_or_default()
            .to_string(),
    }
}

/// One `ls` row's cells.
fn row(dead: &DeadLetter) -> [String; 8] {
    let (deliveries, reason, error) = match &dead.record {
        Ok(r) => (
            r.deliveries.to_string(),
            r.kind.as_str().to_string(),
            r.error.clone(),
        ),
        Err(e) => ("-".into(), "-".into(), e.to_string()),
    };
    [
        dead.dlq_sequence.to_string(),
        short_time(dead.stored_at),
        group(dead),
        dead.event_type().unwrap_or_else(|| "-".into()),
        dead.organization().unwrap_or("-").to_string(),
        deliveries,
        reason,
        truncate(&error, ERROR_COLUMN),
    ]
}

/// `ls` as aligned columns.
pub fn ls_text(dead: &[DeadLetter]) -> String {
    if dead.is_empty() {
        return "no dead letters\n".into();
    }
    let header = [
        "SEQ",
        "STORED",
        "GROUP",
        "TYPE",
        "ORG",
        "DELIVERIES",
        "REASON",
        "LAST ERROR",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(dead.iter().map(row))
        .map(Vec::from)
        .collect();
    crate::table::aligned(&rows)
}

fn record_json(record: &FailureRecord) -> Value {
    json!({
        "reason": record.kind.as_str(),
        "group": record.group,
        "deliveries": record.deliveries,
        "error": record.error,
        "stream": record.stream,
        "sequence": record.sequence,
        "subject": record.subject,
        "first_failure": record.first_failure.map(rfc3339),
        "last_failure": rfc3339(record.last_failure),
        "redrive_count": record.redrive_count,
    })
}

/// `ls` as a JSON array, full error texts.
pub fn ls_json(dead: &[DeadLetter]) -> Value {
    Value::Array(
        dead.iter()
            .map(|d| {
                let mut row = json!({
                    "dlq_sequence": d.dlq_sequence,
                    "stored_at": rfc3339(d.stored_at),
                    "subject": d.subject,
                    "group": group(d),
                    "event_type": d.event_type(),
                    "organization": d.organization(),
                    "event_id": d.envelope().ok().map(|e| e.id.to_string()),
                });
                match &d.record {
                    Ok(r) => {
                        row["deliveries"] = json!(r.deliveries);
                        row["reason"] = json!(r.kind.as_str());
                        row["error"] = json!(r.error);
                        row["record"] = record_json(r);
                    }
                    Err(e) => row["record_error"] = json!(e.to_string()),
                }
                row
            })
            .collect(),
    )
}

/// The original headers, without the failure record's.
fn original_headers(dead: &DeadLetter) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, values) in dead.headers.iter() {
        let name: &str = name.as_ref();
        if name.len() > 12 && name[..12].eq_ignore_ascii_case("tidings-dlq-") {
            continue;
        }
        for value in values {
            out.push((name.to_string(), value.as_str().to_string()));
        }
    }
    out.sort();
    out
}

/// The first `max` bytes of a body as lossy UTF-8, and whether it was cut.
fn lossy(body: &[u8], max: usize) -> (String, bool) {
    let cut = body.len() > max;
    (
        String::from_utf8_lossy(&body[..body.len().min(max)]).into_owned(),
        cut,
    )
}

/// `show` as labelled sections.
pub fn show_text(dead: &DeadLetter) -> String {
    let mut out = String::new();
    let line = |out: &mut String, label: &str, value: &str| {
        let _ = writeln!(out, "  {label:<15} {value}");
    };
    let _ = writeln!(
        out,
        "dead letter #{} in {}",
        dead.dlq_sequence,
        tidings::dlq::DLQ_STREAM
    );
    line(&mut out, "stored", &rfc3339(dead.stored_at));
    line(&mut out, "dlq subject", &dead.subject);
    out.push_str("\nfailure record\n");
    match &dead.record {
        Ok(r) => {
            line(&mut out, "reason", r.kind.as_str());
            line(&mut out, "group", &r.group);
            line(&mut out, "deliveries", &r.deliveries.to_string());
            line(&mut out, "stream", &r.stream);
            line(&mut out, "sequence", &r.sequence.to_string());
            line(&mut out, "subject", &r.subject);
            line(
                &mut out,
                "first failure",
                &r.first_failure.map_or_else(|| "unknown".into(), rfc3339),
            );
            line(&mut out, "last failure", &rfc3339(r.last_failure));
            line(&mut out, "redrive count", &r.redrive_count.to_string());
            line(&mut out, "error", &r.error);
        }
        Err(e) => line(&mut out, "unreadable", &e.to_string()),
    }
    let headers = original_headers(dead);
    if !headers.is_empty() {
        out.push_str("\nheaders\n");
        let width = headers.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, value) in &headers {
            let _ = writeln!(out, "  {name:<width$} {value}");
        }
    }
    match dead.envelope() {
        Ok(e) => {
            out.push_str("\nevent\n");
            line(&mut out, "id", &e.id.to_string());
            line(&mut out, "type", &e.event_type);
            line(&mut out, "source", &e.source);
            line(&mut out, "time", &rfc3339(e.time));
            line(&mut out, "organizationid", e.organization_id.as_str());
            line(&mut out, "schemaversion", &e.schema_version.to_string());
            if let Some(schema) = &e.dataschema {
                line(&mut out, "dataschema", schema);
            }
            if let Some(subject) = &e.subject {
                line(&mut out, "subject", subject);
            }
            for (name, value) in &e.extensions {
                line(&mut out, name, &value.to_string());
            }
            out.push_str("  data\n");
            for l in to_pretty(&e.data).lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
        Err(error) => {
            out.push_str("\nevent (cannot be decoded)\n");
            line(&mut out, "decode error", &error.to_string());
            let (text, cut) = lossy(&dead.body, BODY_SHOWN);
            let _ = writeln!(
                out,
                "  raw body ({} bytes{}, lossy UTF-8):",
                dead.body.len(),
                if cut {
                    format!(", the first {BODY_SHOWN} shown")
                } else {
                    String::new()
                }
            );
            for l in text.lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
    }
    out
}

/// `show` as one JSON object (the whole body, lossy, for a poison message).
pub fn show_json(dead: &DeadLetter) -> Value {
    let mut out = json!({
        "dlq_sequence": dead.dlq_sequence,
        "stored_at": rfc3339(dead.stored_at),
        "subject": dead.subject,
        "group": group(dead),
        "event_type": dead.event_type(),
        "organization": dead.organization(),
        "headers": original_headers(dead)
            .into_iter()
            .map(|(n, v)| json!([n, v]))
            .collect::<Vec<_>>(),
    });
    match &dead.record {
        Ok(r) => out["record"] = record_json(r),
        Err(e) => out["record_error"] = json!(e.to_string()),
    }
    match dead.envelope() {
        Ok(_) => {
            out["event"] = serde_json::from_slice(&dead.body).unwrap_or(Value::Null);
        }
        Err(e) => {
            out["decode_error"] = json!(e.to_string());
            out["body"] = json!(String::from_utf8_lossy(&dead.body));
            out["body_bytes"] = json!(dead.body.len());
        }
    }
    out
}

/// Pretty JSON text.
pub fn to_pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_with_an_ellipsis() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefghijkl", 5), "abcd…");
        assert_eq!(truncate("ééééé", 3), "éé…");
    }

    #[test]
    fn bodies_are_cut_lossily() {
        assert_eq!(lossy(b"abc", 10), ("abc".into(), false));
        let (text, cut) = lossy(&[0x66, 0xff, 0x67, 0x68], 3);
        assert_eq!(text, "f\u{fffd}g");
        assert!(cut);
    }
}
