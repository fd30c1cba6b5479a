//! The hooks that record metrics (see [`super::names`]), called from the
//! publish and subscribe paths. Without an installed recorder each is a
//! handful of no-op calls.
use std::sync::Arc;
use std::time::Instant;

use metrics::{counter, gauge, histogram, SharedString};

use super::names::*;
use super::MESSAGING_SYSTEM;
use crate::publish::{PublishError, Published};

/// Counts a publish in progress until dropped.
pub(crate) struct PublishInFlight {
    event_type: &'static str,
}

impl PublishInFlight {
    pub(crate) fn start(event_type: &'static str) -> Self {
        gauge!(PUBLISH_IN_FLIGHT, EVENT_TYPE => event_type).increment(1.0);
        Self { event_type }
    }
}

impl Drop for PublishInFlight {
    fn drop(&mut self) {
        gauge!(PUBLISH_IN_FLIGHT, EVENT_TYPE => self.event_type).decrement(1.0);
    }
}

/// One publish operation (`publish` or `publish_batch`) ended: its
/// duration, and per event its outcome, attempts, retries and failures.
pub(crate) fn published<'a>(
    operation: &'static str,
    event_type: &'static str,
    stream: &'static str,
    started: Instant,
    results: impl IntoIterator<Item = &'a Result<Published, PublishError>>,
) {
    let mut operation_error = None;
    for result in results {
        let (outcome, error, attempts) = match result {
            Ok(p) if p.duplicate => ("duplicate", None, p.attempts),
            Ok(p) => ("stored", None, p.attempts),
            Err(e) => ("failed", Some(e.kind_name()), attempts_of(e)),
        };
        match error {
            None => counter!(SENT_MESSAGES, SYSTEM => MESSAGING_SYSTEM, EVENT_TYPE => event_type, STREAM => stream, OUTCOME => outcome).increment(1),
            Some(error) => {
                operation_error = Some(error);
                counter!(SENT_MESSAGES, SYSTEM => MESSAGING_SYSTEM, EVENT_TYPE => event_type, STREAM => stream, OUTCOME => outcome, ERROR_TYPE => error).increment(1);
                counter!(PUBLISH_FAILURES, EVENT_TYPE => event_type, ERROR_TYPE => error).increment(1);
            }
        }
        if attempts > 0 {
            counter!(PUBLISH_ATTEMPTS, EVENT_TYPE => event_type).increment(u64::from(attempts));
        }
        if attempts > 1 {
            counter!(PUBLISH_RETRIES, EVENT_TYPE => event_type).increment(u64::from(attempts - 1));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    match operation_error {
        None => histogram!(OPERATION_DURATION, SYSTEM => MESSAGING_SYSTEM, OPERATION_NAME => operation, OPERATION_TYPE => "send", EVENT_TYPE => event_type, STREAM => stream).record(seconds),
        Some(error) => histogram!(OPERATION_DURATION, SYSTEM => MESSAGING_SYSTEM, OPERATION_NAME => operation, OPERATION_TYPE => "send", EVENT_TYPE => event_type, STREAM => stream, ERROR_TYPE => error).record(seconds),
    }
}

/// The attempts a failed publish made (0: refused before sending).
fn attempts_of(error: &PublishError) -> u32 {
    match error {
        PublishError::RetriesExhausted { attempts, .. } => {
            attempts.last().map_or(0, |failure| failure.attempt)
        }
        PublishError::Rejected { failure, .. } | PublishError::ClientRefused { failure, .. } => {
            failure.attempt
        }
        _ => 0,
    }
}

/// The labels a subscriber's metrics share, made once per subscriber.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerLabels {
    group: Arc<str>,
}

impl ConsumerLabels {
    pub(crate) fn new(group: &str) -> Self {
        Self {
            group: Arc::from(group),
        }
    }

    fn group(&self) -> SharedString {
        SharedString::from(self.group.clone())
    }

    /// A decoded event of a type this subscriber handles.
    pub(crate) fn consumed(&self, event_type: &'static str, stream: &'static str) {
        counter!(CONSUMED_MESSAGES, SYSTEM => MESSAGING_SYSTEM, GROUP => self.group(), EVENT_TYPE => event_type, STREAM => stream).increment(1);
    }

    /// A handler run ended with `outcome` after `started`.
    pub(crate) fn handler_ran(
        &self,
        event_type: &'static str,
        outcome: &'static str,
        started: Instant,
    ) {
        let seconds = started.elapsed().as_secs_f64();
        histogram!(PROCESS_DURATION, SYSTEM => MESSAGING_SYSTEM, OPERATION_NAME => "process", GROUP => self.group(), EVENT_TYPE => event_type, OUTCOME => outcome).record(seconds);
        counter!(HANDLER_RUNS, GROUP => self.group(), EVENT_TYPE => event_type, OUTCOME => outcome)
            .increment(1);
    }

    /// An event was acknowledged.
    pub(crate) fn acked(&self) {
        counter!(ACKS, GROUP => self.group()).increment(1);
    }

    /// An event was NAKed for redelivery.
    pub(crate) fn nacked(&self, reason: &'static str) {
        counter!(NAKS, GROUP => self.group(), REASON => reason).increment(1);
    }

    /// An event was moved to the dead-letter queue.
    pub(crate) fn dead_lettered(&self, reason: &'static str) {
        counter!(DEAD_LETTERS, GROUP => self.group(), REASON => reason).increment(1);
    }

    /// A handler slot was taken (`1.0`) or given back (`-1.0`).
    pub(crate) fn in_flight(&self, change: f64) {
        gauge!(CONSUMER_IN_FLIGHT, GROUP => self.group()).increment(change);
    }
}
