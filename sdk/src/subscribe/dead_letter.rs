//! What happens to an event that will never be handled: it cannot be read
//! (a poison message), or its deliveries are used up. It is moved to the
//! dead-letter queue (see [`crate::dlq`]): copied to DLQ_EVENTS with its
//! failure record, and terminated only after the copy's PubAck. If the copy
//! fails, the original is NAKed and the move is tried again on its next
//! delivery: the event is never in neither place. A move still failing
//! once the event has used its deliveries is recorded for the
//! [`crate::dlq::DlqMonitor`], which alerts on it.
use async_nats::jetstream::message::AckKind;

use super::worker::{Delivered, Shared};
use crate::dlq::mover::Original;
use crate::dlq::record::REDRIVE_GROUP_HEADER;
use crate::dlq::DeadLetterKind;

/// Whether the message is an event redriven for one consumer group only
/// (`Tidings-Redrive-Group`, see [`crate::dlq::RedriveTarget`]) and that
/// group is not `group`: then `group` acks it without handling it.
pub(crate) fn redriven_for_another_group(group: &str, message: &async_nats::Message) -> bool {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(REDRIVE_GROUP_HEADER))
        .is_some_and(|only| only.as_str() != group)
}

/// Why an event is given up.
#[derive(Debug, Clone)]
pub(crate) enum DeadLetterReason {
    /// The message cannot be read: not an event, an unknown type, a payload
    /// that breaks its schema, a version the reader cannot read.
    Poison(String),
    /// The handler failed on every allowed delivery (failed runs and
    /// deliveries of unknown outcome).
    Exhausted {
        /// The last failure.
        last_error: String,
    },
}

/// Moves the event to the dead-letter queue, then terminates it.
/// `deliveries`: the handler runs it had (for a poison message, the
/// server's delivery count), for the failure record.
pub(crate) async fn dead_letter(
    shared: &Shared,
    delivered: &Delivered,
    reason: DeadLetterReason,
    deliveries: u32,
) {
    let group = shared.group.as_str();
    let (kind, error) = match reason {
        DeadLetterReason::Poison(reason) => (DeadLetterKind::Poison, reason),
        DeadLetterReason::Exhausted { last_error } => (DeadLetterKind::Exhausted, last_error),
    };
    let original = Original {
        message: &delivered.message,
        stream: &delivered.stream,
        sequence: delivered.stream_sequence,
        deliveries,
    };
    let dlq_sequence = match shared.mover.copy(group, &original, kind, &error).await {
        Ok(sequence) => sequence,
        Err(e) => {
            let delay = shared.config.backoff.delay(deliveries);
            // The server's count: every failed copy was a delivery too.
            if delivered.delivery >= shared.config.max_deliveries {
                // Past its deliveries and still not in the DLQ: retrying
                // alone would go unnoticed; the monitor alerts on this.
                shared
                    .mover
                    .note_stuck(group, &original, &e.to_string())
                    .await;
                tracing::error!(
                    group,
                    stream = %delivered.stream,
                    stream_sequence = delivered.stream_sequence,
                    deliveries = delivered.delivery,
                    error = %e,
                    "moving the event to the dead-letter queue keeps failing past max_deliveries; recorded for the DLQ monitor's alert"
                );
            }
            tracing::error!(
                group,
                stream = %delivered.stream,
                stream_sequence = delivered.stream_sequence,
                error = %e,
                retry_in = ?delay,
                "could not move the event to the dead-letter queue; it stays and is tried again"
            );
            // Not the handler's failure: the redelivery does not count it.
            shared
                .mover
                .note_release(group, &delivered.stream, delivered.stream_sequence)
                .await;
            if let Err(e) = delivered.acker.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(group, error = %e, "NAK failed; the event comes back after the ack wait");
            }
            return;
        }
    };
    shared.telemetry.dead_lettered(kind.as_str());
    crate::telemetry::spans::settled("dead_lettered");
    #[cfg(feature = "testing")]
    crate::testing::failpoint::reached("dlq-after-copy").await;
    if let Err(e) = delivered.acker.ack_with(AckKind::Term).await {
        tracing::warn!(
            group,
            stream_sequence = delivered.stream_sequence,
            error = %e,
            "could not terminate a dead-lettered event; its next delivery finds the copy and terminates it"
        );
    }
    shared
        .mover
        .forget(group, &delivered.stream, delivered.stream_sequence)
        .await;
    tracing::error!(
        group,
        stream = %delivered.stream,
        stream_sequence = delivered.stream_sequence,
        subject = %delivered.message.subject,
        deliveries,
        reason = kind.as_str(),
        error = %error,
        dlq_sequence,
        "event moved to the dead-letter queue"
    );
}
