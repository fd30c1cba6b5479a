//! The consuming side of the benchmark, beside raw async-nats in the same
//! run against the same server:
//!
//! - `end_to_end`: publish→handler latency at open-loop offered loads
//!   (default 1,000 and 10,000 events/s for 3 s each). Each publish runs in
//!   its own task started on schedule; the latency of an event is the
//!   instant its handler sees it minus the instant its publish call
//!   started, both read from one monotonic clock in this process. The SDK
//!   side is a `tidings::Publisher` and a `tidings::Subscriber`; the raw side
//!   a JetStream publish of the same body bytes with a `Nats-Msg-Id` (built
//!   before the clock starts) and a durable pull consumer read with
//!   `messages()` and acked one by one. Both sides find the event's number
//!   in its subject (`...u-N`), the same way. Each side's figures also split
//!   the latency at the instant the server stored the event (its own
//!   timestamp, on this machine's clock): publish→stored and
//!   stored→handler, p50 and p95; and give the CPU time this process and
//!   the server spent per event while the load ran. The schedule's timer
//!   has tokio's 1 ms resolution: at 10,000/s events start ten at a time,
//!   so an event's latency includes the work on the events ahead of it in
//!   its millisecond, on both sides. Each load runs in two halves, raw
//!   then the SDK and the SDK then raw, and each side's figures pool its
//!   two halves: in pairs of one order the side that ran second was
//!   measured faster (in ten pairs of each order at 10,000/s on 5 Dec the
//!   SDK's p95 was 1.12 of raw's when raw ran first and 1.33 when the SDK
//!   did), so one order per load biased the ratio.
//! - `consume`: one instance's consume rate with a no-op handler: N events
//!   published beforehand, then a fresh consumer of each side (from the
//!   start of the stream) reads and acks all of them.
//!
//! Publishers use the benchmark's main connection; consumers use a second
//! one, as they would in another process. Both consumers have the same
//! server-side settings (explicit ack, `max_ack_pending` of the SDK's group).
//!
//! `--breakdown` adds, per load, the mixed pairs: the SDK's publisher with
//! the raw consumer and the raw publisher with the SDK's subscriber, each
//! p95 over raw's, to tell which half a gap comes from.
//!
//! Options (besides the publishing ones): `--only publish|consume`,
//! `--rates 1000,10000`, `--e2e-secs S` (default 3), `--consume N` (default
//! 30000), `--consume-rounds N` (default 3), `--sub-in-flight N` (the
//! subscriber's `max_in_flight`, default the SDK's default).
#![allow(clippy::print_stderr)]

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use serde_json::json;
use tidings::subscribe::StartAt;
use tidings::{PublishContext, Publisher, Subscriber, SubscriberConfig};
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::support::UserCreated;

const STREAM: &str = "AUTH_EVENTS";
const FILTER: &str = "auth.user.created.>";
/// Issue 17's goals: end-to-end p95 at most 1.3 times raw's, consume rate
/// at least 0.95 of raw's.
const E2E_GOAL_MAX: f64 = 1.3;
const CONSUME_GOAL_MIN: f64 = 0.95;

/// The flags this module reads; the publishing part skips them.
pub const FLAGS: &[&str] = &[
    "--only",
    "--rates",
    "--e2e-secs",
    "--consume",
    "--consume-rounds",
    "--sub-in-flight",
];

/// Which half of the benchmark runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Publish,
    Consume,
}

pub struct Options {
    pub only: Option<Only>,
    rates: Vec<u32>,
    e2e_secs: f64,
    consume: usize,
    consume_rounds: usize,
    sub_in_flight: usize,
    /// `--breakdown`: also the mixed pairs (SDK publisher with the raw
    /// consumer, and the other way round).
    mixed: bool,
}

