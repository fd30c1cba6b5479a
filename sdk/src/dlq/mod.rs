//! The dead-letter queue: events a consumer group gave up, kept in
//! `DLQ_EVENTS` with their original body and headers and a failure record.
//!
//! * Moving ([`mover`]): after `max_deliveries` failed deliveries, or at once
//!   for a message that cannot be read, the subscriber copies the event to
//!   `dlq.<group>.<type>.<org>.<sequence>`, awaits the PubAck, and only then
//!   terminates the original. The copy leaves out the original's JetStream
//!   control headers and is made to fit `max_payload` (never cutting the
//!   body). If the copy fails the original is NAKed and tried again later
//!   (past `max_deliveries`, recorded for the monitor's alert); if the
//!   process dies between copy and terminate, the next delivery finds the
//!   copy and only terminates.
//! * Operating ([`ops`], [`redrive`]): list, show, redrive (to every group
//!   or to the failing group only) and purge, with filters by group, event
//!   type, organization and time.
//! * Monitoring ([`monitor`]): depth per group and event type against a
//!   threshold, moves that keep failing, and DLQ_EVENTS nearing its
//!   `max_bytes` (provisioned with `discard = "new"`, a full DLQ refuses
//!   new dead letters rather than evicting old ones), alerts through
//!   pluggable sinks ([`webhook`]: https POSTs with an optional bearer token).
mod control;
pub mod monitor;
pub mod mover;
pub mod ops;
pub mod record;
pub mod redrive;
pub mod webhook;

pub use monitor::{
    Alert, AlertKind, AlertSink, Depth, DlqMonitor, MonitorConfig, NatsSink, TracingSink,
};
pub use mover::{dlq_subject, MoveError, FAILURES_BUCKET};
pub use ops::{DeadLetter, DlqError, DlqFilter};
pub use record::{DeadLetterKind, FailureRecord, RecordError};
pub use redrive::{RedriveTarget, Redriven};
pub use webhook::{WebhookConfig, WebhookError, WebhookSink, WEBHOOK_TOKEN_ENV};

/// The dead-letter stream.
pub const DLQ_STREAM: &str = "DLQ_EVENTS";
