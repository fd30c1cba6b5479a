//! What happens to an event that will never be handled: it cannot be read
//! (a poison message), or its deliveries are used up.
//!
//! Today the event is terminated (the server stops redelivering it, so it
//! cannot block the group) with an error log that names the event, the
//! group and the reason; it stays in its stream until retention removes it.
use async_nats::jetstream::message::AckKind;

use super::worker::Delivered;

/// Why an event is given up.
#[derive(Debug, Clone)]
pub(crate) enum DeadLetterReason {
    /// The message cannot be read: not an event, an unknown type, a payload
    /// that breaks its schema, a version the reader cannot read.
    Poison(String),
    /// The handler failed on every allowed delivery.
    Exhausted {
        /// The last failure.
        last_error: String,
    },
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadLetterReason::Poison(reason) => write!(f, "unreadable: {reason}"),
            DeadLetterReason::Exhausted { last_error } => {
                write!(f, "deliveries used up; last error: {last_error}")
            }
        }
    }
}

/// Gives the event up: logs it and terminates it.
pub(crate) async fn dead_letter(group: &str, delivered: &Delivered, reason: DeadLetterReason) {
    tracing::error!(
        group,
        stream = %delivered.stream,
        stream_sequence = delivered.stream_sequence,
        subject = %delivered.message.subject,
        delivery = delivered.delivery,
        reason = %reason,
        "event given up and terminated"
    );
    if let Err(e) = delivered.acker.ack_with(AckKind::Term).await {
        tracing::error!(
            group,
            stream_sequence = delivered.stream_sequence,
            error = %e,
            "could not terminate a given-up event; it will be delivered again"
        );
    }
}
