//! The relay: publishes pending outbox rows and marks them sent.
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use uuid::Uuid;

use super::{OutboxError, PendingRow, Store};
use crate::publish::{AttemptFailure, Publisher};

/// How a [`Relay`] works through its table.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows claimed per pass (default 256).
    pub batch_size: u32,
    /// How long a claim holds a subject against other relays (default 30 s).
    /// A relay that dies leaves its rows to the others after this long; a
    /// pass must finish within it, or another relay may publish the same
    /// subject at the same time (stored once, but perhaps out of order).
    pub lease: Duration,
    /// How long to wait before looking again when the table is empty
    /// (default 50 ms): the added latency of an idle relay.
    pub idle_poll: Duration,
    /// The first delay after a pass that could not send a row (default 100 ms),
    /// doubled on each failing pass up to [`max_backoff`](Self::max_backoff).
    pub min_backoff: Duration,
    /// The longest delay between passes while rows fail (default 5 s).
    pub max_backoff: Duration,
    /// Subjects published at once (default 64); each subject's rows go one
    /// after the other.
    pub concurrency: usize,
    /// How long sent rows are kept before cleanup deletes them (default 1 h).
    pub keep_sent: Duration,
    /// How often cleanup runs (default 1 min).
    pub cleanup_every: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(50),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            concurrency: 64,
            keep_sent: Duration::from_secs(3600),
            cleanup_every: Duration::from_secs(60),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayPass {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows whose PubAck arrived (stored now or before), marked sent.
    pub sent: usize,
    /// Of those, rows the stream already had (`duplicate`), or found
    /// stored by the look-up beyond the duplicate window.
    pub already_stored: usize,
    /// Rows left pending (a failure, or behind a failure on their subject).
    pub failed: usize,
}

/// Publishes an outbox table's pending rows. Run one or several per table
/// (any number of processes): see the [module docs](super).
#[derive(Debug)]
pub struct Relay<S> {
    store: Arc<S>,
    publisher: Publisher,
    config: RelayConfig,
    owner: String,
    windows: Mutex<HashMap<String, Duration>>,
}

impl<S: Store> Relay<S> {
    /// A relay for this table, publishing with this publisher's connection
    /// and attempt timeout.
    pub fn new(store: S, publisher: Publisher) -> Self {
        Self::with_config(store, publisher, RelayConfig::default())
    }