impl Options {
    /// Reads this module's flags from the command line, ignoring the others
    /// (the publishing part checks those).
    pub fn from_args() -> anyhow::Result<Self> {
        let mut options = Self {
            only: None,
            rates: vec![1000, 10_000],
            e2e_secs: 3.0,
            consume: 30_000,
            consume_rounds: 3,
            sub_in_flight: SubscriberConfig::default().max_in_flight,
            mixed: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "--breakdown" {
                // The one flag without a value.
                options.mixed = true;
                continue;
            }
            let Some(value) = args.next() else { break };
            let count = || -> anyhow::Result<usize> {
                let n: usize = value
                    .parse()
                    .with_context(|| format!("{flag} {value}: not a whole number"))?;
                anyhow::ensure!(n > 0, "{flag} must be at least 1");
                Ok(n)
            };
            match flag.as_str() {
                "--only" => {
                    options.only = Some(match value.as_str() {
                        "publish" => Only::Publish,
                        "consume" => Only::Consume,
                        other => anyhow::bail!("--only {other}: use publish or consume"),
                    })
                }
                "--rates" => {
                    options.rates = value
                        .split(',')
                        .map(|r| {
                            r.trim()
                                .parse::<u32>()
                                .ok()
                                .filter(|r| *r > 0)
                                .with_context(|| format!("--rates {value}: e.g. 1000,10000"))
                        })
                        .collect::<anyhow::Result<_>>()?
                }
                "--e2e-secs" => {
                    options.e2e_secs = value
                        .parse::<f64>()
                        .ok()
                        .filter(|s| *s > 0.0 && s.is_finite())
                        .with_context(|| format!("--e2e-secs {value}: a positive number"))?
                }
                "--consume" => options.consume = count()?,
                "--consume-rounds" => options.consume_rounds = count()?,
                "--sub-in-flight" => options.sub_in_flight = count()?,
                _ => {}
            }
        }
        Ok(options)
    }
}

/// Adds the `end_to_end` and `consume` sections to `report`.
pub async fn run(
    options: &Options,
    servers: &super::multi::Servers,
    js: &jetstream::Context,
    publisher: &Publisher,
    ctx: &PublishContext,
    report: &mut serde_json::Value,
) -> anyhow::Result<()> {
    let consumers = async_nats::connect(servers.urls()).await?;
    let sub_config = SubscriberConfig {
        max_in_flight: options.sub_in_flight,
        ..SubscriberConfig::default()
    };
    sub_config.validate()?;
    let bench = Bench {
        js: js.clone(),
        consumers,
        publisher: publisher.clone(),
        ctx: ctx.clone(),
        sub_config,
        server_pids: servers.pids(),
    };

    let mut loads = Vec::new();
    let mut e2e_met = true;
    for &rate in &options.rates {
        let total = ((f64::from(rate) * options.e2e_secs).ceil() as usize).max(1);
        let warmup = (rate as usize / 10).max(50);
        // Two halves in opposite orders, pooled per side: whichever side
        // ran second in a pair was measured faster (see the module doc).
        let half = total.div_ceil(2);
        let (mut raw_runs, mut sdk_runs) = (Vec::new(), Vec::new());
        for order in [[Side::Raw, Side::Sdk], [Side::Sdk, Side::Raw]] {
            for side in order {
                let run = bench.end_to_end(side, side, rate, warmup, half).await?;
                match side {
                    Side::Raw => raw_runs.push(run),
                    Side::Sdk => sdk_runs.push(run),
                }
            }
        }
        let (raw, sdk) = (Latency::of(&raw_runs), Latency::of(&sdk_runs));
        let over_raw = |l: &Latency| l.p95_us / raw.p95_us.max(f64::MIN_POSITIVE);
        let ratio = over_raw(&sdk);
        let met = ratio <= E2E_GOAL_MAX && sdk.missing == 0 && raw.missing == 0;
        e2e_met &= met;
        let mut load = json!({
            "offered_per_s": rate,
            "events": total,
            "raw": raw.to_json(),
            "sdk": sdk.to_json(),
            "sdk_p95_over_raw": ratio,
            "goal_max": E2E_GOAL_MAX,
            "met": met,
        });
        if options.mixed {
            let mut mixed = serde_json::Map::new();
            for (publish, consume) in [(Side::Sdk, Side::Raw), (Side::Raw, Side::Sdk)] {
                let result = Latency::of(&[bench
                    .end_to_end(publish, consume, rate, warmup, total)
                    .await?]);
                let mut entry = result.to_json();
                entry["p95_over_raw"] = json!(over_raw(&result));
                let key = format!("{}_publish_{}_consume", publish.name(), consume.name());
                mixed.insert(key, entry);
            }
            load["mixed"] = mixed.into();
        }
        loads.push(load);
    }
    // What a task awaiting one publish holds for it (each end-to-end
    // publish runs in its own task): the SDK's call beside raw
    // `send_publish` (whose PubAck future comes after).
    let event = UserCreated::numbered(0);
    let (subject, message) = super::raw_message(publisher, ctx, 0, false)?;
    let future_bytes = json!({
        "sdk_publish": std::mem::size_of_val(&publisher.publish(ctx, &event)),
        "raw_send_publish": std::mem::size_of_val(&js.send_publish(subject, message)),
    });
    report["end_to_end"] = json!({
        "duration_s": options.e2e_secs,
        "future_bytes": future_bytes,
        "latency": "handler sees the event - publish call started, one monotonic clock",
        "sdk_max_in_flight": bench.sub_config.max_in_flight,
        "max_ack_pending": bench.sub_config.ack_pending(),
        "loads": loads,
        "met": e2e_met,
    });

    report["consume"] = bench.consume_rate(options).await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Raw,
    Sdk,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Raw => "raw",
            Side::Sdk => "sdk",
        }
    }
}

