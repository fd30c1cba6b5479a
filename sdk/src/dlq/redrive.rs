//! Redriving a dead letter: republishing it to its original subject so the
//! subscribers handle it again, and deleting it from DLQ_EVENTS only once
//! the republished copy is stored.
use async_nats::jetstream;
use async_nats::HeaderMap;

use super::control::is_control_header;
use super::mover::dlq_subject;
use super::ops::{purge, DeadLetter, DlqError};
use super::record::{FailureRecord, REDRIVE_COUNT_HEADER, REDRIVE_GROUP_HEADER};
use crate::envelope::{redrive_msg_id, MSG_ID_HEADER};
use crate::subject::{subject_with_key, SUBJECT_TOKENS};

/// The header that makes the server store the redrive only in the stream
/// the dead letter came from.
const EXPECTED_STREAM_HEADER: &str = "Nats-Expected-Stream";

/// Which consumer groups handle a redriven event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RedriveTarget {
    /// Every group whose filter matches the subject, like a new event (the
    /// groups that handled it before see it twice: they should deduplicate
    /// by event id).
    #[default]
    EveryGroup,
    /// Only the group that gave it up: the event carries
    /// `Tidings-Redrive-Group: <group>`, and subscribers of other groups ack
    /// it without running a handler.
    FailingGroup,
}

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// The dead letter's sequence (now deleted).
    pub dlq_sequence: u64,
    /// The original subject it went back to.
    pub subject: String,
    /// Its new stream and sequence.
    pub stream: String,
    /// Its new sequence.
    pub sequence: u64,
    /// How many times it has now been redriven.
    pub redrive_count: u32,
    /// The group it is meant for, if only one ([`RedriveTarget::FailingGroup`]).
    pub group: Option<String>,
}

