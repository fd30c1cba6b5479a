//! Listing, showing, redriving and purging dead letters.
use async_nats::jetstream;
use async_nats::HeaderMap;
use bytes::Bytes;
use time::OffsetDateTime;

use super::record::{FailureRecord, RecordError};
pub use super::redrive::{redrive, RedriveTarget, Redriven};
use super::DLQ_STREAM;
use crate::envelope::{DecodeError, Envelope};
use crate::replay::{ReplayError, ReplayStart, Scan};
use crate::token::{check_group, check_token, OrganizationId};

/// Why a DLQ operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// A filter value cannot be used.
    #[error("invalid filter: {0}")]
    Filter(String),
    /// DLQ_EVENTS does not exist.
    #[error(
        "{DLQ_STREAM} does not exist: provision the streams first (`tidings streams apply --profile <profile>` with an operator credential, or `tidings::streams::apply`)"
    )]
    StreamMissing,
    /// No dead letter has this sequence.
    #[error("{DLQ_STREAM} has no message #{0}")]
    NotFound(u64),
    /// The message is not a Tidings dead letter.
    #[error("{DLQ_STREAM} #{sequence}: {source}")]
    NotADeadLetter {
        /// Its sequence.
        sequence: u64,
        /// What is missing.
        #[source]
        source: RecordError,
    },
    /// The server refused or failed.
    #[error("{DLQ_STREAM}: {0}")]
    Server(String),
    /// The redriven copy was not acknowledged: the dead letter stays.
    #[error(
        "redrive of {DLQ_STREAM} #{sequence} to {subject} failed (the dead letter stays): {detail}"
    )]
    Redrive {
        /// The dead letter.
        sequence: u64,
        /// The original subject.
        subject: String,
        /// Why.
        detail: String,
    },
    /// The record names a subject or stream the dead letter's DLQ subject
    /// does not: nothing was published, the dead letter stays.
    #[error("redrive of {DLQ_STREAM} #{sequence} to {subject} refused (the dead letter stays): {reason}")]
    RedriveRefused {
        /// The dead letter.
        sequence: u64,
        /// The subject its record names.
        subject: String,
        /// What does not agree.
        reason: String,
    },
    /// The redrive was answered `duplicate` for a message that is not this
    /// redrive: nothing of this dead letter was stored, it stays.
    #[error("redrive of {DLQ_STREAM} #{sequence} was answered duplicate of {stream} #{stored_sequence}, which is not this redrive (the dead letter stays)")]
    RedriveDuplicate {
        /// The dead letter.
        sequence: u64,
        /// The stream holding the other message.
        stream: String,
        /// The other message's sequence.
        stored_sequence: u64,
    },
}

impl From<ReplayError> for DlqError {
    fn from(e: ReplayError) -> Self {
        DlqError::Server(e.to_string())
    }
}

/// Which dead letters an operation applies to. Group, type and organization
/// filter on the server (they are subject tokens); times select by when the
/// dead letter was stored, `[from, until)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DlqFilter {
    /// Only this consumer group's.
    pub group: Option<String>,
    /// Only this event type (`service.entity.action`).
    pub event_type: Option<String>,
    /// Only this tenant's.
    pub organization: Option<OrganizationId>,
    /// Stored at or after.
    pub from: Option<OffsetDateTime>,
    /// Stored before.
    pub until: Option<OffsetDateTime>,
}

impl DlqFilter {
    /// The subject filter: `dlq.<group>.<type>.<org>.*`, `*` for what is open.
    ///
    /// # Errors
    /// A group or type that is not made of valid tokens.
    pub fn subject(&self) -> Result<String, DlqError> {
        let group = match &self.group {
            Some(g) => {
                check_group(g).map_err(|e| DlqError::Filter(e.to_string()))?;
                g.as_str()
            }
            None => "*",
        };
        let event_type = match &self.event_type {
            Some(t) => {
                let tokens: Vec<&str> = t.split('.').collect();
                if tokens.len() != 3 {
                    return Err(DlqError::Filter(format!(
                        "event type {t:?} is not service.entity.action"
                    )));
                }
                for token in &tokens {
                    check_token("event type token", token)
                        .map_err(|e| DlqError::Filter(e.to_string()))?;
                }
                t.as_str()
            }
            None => "*.*.*",
        };
        let org = self.organization.as_ref().map_or("*", |o| o.as_str());
        Ok(format!("dlq.{group}.{event_type}.{org}.*"))
    }
}

/// One dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence in DLQ_EVENTS.
    pub dlq_sequence: u64,
    /// When it was dead-lettered.
    pub stored_at: OffsetDateTime,
    /// Its DLQ subject.
    pub subject: String,
    /// The failure record, or why the headers do not hold one.
    pub record: Result<FailureRecord, RecordError>,
    /// Every header: the original ones and the record.
    pub headers: HeaderMap,
    /// The original body, untouched.
    pub body: Bytes,
}