/// The consumer of one end-to-end run.
enum Reader {
    Raw(tokio::task::JoinHandle<anyhow::Result<()>>),
    Sdk(tidings::subscribe::Running),
}

struct Bench {
    js: jetstream::Context,
    /// The consumers' connection (the publishers use the main one).
    consumers: async_nats::Client,
    publisher: Publisher,
    ctx: PublishContext,
    sub_config: SubscriberConfig,
    /// The servers this run started (for their CPU use).
    server_pids: Vec<u32>,
}

/// When each event's publish started and when its handler saw it, in
/// nanoseconds since `origin` plus one (zero: not yet), and when the server
/// stored it (its own timestamp, Unix nanoseconds; the same machine's clock).
struct Clock {
    origin: Instant,
    /// `origin` in Unix nanoseconds, for the server's stored timestamps.
    origin_unix: i128,
    sent: Vec<AtomicU64>,
    seen: Vec<AtomicU64>,
    stored: Vec<AtomicU64>,
    count: AtomicUsize,
    expected: usize,
    done: Notify,
}

impl Clock {
    fn new(expected: usize) -> Self {
        Self {
            origin: Instant::now(),
            origin_unix: OffsetDateTime::now_utc().unix_timestamp_nanos(),
            sent: (0..expected).map(|_| AtomicU64::new(0)).collect(),
            seen: (0..expected).map(|_| AtomicU64::new(0)).collect(),
            stored: (0..expected).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicUsize::new(0),
            expected,
            done: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    fn sent(&self, n: usize) {
        self.sent[n].store(self.now(), Ordering::Release);
    }

    /// The handler saw the event of this subject (the first delivery only);
    /// `stored_at` reads when the server stored it, after the clock.
    fn seen(&self, subject: &str, stored_at: impl FnOnce() -> Option<OffsetDateTime>) {
        let now = self.now();
        let Some(n) = event_number(subject).filter(|&n| n < self.expected) else {
            return;
        };
        if self.seen[n]
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        if let Some(stored_at) = stored_at() {
            let stored = stored_at.unix_timestamp_nanos() - self.origin_unix;
            self.stored[n].store(
                u64::try_from(stored.max(0)).unwrap_or(u64::MAX - 1) + 1,
                Ordering::Release,
            );
        }
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.expected {
            self.done.notify_one();
        }
    }

    /// Latencies of events `from..` (publish to handler, publish to
    /// stored, stored to handler), and how many of them never arrived.
    fn latencies(&self, from: usize) -> ([Vec<Duration>; 3], usize) {
        let mut samples: [Vec<Duration>; 3] = Default::default();
        let mut missing = 0;
        for n in from..self.expected {
            let sent = self.sent[n].load(Ordering::Acquire);
            let seen = self.seen[n].load(Ordering::Acquire);
            if sent == 0 || seen == 0 {
                missing += 1;
            } else {
                // Within the publish-to-handler span (a stored time the
                // clock did not get counts as `sent`).
                let seen = seen.max(sent);
                let stored = self.stored[n].load(Ordering::Acquire).clamp(sent, seen);
                samples[0].push(Duration::from_nanos(seen - sent));
                samples[1].push(Duration::from_nanos(stored - sent));
                samples[2].push(Duration::from_nanos(seen - stored));
            }
        }
        (samples, missing)
    }
}

/// `N` of a subject `auth.user.created.ORG.u-N`.
fn event_number(subject: &str) -> Option<usize> {
    subject.rsplit('.').next()?.strip_prefix("u-")?.parse().ok()
}

/// One end-to-end run's raw figures, for [`Latency::of`].
struct Run {
    /// Publish to handler, publish to stored, stored to handler.
    samples: [Vec<Duration>; 3],
    missing: usize,
    failures: usize,
    /// CPU ticks (1/100 s) of this process and of the servers.
    client_ticks: u64,
    server_ticks: u64,
    /// Events published, warm-up included.
    events: usize,
    /// How long the publish schedule took.
    schedule: Duration,
}

struct Latency {
    n: usize,
    missing: usize,
    failures: usize,
    p50_us: f64,
    p95_us: f64,
    p99_us: f64,
    max_us: f64,
    /// Publish call started → stored (the server's timestamp): p50, p95.
    to_stored_us: [f64; 2],
    /// Stored → the handler saw it: p50, p95.
    stored_to_handler_us: [f64; 2],
    /// CPU time per event, this process and the servers, while it ran.
    client_cpu_us: f64,
    server_cpu_us: f64,
    achieved_per_s: f64,
}

impl Latency {
    /// The figures of `runs` pooled: percentiles over all their samples,
    /// CPU and rate over all their events.
    fn of(runs: &[Run]) -> Self {
        let pooled = |i: usize| {
            let mut all: Vec<Duration> = runs
                .iter()
                .flat_map(|r| r.samples[i].iter().copied())
                .collect();
            all.sort();
            all
        };
        let (samples, to_stored, from_stored) = (pooled(0), pooled(1), pooled(2));
        let p50_p95 = |s: &[Duration]| [percentile_us(s, 50.0), percentile_us(s, 95.0)];
        let events = runs.iter().map(|r| r.events).sum::<usize>().max(1) as f64;
        let per_event = |ticks: u64| ticks as f64 * 10_000.0 / events;
        let schedule: Duration = runs.iter().map(|r| r.schedule).sum();
        Self {
            n: samples.len(),
            missing: runs.iter().map(|r| r.missing).sum(),
            failures: runs.iter().map(|r| r.failures).sum(),
            p50_us: percentile_us(&samples, 50.0),
            p95_us: percentile_us(&samples, 95.0),
            p99_us: percentile_us(&samples, 99.0),
            max_us: samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
            to_stored_us: p50_p95(&to_stored),
            stored_to_handler_us: p50_p95(&from_stored),
            client_cpu_us: per_event(runs.iter().map(|r| r.client_ticks).sum()),
            server_cpu_us: per_event(runs.iter().map(|r| r.server_ticks).sum()),
            achieved_per_s: events / schedule.as_secs_f64().max(f64::MIN_POSITIVE),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "n": self.n,
            "missing": self.missing,
            "publish_failures": self.failures,
            "p50_us": self.p50_us,
            "p95_us": self.p95_us,
            "p99_us": self.p99_us,
            "max_us": self.max_us,
            "publish_to_stored_p50_p95_us": self.to_stored_us,
            "stored_to_handler_p50_p95_us": self.stored_to_handler_us,
            "client_cpu_us_per_event": self.client_cpu_us,
            "server_cpu_us_per_event": self.server_cpu_us,
            "achieved_publish_per_s": self.achieved_per_s,
        })
    }
}

fn percentile_us(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e6
}

/// Starts each future in its own task at `rate` per second (open loop: the
/// schedule does not wait for earlier publishes), then waits for all of
/// them; returns the failures and how long the schedule took. Finished
/// tasks are reaped as the schedule goes: a task's memory (the size of its
/// future) is held until it is joined, and holding every one of them made
/// the process fault in fresh pages all run long, a cost that grew with
/// the publish future's size rather than with anything a service does.
async fn paced<F>(rate: u32, futures: impl Iterator<Item = F>) -> anyhow::Result<(usize, Duration)>
where
    F: Future<Output = bool> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut failures = 0;
    for (i, future) in futures.enumerate() {
        let at = start + interval.mul_f64(i as f64);
        if at > tokio::time::Instant::now() {
            tokio::time::sleep_until(at).await;
        }
        tasks.spawn(future);
        while let Some(done) = tasks.try_join_next() {
            failures += usize::from(!done?);
        }
    }
    let schedule = start.elapsed();
    while let Some(done) = tasks.join_next().await {
        failures += usize::from(!done?);
    }
    Ok((failures, schedule))
}

