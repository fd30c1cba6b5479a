//! Alerts before a consumer group loses events: a lagging group's oldest
//! unhandled event is evicted, unhandled, once it is older than the
//! stream's `max_age`, or (with `discard: old`) once the bytes stored from
//! it on reach `max_bytes`. The [`LagMonitor`] reads [`crate::stats`] every
//! `interval` and raises, through the DLQ monitor's sinks
//! ([`AlertSink`]: tracing, a NATS subject, a webhook), an alert per group:
//!
//! * [`AlertKind::Lag`]: more unhandled events than `max_lag`;
//! * [`AlertKind::EvictionByAge`]: the oldest unhandled event has used
//!   `used_percent` of `max_age`, or is evicted within `evict_within`;
//! * [`AlertKind::EvictionByBytes`]: the bytes from it on fill
//!   `used_percent` of `max_bytes`, or, at the ingest rate measured between
//!   two looks (new sequences times the mean event size), reach it within
//!   `evict_within`.
//!
//! Each alert repeats at most every `repeat_after` while it holds.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::dlq::monitor::deliver;
use crate::dlq::{Alert, AlertKind, AlertSink};
use crate::stats::{self, GroupStats, StatsError, StreamStats, Unhandled};

/// What the lag monitor watches and when it alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagConfig {
    /// The streams whose groups are watched.
    pub streams: Vec<String>,
    /// Only this consumer group.
    pub group: Option<String>,
    /// How often to look.
    pub interval: Duration,
    /// The shortest time between two alerts of one kind for one group
    /// while the condition holds.
    pub repeat_after: Duration,
    /// Alert when a group has more unhandled events than this (0: off).
    pub max_lag: u64,
    /// Alert when a group's oldest unhandled event has used this
    /// percentage of the stream's `max_age`, or the bytes from it on this
    /// percentage of `max_bytes` (0: off).
    pub used_percent: u8,
    /// Also alert when that event is expected to be evicted within this
    /// long (by age: exactly; by bytes: at the ingest rate between the last
    /// two looks).
    pub evict_within: Option<Duration>,
}

impl Default for LagConfig {
    fn default() -> Self {
        Self {
            streams: Vec::new(),
            group: None,
            interval: Duration::from_secs(30),
            repeat_after: Duration::from_secs(15 * 60),
            max_lag: 0,
            used_percent: 80,
            evict_within: Some(Duration::from_secs(3600)),
        }
    }
}

/// One earlier look at a stream, for its ingest rate.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    last_sequence: u64,
}

/// Watches consumer groups' lag and alerts before their events are evicted.
pub struct LagMonitor {
    js: jetstream::Context,
    judge: Judge,
    sinks: Vec<Box<dyn AlertSink>>,
    last_alert: HashMap<(AlertKind, String, String), Instant>,
}

/// What turns figures into alerts: the thresholds, and each stream's last
/// reading for its ingest rate.
struct Judge {
    config: LagConfig,
    readings: HashMap<String, Reading>,
}

impl std::fmt::Debug for LagMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LagMonitor")
            .field("config", &self.judge.config)
            .field(
                "sinks",
                &self.sinks.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl LagMonitor {
    /// A monitor without sinks (add them with [`sink`](Self::sink)).
    pub fn new(js: jetstream::Context, config: LagConfig) -> Self {
        Self {
            js,
            judge: Judge {
                config,
                readings: HashMap::new(),
            },
            sinks: Vec::new(),
            last_alert: HashMap::new(),
        }
    }

    /// Adds a sink.
    pub fn sink(mut self, sink: impl AlertSink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// The watched streams' figures now.
    ///
    /// # Errors
    /// A stream is missing or the server did not answer.
    pub async fn stats(&self) -> Result<Vec<StreamStats>, StatsError> {
        stats::collect(
            &self.js,
            &self.judge.config.streams,
            OffsetDateTime::now_utc(),
        )
        .await
    }

    /// One look: the alerts raised now (already sent to every sink).
    ///
    /// # Errors
    /// The figures could not be read.
    pub async fn check(&mut self) -> Result<Vec<Alert>, StatsError> {
        let streams = self.stats().await?;
        let now = OffsetDateTime::now_utc();
        let found = self.judge.evaluate(&streams, now, Instant::now());
        self.last_alert.retain(|(kind, stream, group), _| {
            found
                .iter()
                .any(|a| a.kind == *kind && &a.stream == stream && &a.group == group)
        });
        let mut raised = Vec::new();
        for alert in found {
            let key = (alert.kind, alert.stream.clone(), alert.group.clone());
            if self
                .last_alert
                .get(&key)
                .is_some_and(|at| at.elapsed() < self.judge.config.repeat_after)
            {
                continue;
            }
            deliver(&self.sinks, &alert).await;
            self.last_alert.insert(key, Instant::now());
            raised.push(alert);
        }
        Ok(raised)
    }

    /// Runs [`check`](Self::check) every `interval` in a task until it is
    /// aborted.
    pub fn spawn(mut self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.judge.config.interval);
            loop {
                tick.tick().await;
                if let Err(e) = self.check().await {
                    tracing::warn!(error = %e, "lag monitor could not read the streams");
                }
            }
        })
    }
}