/// Republishes a dead letter to its original subject, and deletes it from
/// the DLQ only after the PubAck.
///
/// The copy has the same body and headers, without the failure record,
/// without JetStream control headers, with `Tidings-Redrive-Count` one
/// higher and `Nats-Msg-Id: <event id>.redrive.<DLQ sequence>` (which the
/// decoder accepts as naming the event, see
/// [`crate::envelope::redrive_msg_id`]). It goes only to the subject the
/// DLQ subject names and only into the record's stream
/// (`Nats-Expected-Stream`). A PubAck saying `duplicate` deletes the dead
/// letter only if the stored message it names is this very redrive (an
/// earlier attempt that stopped before the delete).
///
/// # Errors
/// The dead letter has no failure record ([`DlqError::NotADeadLetter`]),
/// its record names a subject or stream the DLQ subject does not
/// ([`DlqError::RedriveRefused`]), the republish failed
/// ([`DlqError::Redrive`]), or was answered `duplicate` for another message
/// ([`DlqError::RedriveDuplicate`]); in every case the dead letter stays.
pub async fn redrive(
    js: &jetstream::Context,
    dead: &DeadLetter,
    target: RedriveTarget,
) -> Result<Redriven, DlqError> {
    let record = dead
        .record
        .clone()
        .map_err(|source| DlqError::NotADeadLetter {
            sequence: dead.dlq_sequence,
            source,
        })?;
    check_subject(dead, &record)?;
    let count = record.redrive_count.saturating_add(1);
    let group = (target == RedriveTarget::FailingGroup).then(|| record.group.clone());
    let msg_id = match dead.envelope() {
        Ok(envelope) => redrive_msg_id(envelope.id, dead.dlq_sequence),
        // Unreadable: no event id to name; still deterministic.
        Err(_) => format!("redrive.{}", dead.dlq_sequence),
    };
    let mut headers = HeaderMap::new();
    for (name, values) in dead.headers.iter() {
        let name: &str = name.as_ref();
        let ours = name
            .get(..12)
            .is_some_and(|p| p.eq_ignore_ascii_case("tidings-dlq-"));
        if ours
            || is_control_header(name)
            || name.eq_ignore_ascii_case(MSG_ID_HEADER)
            || name.eq_ignore_ascii_case(REDRIVE_COUNT_HEADER)
            || name.eq_ignore_ascii_case(REDRIVE_GROUP_HEADER)
        {
            continue;
        }
        for value in values {
            headers.append(name, value.clone());
        }
    }
    headers.insert(REDRIVE_COUNT_HEADER, count.to_string().as_str());
    if let Some(group) = &group {
        headers.insert(REDRIVE_GROUP_HEADER, group.as_str());
    }
    headers.insert(MSG_ID_HEADER, msg_id.as_str());
    headers.insert(EXPECTED_STREAM_HEADER, record.stream.as_str());
    let failed = |detail: String| DlqError::Redrive {
        sequence: dead.dlq_sequence,
        subject: record.subject.clone(),
        detail,
    };
    let ack = js
        .publish_with_headers(record.subject.clone(), headers, dead.body.clone())
        .await
        .map_err(|e| failed(e.to_string()))?
        .await
        .map_err(|e| failed(e.to_string()))?;
    if ack.duplicate {
        let stored = js
            .get_stream(&ack.stream)
            .await
            .map_err(|e| failed(format!("reading the message it duplicates: {e}")))?
            .get_raw_message(ack.sequence)
            .await
            .map_err(|e| failed(format!("reading the message it duplicates: {e}")))?;
        let count_text = count.to_string();
        let this_redrive = stored.subject.as_str() == record.subject
            && stored.payload == dead.body
            && stored.headers.get(MSG_ID_HEADER).map(|v| v.as_str()) == Some(msg_id.as_str())
            && stored.headers.get(REDRIVE_COUNT_HEADER).map(|v| v.as_str())
                == Some(count_text.as_str());
        if !this_redrive {
            return Err(DlqError::RedriveDuplicate {
                sequence: dead.dlq_sequence,
                stream: ack.stream,
                stored_sequence: ack.sequence,
            });
        }
        tracing::info!(dlq_sequence = dead.dlq_sequence, stream = %ack.stream, sequence = ack.sequence, "an earlier redrive of this dead letter was stored but not deleted from the DLQ");
    }
    purge(js, dead.dlq_sequence).await?;
    tracing::info!(dlq_sequence = dead.dlq_sequence, subject = %record.subject, stream = %ack.stream, sequence = ack.sequence, redrive_count = count, group = ?group, "dead letter redriven");
    Ok(Redriven {
        dlq_sequence: dead.dlq_sequence,
        subject: record.subject,
        stream: ack.stream,
        sequence: ack.sequence,
        redrive_count: count,
        group,
    })
}

/// Refuses a record whose subject the dead letter's own DLQ subject does
/// not name (group, the subject's first four tokens, the sequence), that is
/// not a publishable subject, or, for a readable event, that is not the
/// event's own subject (type, tenant, key).
fn check_subject(dead: &DeadLetter, record: &FailureRecord) -> Result<(), DlqError> {
    let refuse = |reason: String| DlqError::RedriveRefused {
        sequence: dead.dlq_sequence,
        subject: record.subject.clone(),
        reason,
    };
    let expected = dlq_subject(&record.group, &record.subject, record.sequence);
    if dead.subject != expected {
        return Err(refuse(format!(
            "the dead letter is stored on {}, but its record would put it on {expected}",
            dead.subject
        )));
    }
    let publishable = record.subject.split('.').all(|t| {
        !t.is_empty() && t != "*" && t != ">" && !t.bytes().any(|b| b.is_ascii_whitespace())
    });
    if !publishable {
        return Err(refuse("not a subject one can publish to".into()));
    }
    if let Ok(envelope) = dead.envelope() {
        let own = subject_with_key(
            &envelope.event_type,
            &envelope.organization_id,
            envelope.subject.as_deref(),
        )
        .map_err(|e| refuse(format!("the event's own subject is invalid: {e}")))?;
        if record.subject != own {
            return Err(refuse(format!(
                "the event's own subject is {own} ({SUBJECT_TOKENS} tokens: type, tenant, key)"
            )));
        }
    }
    Ok(())
}
