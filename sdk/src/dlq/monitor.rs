//! Watching the dead-letter queue: depth per consumer group and event type,
//! moves that keep failing and the stream's fill level, and alerts through
//! pluggable sinks, rate-limited.
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::TryStreamExt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use super::mover::{StuckMove, FAILURES_BUCKET, STUCK_PREFIX};
use super::ops::{self, DlqError, DlqFilter};
use super::DLQ_STREAM;

/// How the monitor watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Alert when a group and type hold more than this many dead letters.
    pub threshold: u64,
    /// How often to look.
    pub interval: Duration,
    /// The shortest time between two alerts for one group and type while it
    /// stays above the threshold.
    pub repeat_after: Duration,
    /// Only this group's dead letters.
    pub group: Option<String>,
    /// Alert when DLQ_EVENTS holds at least this percentage of its
    /// `max_bytes`, or its oldest dead letter has used this percentage of
    /// its `max_age` (0 turns both alerts off). With the registry's default
    /// `discard = "new"` a full DLQ refuses further dead letters, which
    /// then stay unacknowledged in their own streams; this alert comes
    /// before that.
    pub capacity_percent: u8,
    /// Alert when all groups together hold more than this many dead
    /// letters (0 turns the alert off): a DLQ filling slowly across many
    /// groups and types, none above `threshold`.
    pub total_threshold: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            threshold: 10,
            interval: Duration::from_secs(30),
            repeat_after: Duration::from_secs(15 * 60),
            group: None,
            capacity_percent: 80,
            total_threshold: 0,
        }
    }
}

/// How many dead letters one group holds for one event type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Depth {
    /// The consumer group.
    pub group: String,
    /// The event type.
    pub event_type: String,
    /// Dead letters.
    pub count: u64,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A group and type hold more dead letters than the threshold.
    Threshold,
    /// Events a group gave up cannot be copied into DLQ_EVENTS: they stay
    /// in their stream and are retried, past `max_deliveries`.
    MoveFailing,
    /// DLQ_EVENTS is close to its `max_bytes`: once full it refuses new
    /// dead letters (with `discard = "new"`) or evicts the oldest (with
    /// `discard = "old"`). Not per group: `group` and `event_type` are empty,
    /// `count` is the bytes stored and `threshold` the stream's `max_bytes`.
    Capacity,
    /// All groups together hold more dead letters than
    /// [`MonitorConfig::total_threshold`] (`group` and `event_type` empty).
    TotalDepth,
    /// DLQ_EVENTS' oldest dead letter has used `capacity_percent` of the
    /// stream's `max_age`, which deletes it (whatever `discard` says):
    /// `count` is its age and `threshold` the `max_age`, in seconds.
    AgeLimit,
    /// A consumer group's lag (events stored and not handled) passed the
    /// lag monitor's threshold: `count` is the lag, `threshold` the limit,
    /// `since` when its oldest unhandled event was stored.
    Lag,
    /// A group's oldest unhandled event nears eviction by the stream's
    /// `max_age`: `count` is its age and `threshold` the `max_age`, in
    /// seconds.
    EvictionByAge,
    /// A group's oldest unhandled event nears eviction by the stream's
    /// `max_bytes` (`discard: old`): `count` is the bytes from it to the
    /// stream's end, `threshold` the `max_bytes`.
    EvictionByBytes,
}

impl AlertKind {
    /// The JSON `kind`: `tidings.dlq.threshold`, `tidings.dlq.move_failing`,
    /// `tidings.dlq.capacity`, `tidings.dlq.total`, `tidings.lag.events`,
    /// `tidings.dlq.max_age`, `tidings.lag.max_age` or `tidings.lag.max_bytes`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Threshold => "tidings.dlq.threshold",
            AlertKind::MoveFailing => "tidings.dlq.move_failing",
            AlertKind::Capacity => "tidings.dlq.capacity",
            AlertKind::TotalDepth => "tidings.dlq.total",
            AlertKind::AgeLimit => "tidings.dlq.max_age",
            AlertKind::Lag => "tidings.lag.events",
            AlertKind::EvictionByAge => "tidings.lag.max_age",
            AlertKind::EvictionByBytes => "tidings.lag.max_bytes",
        }
    }
}