impl Judge {
    /// The alerts `streams` call for (none sent), remembering each
    /// stream's last sequence for the next look's ingest rate.
    fn evaluate(
        &mut self,
        streams: &[StreamStats],
        now: OffsetDateTime,
        at: Instant,
    ) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for stream in streams {
            let reading = Reading {
                at,
                last_sequence: stream.last_sequence,
            };
            let rate = self
                .readings
                .insert(stream.stream.clone(), reading)
                .and_then(|before| ingest_rate(stream, before, reading));
            let groups = stream.groups.iter().filter(|g| {
                self.config
                    .group
                    .as_ref()
                    .is_none_or(|only| only == &g.group)
            });
            for group in groups {
                alerts.extend(self.group_alerts(stream, group, rate, now));
            }
        }
        alerts
    }

    fn group_alerts(
        &self,
        stream: &StreamStats,
        group: &GroupStats,
        bytes_per_second: Option<f64>,
        now: OffsetDateTime,
    ) -> Vec<Alert> {
        let config = &self.config;
        let used_limit = f64::from(config.used_percent) / 100.0;
        let soon = |d: Duration| config.evict_within.is_some_and(|within| d <= within);
        let Some(oldest) = &group.oldest_unhandled else {
            return Vec::new();
        };
        let alert = |kind, count, threshold, error: Option<String>| Alert {
            kind,
            stream: stream.stream.clone(),
            group: group.group.clone(),
            event_type: String::new(),
            count,
            threshold,
            since: stored_at(oldest, now),
            error,
        };
        let mut alerts = Vec::new();
        if config.max_lag > 0 && group.lag() > config.max_lag {
            alerts.push(alert(AlertKind::Lag, group.lag(), config.max_lag, None));
        }
        if let (Some(max_age), Some(evicted_in)) = (stream.max_age, oldest.evicted_in) {
            let used = oldest.age.as_secs_f64() / max_age.as_secs_f64();
            if (config.used_percent > 0 && used >= used_limit) || soon(evicted_in) {
                alerts.push(alert(
                    AlertKind::EvictionByAge,
                    oldest.age.as_secs(),
                    max_age.as_secs(),
                    Some(format!(
                        "max_age evicts it in {}s unless the group handles it",
                        evicted_in.as_secs()
                    )),
                ));
            }
        }
        if let (Some(max_bytes), Some(headroom), Some(used)) =
            (stream.max_bytes, oldest.byte_headroom, oldest.bytes_used())
        {
            let evicted_in = bytes_per_second
                .filter(|rate| *rate > 0.0)
                .map(|rate| Duration::from_secs_f64(headroom as f64 / rate));
            if (config.used_percent > 0 && used >= used_limit) || evicted_in.is_some_and(soon) {
                let when = match evicted_in {
                    Some(d) => format!(
                        "at the current ingest rate max_bytes evicts it in about {}s",
                        d.as_secs()
                    ),
                    None => format!("{headroom} more bytes stored evict it"),
                };
                alerts.push(alert(
                    AlertKind::EvictionByBytes,
                    oldest.bytes_from,
                    max_bytes,
                    Some(format!("{when} unless the group handles it")),
                ));
            }
        }
        alerts
    }
}

/// When the oldest unhandled event was stored.
fn stored_at(oldest: &Unhandled, now: OffsetDateTime) -> OffsetDateTime {
    time::Duration::try_from(oldest.age).map_or(now, |age| now - age)
}

/// Bytes stored per second between two readings: new sequences times the
/// stream's mean event size.
fn ingest_rate(stream: &StreamStats, before: Reading, now: Reading) -> Option<f64> {
    let seconds = now.at.duration_since(before.at).as_secs_f64();
    if seconds <= 0.0 || stream.messages == 0 {
        return None;
    }
    let added = now.last_sequence.saturating_sub(before.last_sequence) as f64;
    let mean = stream.bytes as f64 / stream.messages as f64;
    Some(added * mean / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of 1,000 events of 100 bytes under a 1 MB `discard: old`
    /// limit, whose group `slow` has 500 unhandled events (50 kB from its
    /// oldest on: 5 % of the limit).
    fn figures(last_sequence: u64) -> StreamStats {
        StreamStats {
            stream: "S".into(),
            messages: 1_000,
            bytes: 100_000,
            max_bytes: Some(1_000_000),
            max_age: None,
            oldest_age: Some(Duration::from_secs(60)),
            last_sequence,
            discards_old: true,
            groups: vec![GroupStats {
                group: "slow".into(),
                pending: 500,
                ack_pending: 0,
                redelivered: 0,
                oldest_unhandled: Some(Unhandled {
                    sequence: last_sequence - 499,
                    age: Duration::from_secs(30),
                    evicted_in: None,
                    bytes_from: 50_000,
                    byte_headroom: Some(950_000),
                }),
            }],
        }
    }

    #[test]
    fn the_ingest_rate_between_two_looks_says_when_max_bytes_evicts() {
        let mut judge = Judge {
            config: LagConfig {
                used_percent: 80,
                evict_within: Some(Duration::from_secs(600)),
                ..LagConfig::default()
            },
            readings: HashMap::new(),
        };
        let now = OffsetDateTime::UNIX_EPOCH;
        let t0 = Instant::now();
        // One look: 5 % used, no rate yet: quiet.
        assert!(judge.evaluate(&[figures(1_000)], now, t0).is_empty());
        // 10 s later 1,000 more events (100 bytes each: 10 kB/s): the
        // 950 kB of headroom last 95 s, within the 600 s asked for.
        let alerts = judge.evaluate(&[figures(2_000)], now, t0 + Duration::from_secs(10));
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, AlertKind::EvictionByBytes);
        assert_eq!((alerts[0].count, alerts[0].threshold), (50_000, 1_000_000));
        let why = alerts[0].error.as_deref().unwrap_or_default();
        assert!(why.contains("evicts it in about 95s"), "{why}");
        // 10 s later only 10 more events (100 B/s): 9,500 s, not soon.
        let alerts = judge.evaluate(&[figures(2_010)], now, t0 + Duration::from_secs(20));
        assert!(alerts.is_empty(), "{alerts:?}");
    }
}