    /// A relay with non-default settings.
    pub fn with_config(store: S, publisher: Publisher, config: RelayConfig) -> Self {
        Self {
            store: Arc::new(store),
            publisher,
            config,
            owner: Uuid::now_v7().to_string(),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The table it drains.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// This relay's lease owner id (unique per relay).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Publishes until `stop` completes (for example
    /// [`stop_signal`](crate::stop_signal)'s future): passes back to back while rows
    /// wait, `idle_poll` apart while none do, with backoff while rows fail
    /// (a NATS outage of any length), and cleanup every `cleanup_every`.
    /// Returns when stopped; database errors are logged and retried like
    /// NATS errors, so it never returns an error while `stop` is pending.
    pub async fn run<F: Future>(&self, stop: F) {
        tokio::pin!(stop);
        let mut backoff = self.config.min_backoff;
        let mut last_cleanup = Instant::now();
        loop {
            let wait = match self.run_once().await {
                Ok(pass) if pass.failed == 0 => {
                    backoff = self.config.min_backoff;
                    // After a pass that found rows, more may have come.
                    if pass.claimed > 0 {
                        Duration::ZERO
                    } else {
                        self.config.idle_poll
                    }
                }
                Ok(pass) => {
                    tracing::warn!(
                        failed = pass.failed,
                        sent = pass.sent,
                        retry_in = ?backoff,
                        "outbox rows not published; retrying"
                    );
                    next_backoff(&mut backoff, self.config.max_backoff)
                }
                Err(error) => {
                    tracing::error!(%error, retry_in = ?backoff, "outbox relay pass failed");
                    next_backoff(&mut backoff, self.config.max_backoff)
                }
            };
            if last_cleanup.elapsed() >= self.config.cleanup_every {
                last_cleanup = Instant::now();
                match self.store.delete_sent(self.config.keep_sent).await {
                    Ok(deleted) => tracing::debug!(deleted, "outbox cleanup"),
                    Err(error) => tracing::error!(%error, "outbox cleanup failed"),
                }
            }
            if wait.is_zero() {
                // Let `stop` be seen between busy passes.
                tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    () = tokio::task::yield_now() => {}
                }
            } else {
                tokio::select! {
                    _ = &mut stop => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// One pass: claims a batch, publishes it (subjects in parallel, each
    /// subject's rows in order, a subject stopped at its first failure),
    /// marks the acknowledged rows sent and releases the rest.
    pub async fn run_once(&self) -> Result<RelayPass, OutboxError> {
        let rows = self
            .store
            .claim(&self.owner, self.config.batch_size, self.config.lease)
            .await?;
        let mut pass = RelayPass {
            claimed: rows.len(),
            ..RelayPass::default()
        };
        if rows.is_empty() {
            return Ok(pass);
        }
        // Rows come in sequence order; each subject keeps its order.
        let mut by_subject: BTreeMap<i64, Vec<PendingRow>> = BTreeMap::new();
        let mut first_of: HashMap<String, i64> = HashMap::new();
        for row in rows {
            let first = *first_of.entry(row.subject.clone()).or_insert(row.seq);
            by_subject.entry(first).or_default().push(row);
        }
        let results: Vec<SubjectResult> = futures_util::stream::iter(
            by_subject.into_values().map(|rows| self.send_subject(rows)),
        )
        .buffer_unordered(self.config.concurrency.max(1))
        .collect()
        .await;
        let mut sent = Vec::new();
        let mut unsent = Vec::new();
        let mut last_error = String::new();
        for result in results {
            sent.extend(result.sent);
            pass.already_stored += result.already_stored;
            if let Some(error) = result.error {
                last_error = error;
            }
            unsent.extend(result.unsent);
        }
        pass.sent = sent.len();
        pass.failed = unsent.len();
        #[cfg(feature = "testing")]
        if !sent.is_empty() {
            crate::testing::failpoint::reached(super::FAILPOINT_AFTER_PUBACK).await;
        }
        if !sent.is_empty() {
            self.store.mark_sent(&sent).await?;
        }
        if !unsent.is_empty() {
            self.store
                .release(&self.owner, &unsent, &last_error)
                .await?;
        }
        Ok(pass)
    }

    /// Publishes one subject's rows in order, stopping at the first failure.
    async fn send_subject(&self, rows: Vec<PendingRow>) -> SubjectResult {
        let mut result = SubjectResult::default();
        let mut rows = rows.into_iter();
        for row in rows.by_ref() {
            match self.send_row(&row).await {
                Ok(duplicate) => {
                    result.sent.push(row.seq);
                    result.already_stored += usize::from(duplicate);
                }
                Err(failure) => {
                    tracing::warn!(
                        event_id = %row.event_id,
                        subject = %row.subject,
                        seq = row.seq,
                        error = %failure,
                        "outbox row not published; it stays pending"
                    );
                    result.error = Some(failure.to_string());
                    result.unsent.push(row.seq);
                    break;
                }
            }
        }
        result.unsent.extend(rows.map(|row| row.seq));
        result
    }

    /// One row: looked up first when a republish could fall outside the
    /// duplicate window, then one attempt. `Ok(true)`: already stored.
    async fn send_row(&self, row: &PendingRow) -> Result<bool, AttemptFailure> {
        if row.claims > 1 && self.beyond_window(row).await && self.stored_last(row).await {
            tracing::info!(
                event_id = %row.event_id,
                subject = %row.subject,
                "outbox row found stored beyond the duplicate window; marked sent"
            );
            return Ok(true);
        }
        let ack = self
            .publisher
            .attempt_raw(&row.subject, row.headers.clone(), row.body.clone(), 1)
            .await?;
        tracing::debug!(
            event_id = %row.event_id,
            subject = %row.subject,
            stream = %ack.stream,
            sequence = ack.sequence,
            duplicate = ack.duplicate,
            "outbox row published"
        );
        Ok(ack.duplicate)
    }

    /// Whether the row is older than its stream's duplicate window (unknown
    /// windows count as exceeded: the look-up is cheap, a duplicate is not).
    async fn beyond_window(&self, row: &PendingRow) -> bool {
        let known = self
            .windows
            .lock()
            .ok()
            .and_then(|w| w.get(&row.stream).copied());
        let window = match known {
            Some(window) => window,
            None => match self.publisher.jetstream().get_stream(&row.stream).await {
                Ok(stream) => {
                    let window = stream.cached_info().config.duplicate_window;
                    if let Ok(mut windows) = self.windows.lock() {
                        windows.insert(row.stream.clone(), window);
                    }
                    window
                }
                Err(_) => return true,
            },
        };
        // Claimed at the end of its age at the earliest: a margin of one
        // lease covers the time the earlier attempt may have been in flight.
        row.age + self.config.lease >= window
    }

    /// Whether the last message stored on the row's subject is this event.
    async fn stored_last(&self, row: &PendingRow) -> bool {
        let Ok(stream) = self.publisher.jetstream().get_stream(&row.stream).await else {
            return false;
        };
        match stream.get_last_raw_message_by_subject(&row.subject).await {
            Ok(message) => message
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .is_some_and(|id| id.as_str() == row.event_id.to_string()),
            Err(_) => false,
        }
    }
}

#[derive(Default)]
struct SubjectResult {
    sent: Vec<i64>,
    already_stored: usize,
    unsent: Vec<i64>,
    error: Option<String>,
}

/// The current delay, and doubles it (capped) for the next failing pass,
/// with up to 20 % jitter so relays do not retry in step.
fn next_backoff(backoff: &mut Duration, max: Duration) -> Duration {
    let current = *backoff;
    *backoff = (current * 2).min(max);
    current.mul_f64(1.0 + fastrand::f64() * 0.2)
}