/// A group and type above the threshold, or whose moves keep failing; a
/// full DLQ; or a group about to lose events (the lag monitor's alerts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// What it is about.
    pub kind: AlertKind,
    /// The stream: DLQ_EVENTS, or the lagging group's stream.
    pub stream: String,
    /// The consumer group.
    pub group: String,
    /// The event type.
    pub event_type: String,
    /// Dead letters now, or events whose move keeps failing.
    pub count: u64,
    /// The threshold (0 for [`AlertKind::MoveFailing`]).
    pub threshold: u64,
    /// When the oldest of them was dead-lettered, or first failed to move.
    pub since: OffsetDateTime,
    /// Why the last move failed ([`AlertKind::MoveFailing`]), or when the
    /// event is expected to be evicted (the eviction alerts).
    pub error: Option<String>,
}

impl Alert {
    /// One line for people.
    pub fn summary(&self) -> String {
        let since = self.since.format(&Rfc3339).unwrap_or_default();
        match self.kind {
            AlertKind::Threshold => format!(
                "{} dead letters for consumer group {} and event type {} (threshold {}), the oldest since {since}",
                self.count, self.group, self.event_type, self.threshold,
            ),
            AlertKind::MoveFailing => format!(
                "{} events of consumer group {} and event type {} cannot be moved to {DLQ_STREAM} (failing since {since}): {}",
                self.count,
                self.group,
                self.event_type,
                self.error.as_deref().unwrap_or("unknown error")
            ),
            AlertKind::Capacity => format!(
                "{DLQ_STREAM} holds {} of its {} bytes ({}%, since {since}): once full it refuses \
                 new dead letters, which stay unacknowledged in their streams; redrive or purge \
                 dead letters, or raise its max_bytes",
                self.count,
                self.threshold,
                percent(self.count, self.threshold),
            ),
            AlertKind::TotalDepth => format!(
                "{DLQ_STREAM} holds {} dead letters in all (threshold {}), the oldest since {since}",
                self.count, self.threshold,
            ),
            AlertKind::AgeLimit => format!(
                "the oldest dead letter in {DLQ_STREAM}, stored {since}, is {}s old of the stream's \
                 max_age {}s ({}%): at max_age it is deleted; redrive or export it, or raise max_age",
                self.count,
                self.threshold,
                percent(self.count, self.threshold),
            ),
            AlertKind::Lag => format!(
                "consumer group {} on {} has {} unhandled events (threshold {}), the oldest stored {since}",
                self.group, self.stream, self.count, self.threshold,
            ),
            AlertKind::EvictionByAge => format!(
                "consumer group {} on {}: its oldest unhandled event, stored {since}, is {}s old of the \
                 stream's max_age {}s ({}%); {}",
                self.group,
                self.stream,
                self.count,
                self.threshold,
                percent(self.count, self.threshold),
                self.error.as_deref().unwrap_or("handle it or raise max_age before it is evicted"),
            ),
            AlertKind::EvictionByBytes => format!(
                "consumer group {} on {}: {} bytes are stored from its oldest unhandled event \
                 (stored {since}) on, of the stream's max_bytes {} ({}%); {}",
                self.group,
                self.stream,
                self.count,
                self.threshold,
                percent(self.count, self.threshold),
                self.error.as_deref().unwrap_or("handle it or raise max_bytes before it is evicted"),
            ),
        }
    }

    /// The JSON sent by the NATS and webhook sinks.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({
            "kind": self.kind.as_str(),
            "stream": self.stream,
            "group": self.group,
            "event_type": self.event_type,
            "count": self.count,
            "threshold": self.threshold,
            "since": self.since.format(&Rfc3339).unwrap_or_default(),
            "summary": self.summary(),
        });
        if let (Some(error), Some(object)) = (&self.error, json.as_object_mut()) {
            object.insert("error".into(), error.clone().into());
        }
        json
    }
}

