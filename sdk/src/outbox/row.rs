//! An outbox row: the prepared event as stored, and back.
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use uuid::Uuid;

use super::OutboxError;
use crate::publish::Prepared;

/// A claimed row, ready to publish.
#[derive(Debug, Clone)]
pub struct PendingRow {
    /// The row's sequence number: the order rows of one subject are sent in.
    pub seq: i64,
    /// The event id (`Nats-Msg-Id`).
    pub event_id: Uuid,
    /// The stream the event's type declares.
    pub stream: String,
    /// The subject.
    pub subject: String,
    /// The headers (CloudEvents attributes and `Nats-Msg-Id`).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// How many times a relay has claimed it, this claim included.
    pub claims: i64,
    /// How long ago it was enqueued, by the database's clock.
    pub age: Duration,
}

/// The columns a prepared event is stored as.
pub(crate) struct NewRow {
    pub(crate) event_id: String,
    pub(crate) stream: String,
    pub(crate) subject: String,
    pub(crate) headers: String,
    pub(crate) body: Vec<u8>,
}

impl NewRow {
    pub(crate) fn from_prepared(prepared: &Prepared) -> Self {
        Self {
            event_id: prepared.event_id().to_string(),
            stream: prepared.stream().to_string(),
            subject: prepared.subject().to_string(),
            headers: encode_headers(prepared.headers()),
            body: prepared.body().to_vec(),
        }
    }
}

/// The columns a row is read back from.
pub(crate) struct RawRow {
    pub(crate) seq: i64,
    pub(crate) event_id: String,
    pub(crate) stream: String,
    pub(crate) subject: String,
    pub(crate) headers: String,
    pub(crate) body: Vec<u8>,
    pub(crate) claims: i64,
    pub(crate) age_ms: i64,
}

impl RawRow {
    pub(crate) fn decode(self) -> Result<PendingRow, OutboxError> {
        let corrupt = |detail: String| OutboxError::CorruptRow {
            seq: self.seq,
            detail,
        };
        let event_id = Uuid::parse_str(&self.event_id)
            .map_err(|e| corrupt(format!("event_id {:?} is not a UUID: {e}", self.event_id)))?;
        let headers = decode_headers(&self.headers).map_err(corrupt)?;
        Ok(PendingRow {
            seq: self.seq,
            event_id,
            stream: self.stream,
            subject: self.subject,
            headers,
            body: Bytes::from(self.body),
            claims: self.claims,
            age: Duration::from_millis(u64::try_from(self.age_ms).unwrap_or(0)),
        })
    }
}

/// Headers as a JSON array of `[name, value]` pairs (a name with several
/// values appears once per value), sorted for a stable text.
pub(crate) fn encode_headers(headers: &HeaderMap) -> String {
    let mut pairs: Vec<(&str, &str)> = headers
        .iter()
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |value| (name.as_ref(), value.as_str()))
        })
        .collect();
    pairs.sort_unstable();
    // Serialising strings cannot fail.
    serde_json::to_string(&pairs).unwrap_or_else(|_| String::from("[]"))
}

/// The inverse of [`encode_headers`].
pub(crate) fn decode_headers(text: &str) -> Result<HeaderMap, String> {
    let pairs: Vec<(String, String)> = serde_json::from_str(text)
        .map_err(|e| format!("headers are not [name, value] pairs: {e}"))?;
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let name: async_nats::header::HeaderName = name
            .parse()
            .map_err(|e| format!("header name {name:?} is invalid: {e}"))?;
        headers.append(name, value.as_str());
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::{decode_headers, encode_headers};
    use async_nats::HeaderMap;

    #[test]
    fn headers_survive_the_round_trip_with_repeated_names() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", "0192");
        headers.append("ce-x", "a");
        headers.append("ce-x", "b");
        let text = encode_headers(&headers);
        let back = decode_headers(&text).expect("decodes");
        assert_eq!(encode_headers(&back), text);
        assert_eq!(back.get("Nats-Msg-Id").map(|v| v.as_str()), Some("0192"));
        assert_eq!(back.get_all("ce-x").count(), 2);
    }

    #[test]
    fn corrupt_headers_are_an_error_not_a_panic() {
        assert!(decode_headers("{").is_err());
        assert!(decode_headers(r#"[["bad name", "v"]]"#).is_err());
    }
}