/// A raw consumer: `messages()`, then the callback and an ack per message.
async fn raw_consume(
    consumer: consumer::PullConsumer,
    on_message: impl Fn(&jetstream::Message),
) -> anyhow::Result<()> {
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| anyhow::anyhow!(e))?;
        on_message(&message);
        message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(())
}

impl Bench {
    async fn stream(&self) -> anyhow::Result<jetstream::stream::Stream> {
        Ok(self.js.get_stream(STREAM).await?)
    }

    async fn purge(&self) -> anyhow::Result<()> {
        self.stream()
            .await?
            .purge()
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(())
    }

    /// A raw durable pull consumer with the SDK group's server-side settings.
    async fn raw_consumer(
        &self,
        name: &str,
        deliver_policy: consumer::DeliverPolicy,
    ) -> anyhow::Result<consumer::PullConsumer> {
        let consumers = jetstream::new(self.consumers.clone());
        let stream = consumers.get_stream(STREAM).await?;
        Ok(stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name.to_string()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: self.sub_config.ack_wait,
                max_ack_pending: i64::try_from(self.sub_config.ack_pending())?,
                filter_subject: FILTER.to_string(),
                deliver_policy,
                ..Default::default()
            })
            .await?)
    }

    async fn delete_consumer(&self, name: &str) -> anyhow::Result<()> {
        self.stream()
            .await?
            .delete_consumer(name)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(())
    }

    /// Waits until the server counts every message of consumer `name` acked.
    async fn all_acked(&self, name: &str, last_sequence: u64) -> anyhow::Result<bool> {
        let stream = self.stream().await?;
        for _ in 0..50 {
            let info = stream.consumer_info(name).await?;
            if info.num_ack_pending == 0 && info.ack_floor.stream_sequence >= last_sequence {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(false)
    }

    /// Publish→handler latency with `publish`'s publisher and `consume`'s
    /// consumer (mixed pairs split the gap between the SDK and raw).
    async fn end_to_end(
        &self,
        publish: Side,
        consume: Side,
        rate: u32,
        warmup: usize,
        total: usize,
    ) -> anyhow::Result<Run> {
        self.purge().await?;
        let expected = warmup + total;
        let clock = Arc::new(Clock::new(expected));
        let name = format!("bench-e2e-{}-{}-{rate}", publish.name(), consume.name());
        let wait =
            Duration::from_secs_f64(expected as f64 / f64::from(rate)) + Duration::from_secs(10);
        let messages = match publish {
            Side::Raw => (0..expected)
                .map(|n| super::raw_message(&self.publisher, &self.ctx, n, false))
                .collect::<anyhow::Result<Vec<_>>>()?,
            Side::Sdk => Vec::new(),
        };

        let seen = clock.clone();
        let reader = match consume {
            Side::Raw => {
                let consumer = self
                    .raw_consumer(&name, consumer::DeliverPolicy::New)
                    .await?;
                // When the server stored it: from the reply subject, read
                // only when the clock has its first delivery.
                Reader::Raw(tokio::spawn(raw_consume(consumer, move |m| {
                    seen.seen(&m.subject, || m.info().ok().map(|i| i.published))
                })))
            }
            Side::Sdk => {
                let mut subscriber = Subscriber::new(
                    self.consumers.clone(),
                    &name,
                    SubscriberConfig {
                        start_at: StartAt::New,
                        ..self.sub_config.clone()
                    },
                )?;
                subscriber.handle::<UserCreated, _>(move |event: tidings::Event<UserCreated>| {
                    seen.seen(&event.meta.subject, || Some(event.meta.stored_at));
                    async move { Ok::<(), Infallible>(()) }
                });
                Reader::Sdk(subscriber.start().await?)
            }
        };

        let ticks = || {
            let servers: u64 = self
                .server_pids
                .iter()
                .map(|&p| super::multi::process_ticks(p))
                .sum();
            (super::multi::process_ticks(std::process::id()), servers)
        };
        let ticks_before = ticks();
        let (failures, schedule) = match publish {
            Side::Raw => {
                let futures = messages
                    .into_iter()
                    .enumerate()
                    .map(|(n, (subject, message))| {
                        let js = self.js.clone();
                        let clock = clock.clone();
                        async move {
                            clock.sent(n);
                            match js.send_publish(subject, message).await {
                                Ok(ack) => ack.await.is_ok(),
                                Err(_) => false,
                            }
                        }
                    });
                paced(rate, futures).await?
            }
            Side::Sdk => {
                let futures = (0..expected).map(|n| {
                    let publisher = self.publisher.clone();
                    let ctx = self.ctx.clone();
                    let clock = clock.clone();
                    let event = UserCreated::numbered(n);
                    async move {
                        clock.sent(n);
                        publisher.publish(&ctx, &event).await.is_ok()
                    }
                });
                paced(rate, futures).await?
            }
        };
        let arrived = tokio::time::timeout(wait, clock.done.notified())
            .await
            .is_ok();
        let ticks_after = ticks();
        match reader {
            Reader::Raw(reader) => {
                reader.abort();
                if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(1), reader).await {
                    anyhow::bail!("the raw consumer failed: {e}");
                }
            }
            Reader::Sdk(running) => {
                running.shutdown().await;
            }
        }
        self.delete_consumer(&name).await?;
        if !arrived {
            eprintln!(
                "bench: {} publish, {} consume, end-to-end at {rate}/s: {} of {expected} events arrived",
                publish.name(),
                consume.name(),
                clock.count.load(Ordering::Acquire)
            );
        }
        let (samples, missing) = clock.latencies(warmup);
        Ok(Run {
            samples,
            missing,
            failures,
            client_ticks: ticks_after.0.saturating_sub(ticks_before.0),
            server_ticks: ticks_after.1.saturating_sub(ticks_before.1),
            events: expected,
            schedule,
        })
    }

    /// One consume of every stored event by a fresh consumer of `side`;
    /// returns the time from creating the consumer to the last event handled
    /// and whether the server then counts all of them acked.
    async fn consume_once(
        &self,
        side: Side,
        round: usize,
        n: usize,
    ) -> anyhow::Result<(Duration, bool, u64)> {
        let name = format!("bench-consume-{}-{round}", side.name());
        let ticks_before = super::multi::process_ticks(std::process::id());
        let count = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(Notify::new());
        let wait = Duration::from_secs(120);
        let (elapsed, ticks_after) = match side {
            Side::Raw => {
                let started = Instant::now();
                let consumer = self
                    .raw_consumer(&name, consumer::DeliverPolicy::All)
                    .await?;
                let mut messages = consumer.messages().await?;
                let mut handled = 0;
                let read = async {
                    while let Some(message) = messages.next().await {
                        let message = message.map_err(|e| anyhow::anyhow!(e))?;
                        message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
                        handled += 1;
                        if handled == n {
                            break;
                        }
                    }
                    anyhow::Ok(())
                };
                tokio::time::timeout(wait, read)
                    .await
                    .context("the raw consumer did not get every event")??;
                let elapsed = started.elapsed();
                let ticks = super::multi::process_ticks(std::process::id());
                drop(messages);
                (elapsed, ticks)
            }
            Side::Sdk => {
                let mut subscriber = Subscriber::new(
                    self.consumers.clone(),
                    &name,
                    SubscriberConfig {
                        start_at: StartAt::All,
                        ..self.sub_config.clone()
                    },
                )?;
                let (handled, finished) = (count.clone(), done.clone());
                subscriber.handle::<UserCreated, _>(move |_event: tidings::Event<UserCreated>| {
                    if handled.fetch_add(1, Ordering::AcqRel) + 1 == n {
                        finished.notify_one();
                    }
                    async move { Ok::<(), Infallible>(()) }
                });
                let started = Instant::now();
                let running = subscriber.start().await?;
                tokio::time::timeout(wait, done.notified())
                    .await
                    .context("the subscriber did not get every event")?;
                let elapsed = started.elapsed();
                let ticks = super::multi::process_ticks(std::process::id());
                running.shutdown().await;
                (elapsed, ticks)
            }
        };
        self.consumers.flush().await?;
        let acked = self.all_acked(&name, n as u64).await?;
        self.delete_consumer(&name).await?;
        Ok((elapsed, acked, ticks_after.saturating_sub(ticks_before)))
    }

    async fn consume_rate(&self, options: &Options) -> anyhow::Result<serde_json::Value> {
        let n = options.consume;
        self.purge().await?;
        let events: Vec<UserCreated> = (0..n).map(UserCreated::numbered).collect();
        let failed = self
            .publisher
            .publish_batch(&self.ctx, &events)
            .await
            .iter()
            .filter(|r| r.is_err())
            .count();
        anyhow::ensure!(
            failed == 0,
            "{failed} events could not be published for the consume benchmark"
        );
        let mut raw_time = Duration::ZERO;
        let mut sdk_time = Duration::ZERO;
        // This process's CPU ticks (1/100 s) while each side consumed.
        let (mut raw_ticks, mut sdk_ticks) = (0, 0);
        let mut all_acked = true;
        let mut rounds = Vec::new();
        for round in 0..options.consume_rounds {
            let mut this_round = serde_json::Map::new();
            for side in if round % 2 == 0 {
                [Side::Raw, Side::Sdk]
            } else {
                [Side::Sdk, Side::Raw]
            } {
                let (elapsed, acked, ticks) = self.consume_once(side, round, n).await?;
                all_acked &= acked;
                match side {
                    Side::Raw => (raw_time, raw_ticks) = (raw_time + elapsed, raw_ticks + ticks),
                    Side::Sdk => (sdk_time, sdk_ticks) = (sdk_time + elapsed, sdk_ticks + ticks),
                }
                this_round.insert(
                    format!("{}_rate_per_s", side.name()),
                    json!(n as f64 / elapsed.as_secs_f64()),
                );
            }
            rounds.push(serde_json::Value::Object(this_round));
        }
        self.purge().await?;
        let total = (n * options.consume_rounds) as f64;
        let raw_rate = total / raw_time.as_secs_f64();
        let sdk_rate = total / sdk_time.as_secs_f64();
        let ratio = sdk_rate / raw_rate;
        let cpu_us_per_event = |ticks: u64| ticks as f64 * 10_000.0 / total;
        Ok(json!({
            "n_per_round": n,
            "rounds": options.consume_rounds,
            "handler": "no-op",
            "sdk_max_in_flight": self.sub_config.max_in_flight,
            "max_ack_pending": self.sub_config.ack_pending(),
            "per_round": rounds,
            "raw_rate_per_s": raw_rate,
            "sdk_rate_per_s": sdk_rate,
            "sdk_over_raw": ratio,
            // The client's CPU per event, whatever the server's pace: less
            // noisy than the rates on a shared machine.
            "raw_client_cpu_us_per_event": cpu_us_per_event(raw_ticks),
            "sdk_client_cpu_us_per_event": cpu_us_per_event(sdk_ticks),
            "all_acked": all_acked,
            "goal_min": CONSUME_GOAL_MIN,
            "met": ratio >= CONSUME_GOAL_MIN && all_acked,
        }))
    }
}