/// The future a sink returns.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where alerts go.
pub trait AlertSink: Send + Sync {
    /// A name for logs.
    fn name(&self) -> String;
    /// Delivers one alert.
    fn send<'a>(&'a self, alert: &'a Alert) -> SinkFuture<'a>;
}

/// Alerts as `tracing` error events.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl AlertSink for TracingSink {
    fn name(&self) -> String {
        "tracing".into()
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> SinkFuture<'a> {
        let since = alert.since.format(&Rfc3339).unwrap_or_default();
        match alert.kind {
            AlertKind::Threshold => tracing::error!(
                group = %alert.group,
                event_type = %alert.event_type,
                count = alert.count,
                threshold = alert.threshold,
                since = %since,
                "dead letters above threshold"
            ),
            AlertKind::MoveFailing => tracing::error!(
                group = %alert.group,
                event_type = %alert.event_type,
                count = alert.count,
                since = %since,
                error = alert.error.as_deref().unwrap_or_default(),
                "events cannot be moved to the dead-letter queue"
            ),
            AlertKind::Capacity => tracing::error!(
                stream = DLQ_STREAM,
                bytes = alert.count,
                max_bytes = alert.threshold,
                percent = percent(alert.count, alert.threshold),
                "the dead-letter queue is nearly full"
            ),
            AlertKind::AgeLimit => tracing::error!(
                stream = DLQ_STREAM,
                age_seconds = alert.count,
                max_age_seconds = alert.threshold,
                since = %since,
                "the oldest dead letter nears the dead-letter queue's max_age"
            ),
            AlertKind::TotalDepth => tracing::error!(
                stream = DLQ_STREAM,
                count = alert.count,
                threshold = alert.threshold,
                since = %since,
                "dead letters in all above threshold"
            ),
            AlertKind::Lag | AlertKind::EvictionByAge | AlertKind::EvictionByBytes => {
                tracing::error!(
                    kind = alert.kind.as_str(),
                    stream = %alert.stream,
                    group = %alert.group,
                    count = alert.count,
                    threshold = alert.threshold,
                    since = %since,
                    "{}",
                    alert.summary()
                )
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

/// How long [`NatsSink`] waits for the server to take an alert (as long as
/// the webhook's timeout): a monitor must not hang on a server that is gone.
const NATS_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Alerts as JSON messages on a NATS subject (`ops.alerts.dlq`), each
/// confirmed by a flush within 10 s.
#[derive(Debug, Clone)]
pub struct NatsSink {
    client: async_nats::Client,
    subject: String,
}

impl NatsSink {
    /// Publishes alerts on `subject`.
    pub fn new(client: async_nats::Client, subject: impl Into<String>) -> Self {
        Self {
            client,
            subject: subject.into(),
        }
    }
}

impl AlertSink for NatsSink {
    fn name(&self) -> String {
        format!("nats:{}", self.subject)
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(&alert.to_json()).map_err(|e| e.to_string())?;
            let send = async {
                self.client
                    .publish(self.subject.clone(), body.into())
                    .await
                    .map_err(|e| e.to_string())?;
                self.client.flush().await.map_err(|e| e.to_string())
            };
            tokio::time::timeout(NATS_SEND_TIMEOUT, send)
                .await
                .map_err(|_| format!("not confirmed by the server within {NATS_SEND_TIMEOUT:?}"))?
        })
    }
}

/// Watches DLQ depth and raises alerts.
pub struct DlqMonitor {
    js: jetstream::Context,
    config: MonitorConfig,
    sinks: Vec<Box<dyn AlertSink>>,
    last_alert: HashMap<(AlertKind, String, String), Instant>,
}

impl std::fmt::Debug for DlqMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DlqMonitor")
            .field("config", &self.config)
            .field(
                "sinks",
                &self.sinks.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl DlqMonitor {
    /// A monitor without sinks (add them with [`sink`](Self::sink)).
    pub fn new(js: jetstream::Context, config: MonitorConfig) -> Self {
        Self {
            js,
            config,
            sinks: Vec::new(),
            last_alert: HashMap::new(),
        }
    }

    /// Adds a sink.
    pub fn sink(mut self, sink: impl AlertSink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Dead letters per group and event type, by the DLQ subjects.
    ///
    /// # Errors
    /// A server error or an invalid group filter.
    pub async fn depths(&self) -> Result<Vec<Depth>, DlqError> {
        let filter = DlqFilter {
            group: self.config.group.clone(),
            ..Default::default()
        }
        .subject()?;
        let stream = self
            .js
            .get_stream(DLQ_STREAM)
            .await
            .map_err(|e| DlqError::Server(e.to_string()))?;
        let mut subjects = stream
            .info_with_subjects(&filter)
            .await
            .map_err(|e| DlqError::Server(e.to_string()))?;
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        while let Some((subject, count)) = subjects
            .try_next()
            .await
            .map_err(|e| DlqError::Server(e.to_string()))?
        {
            let tokens: Vec<&str> = subject.split('.').collect();
            if tokens.len() != 7 {
                continue;
            }
            let key = (tokens[1].to_string(), tokens[2..5].join("."));
            *counts.entry(key).or_default() += count as u64;
        }
        Ok(counts
            .into_iter()
            .map(|((group, event_type), count)| Depth {
                group,
                event_type,
                count,
            })
            .collect())
    }

    /// One look: the alerts raised now (already sent to every sink; a sink
    /// that fails is logged and does not stop the others).
    ///
    /// # Errors
    /// The depths could not be read.
    pub async fn check(&mut self) -> Result<Vec<Alert>, DlqError> {
        let depths = self.depths().await?;
        let above: Vec<&Depth> = depths
            .iter()
            .filter(|d| d.count > self.config.threshold)
            .collect();
        let failing = self.failing_moves().await;
        let capacity = self.limits().await?;
        let total = self.total_depth(&depths).await?;
        self.last_alert
            .retain(|(kind, group, event_type), _| match kind {
                AlertKind::Threshold => above
                    .iter()
                    .any(|d| &d.group == group && &d.event_type == event_type),
                AlertKind::MoveFailing => failing
                    .iter()
                    .any(|a| &a.group == group && &a.event_type == event_type),
                AlertKind::Capacity => capacity.iter().any(|a| a.kind == AlertKind::Capacity),
                AlertKind::TotalDepth => total.is_some(),
                AlertKind::AgeLimit => capacity.iter().any(|a| a.kind == AlertKind::AgeLimit),
                // Raised by the lag monitor, never kept here.
                AlertKind::Lag | AlertKind::EvictionByAge | AlertKind::EvictionByBytes => false,
            });
        let mut raised = Vec::new();
        for alert in capacity.into_iter().chain(total).chain(failing) {
            let key = (alert.kind, alert.group.clone(), alert.event_type.clone());
            if self.repeated_too_soon(&key) {
                continue;
            }
            self.send(&alert).await;
            self.last_alert.insert(key, Instant::now());
            raised.push(alert);
        }
        for depth in above {
            let key = (
                AlertKind::Threshold,
                depth.group.clone(),
                depth.event_type.clone(),
            );
            if self.repeated_too_soon(&key) {
                continue;
            }
            let oldest = ops::list(
                &self.js,
                &DlqFilter {
                    group: Some(depth.group.clone()),
                    event_type: Some(depth.event_type.clone()),
                    ..Default::default()
                },
                Some(1),
            )
            .await?;
            let alert = Alert {
                kind: AlertKind::Threshold,
                stream: DLQ_STREAM.into(),
                group: depth.group.clone(),
                event_type: depth.event_type.clone(),
                count: depth.count,
                threshold: self.config.threshold,
                since: oldest
                    .first()
                    .map_or_else(OffsetDateTime::now_utc, |d| d.stored_at),
                error: None,
            };
            self.send(&alert).await;
            self.last_alert.insert(key, Instant::now());
            raised.push(alert);
        }
        Ok(raised)
    }

    /// A [`AlertKind::Capacity`] alert if DLQ_EVENTS holds at least
    /// `capacity_percent` of its `max_bytes` (none without a byte limit).
    ///
    /// # Errors
    /// The stream could not be read.
    pub async fn capacity(&self) -> Result<Option<Alert>, DlqError> {
        Ok(self
            .dlq_info()
            .await?
            .and_then(|info| capacity_alert(&info, self.config.capacity_percent)))
    }

    /// The [`AlertKind::Capacity`] and [`AlertKind::AgeLimit`] alerts that
    /// DLQ_EVENTS' fill level and oldest dead letter call for now.
    async fn limits(&self) -> Result<Vec<Alert>, DlqError> {
        let Some(info) = self.dlq_info().await? else {
            return Ok(Vec::new());
        };
        let percent_limit = self.config.capacity_percent;
        Ok(capacity_alert(&info, percent_limit)
            .into_iter()
            .chain(age_alert(&info, percent_limit, OffsetDateTime::now_utc()))
            .collect())
    }

    /// DLQ_EVENTS' info (`None` when the limit alerts are off).
    async fn dlq_info(&self) -> Result<Option<jetstream::stream::Info>, DlqError> {
        if self.config.capacity_percent == 0 {
            return Ok(None);
        }
        let mut stream = self
            .js
            .get_stream(DLQ_STREAM)
            .await
            .map_err(|e| DlqError::Server(e.to_string()))?;
        let info = stream
            .info()
            .await
            .map_err(|e| DlqError::Server(e.to_string()))?;
        Ok(Some(info.clone()))
    }

    /// A [`AlertKind::TotalDepth`] alert if all groups together hold more
    /// than `total_threshold` dead letters (off at 0).
    async fn total_depth(&self, depths: &[Depth]) -> Result<Option<Alert>, DlqError> {
        let total: u64 = depths.iter().map(|d| d.count).sum();
        let threshold = self.config.total_threshold;
        if threshold == 0 || total <= threshold {
            return Ok(None);
        }
        let filter = DlqFilter {
            group: self.config.group.clone(),
            ..Default::default()
        };
        let oldest = ops::list(&self.js, &filter, Some(1)).await?;
        Ok(Some(Alert {
            kind: AlertKind::TotalDepth,
            stream: DLQ_STREAM.into(),
            group: String::new(),
            event_type: String::new(),
            count: total,
            threshold,
            since: oldest
                .first()
                .map_or_else(OffsetDateTime::now_utc, |d| d.stored_at),
            error: None,
        }))
    }

    fn repeated_too_soon(&self, key: &(AlertKind, String, String)) -> bool {
        self.last_alert
            .get(key)
            .is_some_and(|at| at.elapsed() < self.config.repeat_after)
    }

    /// Sends to every sink; a sink that fails is logged.
    async fn send(&self, alert: &Alert) {
        deliver(&self.sinks, alert).await;
    }

    /// The events whose move to DLQ_EVENTS keeps failing, as recorded by
    /// the subscribers in [`FAILURES_BUCKET`], per group and event type
    /// (without the bucket, or unreadable: none, with a warning).
    pub async fn failing_moves(&self) -> Vec<Alert> {
        let store = match self.js.get_key_value(FAILURES_BUCKET).await {
            Ok(store) => store,
            Err(_) => return Vec::new(),
        };
        let keys: Vec<String> = match store.keys().await {
            Ok(keys) => match keys.try_collect().await {
                Ok(keys) => keys,
                Err(e) => {
                    tracing::warn!(error = %e, "DLQ monitor could not list failing moves");
                    return Vec::new();
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "DLQ monitor could not list failing moves");
                return Vec::new();
            }
        };
        let mut by_type: BTreeMap<(String, String), Alert> = BTreeMap::new();
        for key in keys.iter().filter(|k| k.starts_with(STUCK_PREFIX)) {
            let Ok(Some(value)) = store.get(key).await else {
                continue;
            };
            let Ok(stuck) = serde_json::from_slice::<StuckMove>(&value) else {
                continue;
            };
            if self
                .config
                .group
                .as_ref()
                .is_some_and(|g| g != &stuck.group)
            {
                continue;
            }
            let event_type = stuck
                .subject
                .splitn(4, '.')
                .take(3)
                .collect::<Vec<_>>()
                .join(".");
            let since = OffsetDateTime::parse(&stuck.since, &Rfc3339)
                .unwrap_or_else(|_| OffsetDateTime::now_utc());
            let alert = by_type
                .entry((stuck.group.clone(), event_type.clone()))
                .or_insert_with(|| Alert {
                    kind: AlertKind::MoveFailing,
                    stream: DLQ_STREAM.into(),
                    group: stuck.group.clone(),
                    event_type,
                    count: 0,
                    threshold: 0,
                    since,
                    error: None,
                });
            alert.count += 1;
            alert.since = alert.since.min(since);
            alert.error = Some(stuck.error);
        }
        by_type.into_values().collect()
    }

    /// Runs [`check`](Self::check) every `interval` in a task until it is
    /// aborted.
    pub fn spawn(mut self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.config.interval);
            loop {
                tick.tick().await;
                if let Err(e) = self.check().await {
                    tracing::warn!(error = %e, "DLQ monitor could not read the queue");
                }
            }
        })
    }
}

