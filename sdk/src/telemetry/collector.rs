//! The gauges that need the server: each group's lag (from
//! [`crate::stats`]) and the dead-letter depth (from
//! [`crate::dlq::DlqMonitor::depths`]), read on a schedule.
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream;
use metrics::gauge;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use super::names::{DLQ_DEPTH, EVENT_TYPE, GROUP, LAG_EVENTS, LAG_SECONDS, STREAM};
use crate::dlq::{DlqError, DlqMonitor, MonitorConfig};
use crate::stats::{self, StatsError};

/// Why one collection failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The streams' figures could not be read.
    #[error("consumer lag not collected: {0}")]
    Stats(#[from] StatsError),
    /// The dead-letter depths could not be read.
    #[error(
        "dead-letter depth not collected (is DLQ_EVENTS provisioned? `tidings streams apply`): {0}"
    )]
    Dlq(#[from] DlqError),
}

/// Reads consumer lag and dead-letter depth and records them as gauges
/// ([`LAG_EVENTS`], [`LAG_SECONDS`], [`DLQ_DEPTH`]). A series that
/// disappears (a group deleted, a DLQ purged) is set to 0.
pub struct Collector {
    js: jetstream::Context,
    streams: Vec<String>,
    interval: Duration,
    /// The label sets recorded last time, to zero the ones gone since.
    lag_seen: Mutex<BTreeSet<(String, String)>>,
    depth_seen: Mutex<BTreeSet<(String, String)>>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("streams", &self.streams)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Collector {
    /// A collector of the groups of these event streams, every 15 s.
    pub fn new(
        js: jetstream::Context,
        streams: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            js,
            streams: streams.into_iter().map(Into::into).collect(),
            interval: Duration::from_secs(15),
            lag_seen: Mutex::default(),
            depth_seen: Mutex::default(),
        }
    }

    /// How often [`spawn`](Self::spawn) collects.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Collects once.
    ///
    /// # Errors
    /// A stream, consumer or the DLQ could not be read; the gauges read
    /// before the failure are recorded.
    pub async fn collect(&self) -> Result<(), CollectorError> {
        let figures = stats::collect(&self.js, &self.streams, OffsetDateTime::now_utc()).await?;
        let mut lag = BTreeSet::new();
        for stream in &figures {
            for group in &stream.groups {
                let age = group
                    .oldest_unhandled
                    .as_ref()
                    .map_or(0.0, |u| u.age.as_secs_f64());
                let labels = [
                    (GROUP, group.group.clone()),
                    (STREAM, stream.stream.clone()),
                ];
                gauge!(LAG_EVENTS, &labels).set(group.lag() as f64);
                gauge!(LAG_SECONDS, &labels).set(age);
                lag.insert((group.group.clone(), stream.stream.clone()));
            }
        }
        zero_gone(&self.lag_seen, lag, |(group, stream)| {
            let labels = [(GROUP, group), (STREAM, stream)];
            gauge!(LAG_EVENTS, &labels).set(0.0);
            gauge!(LAG_SECONDS, &labels).set(0.0);
        });
        let depths = DlqMonitor::new(self.js.clone(), MonitorConfig::default())
            .depths()
            .await?;
        let mut seen = BTreeSet::new();
        for depth in depths {
            let labels = [
                (GROUP, depth.group.clone()),
                (EVENT_TYPE, depth.event_type.clone()),
            ];
            gauge!(DLQ_DEPTH, &labels).set(depth.count as f64);
            seen.insert((depth.group, depth.event_type));
        }
        zero_gone(&self.depth_seen, seen, |(group, event_type)| {
            gauge!(DLQ_DEPTH, &[(GROUP, group), (EVENT_TYPE, event_type)]).set(0.0);
        });
        Ok(())
    }

    /// Collects every `interval` until the task is aborted; a failed
    /// collection is logged (warn) and tried again at the next tick.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(error) = self.collect().await {
                    tracing::warn!(%error, "telemetry collection failed; tried again at the next interval");
                }
            }
        })
    }
}

/// Replaces the label sets seen last time with `now`, calling `zero` on
/// each one no longer present.
fn zero_gone(
    seen: &Mutex<BTreeSet<(String, String)>>,
    now: BTreeSet<(String, String)>,
    zero: impl Fn((String, String)),
) {
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let before = std::mem::replace(&mut *seen, now);
    for gone in before.into_iter().filter(|k| !seen.contains(k)) {
        zero(gone);
    }
}
