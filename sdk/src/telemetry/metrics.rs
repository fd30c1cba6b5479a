//! The hooks that record metrics (see [`super::names`]), called from the
//! publish and subscribe paths. Without an installed recorder each is a
//! handful of no-op calls.
use std::sync::Arc;
use std::time::Instant;

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram, SharedString};

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

/// The labels a subscriber's metrics share, and the handles of those it
/// records for every event, registered once, when the subscriber starts,
/// with the recorder installed then (a handle does not build its key and
/// look it up again on each call).
#[derive(Clone)]
pub(crate) struct ConsumerLabels {
    group: Arc<str>,
    in_flight: Gauge,
    acks: Counter,
}

impl ConsumerLabels {
    pub(crate) fn new(group: &str) -> Self {
        let group: Arc<str> = Arc::from(group);
        let label = || SharedString::from(group.clone());
        Self {
            in_flight: gauge!(CONSUMER_IN_FLIGHT, GROUP => label()),
            acks: counter!(ACKS, GROUP => label()),
            group,
        }
    }

    fn group(&self) -> SharedString {
        SharedString::from(self.group.clone())
    }

    /// The handles of a handled type's per-event metrics.
    pub(crate) fn for_type(&self, event_type: &'static str, stream: &'static str) -> TypeMetrics {
        let (ok_duration, ok_runs) = self.run_metrics(event_type, "ok");
        TypeMetrics {
            event_type,
            consumed: counter!(CONSUMED_MESSAGES, SYSTEM => MESSAGING_SYSTEM, GROUP => self.group(), EVENT_TYPE => event_type, STREAM => stream),
            ok_duration,
            ok_runs,
        }
    }

    /// The duration histogram and the run counter of `event_type`'s
    /// handler runs ending with `outcome`.
    fn run_metrics(&self, event_type: &'static str, outcome: &'static str) -> (Histogram, Counter) {
        (
            histogram!(PROCESS_DURATION, SYSTEM => MESSAGING_SYSTEM, OPERATION_NAME => "process", GROUP => self.group(), EVENT_TYPE => event_type, OUTCOME => outcome),
            counter!(HANDLER_RUNS, GROUP => self.group(), EVENT_TYPE => event_type, OUTCOME => outcome),
        )
    }

    /// An event was acknowledged.
    pub(crate) fn acked(&self) {
        self.acks.increment(1);
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
        self.in_flight.increment(change);
    }
}

/// The handles of one handled event type's per-event metrics in a
/// subscriber (see [`ConsumerLabels::for_type`]).
pub(crate) struct TypeMetrics {
    event_type: &'static str,
    consumed: Counter,
    ok_duration: Histogram,
    ok_runs: Counter,
}

impl TypeMetrics {
    /// A decoded event of this type.
    pub(crate) fn consumed(&self) {
        self.consumed.increment(1);
    }

    /// A handler run ended with `outcome` after `started`.
    pub(crate) fn handler_ran(
        &self,
        labels: &ConsumerLabels,
        outcome: &'static str,
        started: Instant,
    ) {
        let seconds = started.elapsed().as_secs_f64();
        if outcome == "ok" {
            self.ok_duration.record(seconds);
            self.ok_runs.increment(1);
        } else {
            let (duration, runs) = labels.run_metrics(self.event_type, outcome);
            duration.record(seconds);
            runs.increment(1);
        }
    }
}