/// A [`AlertKind::Capacity`] alert if the stream holds at least
/// `percent_limit` of its `max_bytes`.
fn capacity_alert(info: &jetstream::stream::Info, percent_limit: u8) -> Option<Alert> {
    let max_bytes = u64::try_from(info.config.max_bytes).ok()?;
    let bytes = info.state.bytes;
    if percent_limit == 0
        || max_bytes == 0
        || u128::from(bytes) * 100 < u128::from(max_bytes) * u128::from(percent_limit)
    {
        return None;
    }
    Some(Alert {
        kind: AlertKind::Capacity,
        stream: DLQ_STREAM.into(),
        group: String::new(),
        event_type: String::new(),
        count: bytes,
        threshold: max_bytes,
        since: info.state.first_timestamp,
        error: None,
    })
}

/// A [`AlertKind::AgeLimit`] alert if the stream's oldest message has used
/// at least `percent_limit` of its `max_age` at `now`.
fn age_alert(
    info: &jetstream::stream::Info,
    percent_limit: u8,
    now: OffsetDateTime,
) -> Option<Alert> {
    let max_age = info.config.max_age;
    if percent_limit == 0 || max_age.is_zero() || info.state.messages == 0 {
        return None;
    }
    let oldest = info.state.first_timestamp;
    let age = Duration::try_from(now - oldest).unwrap_or(Duration::ZERO);
    if age.as_secs_f64() * 100.0 < max_age.as_secs_f64() * f64::from(percent_limit) {
        return None;
    }
    Some(Alert {
        kind: AlertKind::AgeLimit,
        stream: DLQ_STREAM.into(),
        group: String::new(),
        event_type: String::new(),
        count: age.as_secs(),
        threshold: max_age.as_secs(),
        since: oldest,
        error: None,
    })
}

/// Sends `alert` to every sink; a sink that fails is logged and does not
/// stop the others. The DLQ and lag monitors both deliver through it.
pub(crate) async fn deliver(sinks: &[Box<dyn AlertSink>], alert: &Alert) {
    for sink in sinks {
        if let Err(e) = sink.send(alert).await {
            tracing::warn!(sink = %sink.name(), kind = alert.kind.as_str(), error = %e, "an alert could not be delivered");
        }
    }
}

/// `part` as a whole percentage of `whole` (0 for an empty whole).
fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    u64::try_from(u128::from(part) * 100 / u128::from(whole)).unwrap_or(u64::MAX)
}