impl DeadLetter {
    /// The original event, decoded from the untouched body.
    ///
    /// # Errors
    /// The body is not a Tidings event (a poison message).
    pub fn envelope(&self) -> Result<Envelope, DecodeError> {
        Envelope::decode(&self.body)
    }

    /// The event type from the DLQ subject (also for unreadable bodies).
    pub fn event_type(&self) -> Option<String> {
        let tokens: Vec<&str> = self.subject.split('.').collect();
        (tokens.len() == 7).then(|| tokens[2..5].join("."))
    }

    /// The consumer group from the DLQ subject.
    pub fn group(&self) -> Option<&str> {
        let tokens: Vec<&str> = self.subject.split('.').collect();
        (tokens.len() == 7).then(|| tokens[1])
    }

    /// The organization from the DLQ subject.
    pub fn organization(&self) -> Option<&str> {
        let tokens: Vec<&str> = self.subject.split('.').collect();
        (tokens.len() == 7).then(|| tokens[5])
    }

    fn new(
        dlq_sequence: u64,
        stored_at: OffsetDateTime,
        subject: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> Self {
        Self {
            record: FailureRecord::read(&headers),
            dlq_sequence,
            stored_at,
            subject,
            headers,
            body,
        }
    }
}

/// The dead letters the filter selects, oldest first, at most `limit`.
///
/// # Errors
/// An invalid filter or a server error.
pub async fn list(
    js: &jetstream::Context,
    filter: &DlqFilter,
    limit: Option<usize>,
) -> Result<Vec<DeadLetter>, DlqError> {
    let start = ReplayStart::Time(filter.from.unwrap_or(OffsetDateTime::UNIX_EPOCH));
    let subject = filter.subject()?;
    let stream = dlq_stream(js).await?;
    let mut scan = Scan::start(&stream, vec![subject], start, filter.until).await?;
    let mut out = Vec::new();
    while limit.is_none_or(|l| out.len() < l) {
        let Some(next) = scan.next().await else { break };
        let scanned = next?;
        out.push(DeadLetter::new(
            scanned.sequence,
            scanned.stored_at,
            scanned.message.subject.to_string(),
            scanned.message.headers.unwrap_or_default(),
            scanned.message.payload,
        ));
    }
    Ok(out)
}

/// One dead letter by its DLQ sequence.
///
/// # Errors
/// No such message, or a server error.
pub async fn get(js: &jetstream::Context, dlq_sequence: u64) -> Result<DeadLetter, DlqError> {
    let stream = dlq_stream(js).await?;
    let message = stream.get_raw_message(dlq_sequence).await.map_err(|e| {
        if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound {
            DlqError::NotFound(dlq_sequence)
        } else {
            DlqError::Server(e.to_string())
        }
    })?;
    Ok(DeadLetter::new(
        message.sequence,
        message.time,
        message.subject.to_string(),
        message.headers,
        message.payload,
    ))
}

pub(crate) async fn dlq_stream(
    js: &jetstream::Context,
) -> Result<jetstream::stream::Stream, DlqError> {
    js.get_stream(DLQ_STREAM).await.map_err(|e| {
        if crate::streams::is_not_found(&e) {
            DlqError::StreamMissing
        } else {
            DlqError::Server(e.to_string())
        }
    })
}

/// Deletes a dead letter.
///
/// # Errors
/// No such message, or a server error.
pub async fn purge(js: &jetstream::Context, dlq_sequence: u64) -> Result<(), DlqError> {
    let stream = dlq_stream(js).await?;
    match stream.delete_message(dlq_sequence).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(DlqError::NotFound(dlq_sequence)),
        Err(e) => match e.kind() {
            // The server answers a missing sequence with "no message found",
            // under either code depending on its version.
            jetstream::stream::DeleteMessageErrorKind::JetStream(api)
                if api.error_code() == jetstream::ErrorCode::NO_MESSAGE_FOUND
                    || (api.error_code() == jetstream::ErrorCode::STREAM_MESSAGE_DELETE_FAILED
                        && api.to_string().contains("no message found")) =>
            {
                Err(DlqError::NotFound(dlq_sequence))
            }
            _ => Err(DlqError::Server(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_subject_tokens() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(DlqFilter::default().subject()?, "dlq.*.*.*.*.*.*");
        let f = DlqFilter {
            group: Some("analytics".into()),
            event_type: Some("auth.user.created".into()),
            organization: Some(OrganizationId::new("org-1")?),
            ..Default::default()
        };
        assert_eq!(f.subject()?, "dlq.analytics.auth.user.created.org-1.*");
        for bad in [
            DlqFilter {
                group: Some("a.b".into()),
                ..Default::default()
            },
            DlqFilter {
                event_type: Some("auth.user".into()),
                ..Default::default()
            },
            DlqFilter {
                event_type: Some("auth.*.created".into()),
                ..Default::default()
            },
        ] {
            assert!(matches!(bad.subject(), Err(DlqError::Filter(_))), "{bad:?}");
        }
        Ok(())
    }
}
