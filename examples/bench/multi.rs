//! The multi-stream load benchmark (`--multi-stream`): SC-004's 10,000
//! events/s across the six service streams with three consumer groups,
//! the SDK beside raw async-nats, one after the other on the same servers.
//!
//! - **Servers**: one node (`--cluster 1`, the default; the registry's
//!   streams on the `dev` profile, R1) or a 3-node loopback cluster
//!   (`--cluster 3`; the `production` profile, R3), with nats-server's
//!   default sync or `--sync always` (`sync_interval: always`). With
//!   `TIDINGS_NATS_URL` set and `--cluster 1`, that server is used (dev
//!   profile) instead of starting one.
//! - **Publishing**, open loop: event `n` is scheduled at `n / rate` s; a
//!   pacer starts a task for each event when it is due (never waiting for
//!   earlier PubAcks), round robin over the six services, each service with
//!   its own publisher and connection, and within a service over its
//!   event types (the latest generated type of each, from its schema's
//!   first example). Latencies are measured from the scheduled instant, so
//!   a pacer or a connection that falls behind shows in them (no
//!   coordinated omission). The SDK side publishes with
//!   `Publisher::publish_with_id` (validation, encoding, retries); the raw
//!   side sends a body built before the clock starts with a fresh
//!   `Nats-Msg-Id`, through a JetStream context with the SDK's in-flight
//!   limit and timeout, without retries.
//! - **Consuming**: three groups, each on its own connection and each
//!   spanning all six streams, so every group handles every event. The SDK
//!   side is a `Subscriber` with a handler for each of the 12 types; the raw
//!   side a durable pull consumer per stream and group (the SDK group's
//!   ack wait and `max_ack_pending`) read with `messages()` and acked one by
//!   one. End to end is handler - scheduled send, one monotonic clock.
//! - The first `--warmup` seconds of events are sent but not counted.
//!   After the schedule, it waits for every publish and then up to
//!   `--drain` seconds for every group to have seen every acked event.
//! - **CPU**: the processor time this process and the servers used while
//!   the side ran, and the whole machine's, from `/proc` (so a shortfall
//!   can be traced to a saturated machine or not); the load average at the
//!   start, end and highest in between.
//! - **Server messages**: what the publishers' and the groups' connections
//!   sent to the servers and got from them, per acked event, from every
//!   node's `/connz` just before the groups shut down (publishes, acks,
//!   pull requests; PubAcks, deliveries, pull statuses and heartbeats), so
//!   that the servers' work for each side can be compared.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer, message::PublishMessage};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::json;
use tidings::publish::{Prepared, PublishError};
use tidings::subscribe::StartAt;
use tidings::testing::{NatsCluster, NatsServer};
use tidings::upcast::ReadAnyVersion;
use tidings::{Event, PublishContext, Publisher, PublisherConfig, Subscriber, SubscriberConfig};
use uuid::Uuid;

use super::support;

/// The flag that selects this benchmark.
pub const FLAG: &str = "--multi-stream";

/// Its part of `--help`.
pub const USAGE: &str = "\
  scripts/bench --multi-stream [--rate N] [--duration S] [--cluster 1|3]
                [--sync always|default] [--side both|raw|sdk] [--warmup S] [--drain S]
                [--ce-headers on|off] [--sub-in-flight N]
      SC-004's load: publishers of all six services at an open-loop --rate
      (default 10000 events/s) for --duration seconds (default 60) over the
      six service streams, three consumer groups each spanning all six.
      --cluster 3: a 3-node loopback cluster, streams R3 (production
      profile); 1 (default): one node, R1 (dev profile). --sync always:
      sync_interval always (default: nats-server's). --side: which sides run
      (default both, raw first). --warmup S (default 2): seconds of events
      sent first and not counted. --drain S (default 30): how long to wait
      after the schedule for every group to see every acked event.
      --ce-headers: whether the SDK's publishers send the ce- headers
      (default: PublisherConfig's default). --sub-in-flight: each SDK
      group instance's max_in_flight across the six streams (default the
      SubscriberConfig default, 1,024; raw async-nats' messages() asks for 200
      per stream, 1,200 per group).
      Reports publish and end-to-end p50/p95/p99 beside the spec's 50 ms and
      100 ms p95, achieved rates, CPU use and load average.";

/// The spec's targets (SC-004 and the latency goals).
const PUBLISH_P95_MAX_MS: f64 = 50.0;
const END_TO_END_P95_MAX_MS: f64 = 100.0;
/// The share of the offered rate that counts as sustained.
const RATE_MIN_SHARE: f64 = 0.99;
/// Consumer groups.
const GROUPS: usize = 3;
/// Publishes unanswered at once beyond which the pacer waits (a memory
/// bound when the servers fall far behind; reported when it is reached).
const MAX_BACKLOG: usize = 200_000;
/// Linux reports process and machine CPU time in these ticks per second.
const USER_HZ: f64 = 100.0;

/// Which implementation publishes and consumes.
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

/// The command line of `--multi-stream`.
#[derive(Debug, Clone)]
pub struct Options {
    rate: u32,
    duration_s: f64,
    nodes: usize,
    sync_always: bool,
    sides: Vec<Side>,
    warmup_s: f64,
    drain_s: f64,
    ce_headers: bool,
    sub_in_flight: usize,
}

impl Options {
    /// Reads the flags of this mode; any other flag is an error.
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut options = Self {
            rate: 10_000,
            duration_s: 60.0,
            nodes: 1,
            sync_always: false,
            sides: vec![Side::Raw, Side::Sdk],
            warmup_s: 2.0,
            drain_s: 30.0,
            ce_headers: PublisherConfig::default().ce_headers,
            sub_in_flight: SubscriberConfig::default().max_in_flight,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if flag == FLAG {
                continue;
            }
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value (see --help)"))?;
            let seconds = |allow_zero: bool| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && (*s > 0.0 || (allow_zero && *s == 0.0)))
                    .with_context(|| format!("{flag} {value}: a number of seconds, e.g. 60"))
            };
            match flag.as_str() {
                "--rate" => {
                    options.rate =
                        value
                            .parse::<u32>()
                            .ok()
                            .filter(|r| *r > 0)
                            .with_context(|| {
                                format!("--rate {value}: events per second, a whole number above 0")
                            })?
                }
                "--duration" => options.duration_s = seconds(false)?,
                "--warmup" => options.warmup_s = seconds(true)?,
                "--drain" => options.drain_s = seconds(false)?,
                "--cluster" => options.nodes = cluster_flag(value)?,
                "--sync" => options.sync_always = sync_flag(value)?,
                "--side" => {
                    options.sides = match value.as_str() {
                        "both" => vec![Side::Raw, Side::Sdk],
                        "raw" => vec![Side::Raw],
                        "sdk" => vec![Side::Sdk],
                        other => anyhow::bail!("--side {other}: use both, raw or sdk"),
                    }
                }
                "--sub-in-flight" => {
                    options.sub_in_flight = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .with_context(|| {
                            format!("--sub-in-flight {value}: a whole number above 0")
                        })?
                }
                "--ce-headers" => {
                    options.ce_headers = match value.as_str() {
                        "on" => true,
                        "off" => false,
                        other => anyhow::bail!("--ce-headers {other}: use on or off"),
                    }
                }
                other => anyhow::bail!(
                    "{other} is not an option of --multi-stream; it takes --rate N, \
                     --duration S, --cluster 1|3, --sync always|default, --side both|raw|sdk, \
                     --warmup S, --drain S, --ce-headers on|off, --sub-in-flight N (see --help)"
                ),
            }
        }
        Ok(options)
    }

    fn events(&self, seconds: f64) -> usize {
        (f64::from(self.rate) * seconds).round() as usize
    }
}

/// The value of `--cluster`: how many nodes (1 or 3).
pub fn cluster_flag(value: &str) -> anyhow::Result<usize> {
    match value {
        "1" => Ok(1),
        "3" => Ok(3),
        other => {
            anyhow::bail!("--cluster {other}: 1 (one node) or 3 (a 3-node cluster) are supported")
        }
    }
}

/// The value of `--sync`: whether the servers fsync every write.
pub fn sync_flag(value: &str) -> anyhow::Result<bool> {
    match value {
        "always" => Ok(true),
        "default" => Ok(false),
        other => anyhow::bail!("--sync {other}: use always or default"),
    }
}

/// The servers of a run: one node, a 3-node loopback cluster, or the
/// server at `TIDINGS_NATS_URL` (one node only).
pub enum Servers {
    One(NatsServer),
    Cluster(NatsCluster),
    External(String),
}

impl Servers {
    /// Starts `nodes` servers (1 or 3), with `sync_interval: always` when
    /// asked.
    pub async fn launch(nodes: usize, sync_always: bool) -> anyhow::Result<Self> {
        let builder = NatsServer::builder().sync_always(sync_always);
        if nodes == 3 {
            anyhow::ensure!(
                std::env::var_os("TIDINGS_NATS_URL").is_none(),
                "--cluster 3 starts its own servers: unset TIDINGS_NATS_URL"
            );
            return Ok(Self::Cluster(NatsCluster::launch_with(builder).await?));
        }
        if let Ok(url) = std::env::var("TIDINGS_NATS_URL") {
            anyhow::ensure!(
                !sync_always,
                "--sync always needs a server this benchmark starts: unset TIDINGS_NATS_URL"
            );
            return Ok(Self::External(url));
        }
        Ok(Self::One(builder.name("tidings-bench").launch().await?))
    }

    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        match self {
            Self::One(server) => vec![server.url()],
            Self::Cluster(cluster) => cluster.urls(),
            Self::External(url) => vec![url.clone()],
        }
    }

    /// The pids of the servers this run started.
    pub fn pids(&self) -> Vec<u32> {
        match self {
            Self::One(server) => server.pid().into_iter().collect(),
            Self::Cluster(cluster) => cluster.nodes().iter().filter_map(NatsServer::pid).collect(),
            Self::External(_) => Vec::new(),
        }
    }

    /// The servers this run started, whose monitoring ports it can read.
    fn started(&self) -> Vec<&NatsServer> {
        match self {
            Self::One(server) => vec![server],
            Self::Cluster(cluster) => cluster.nodes().iter().collect(),
            Self::External(_) => Vec::new(),
        }
    }

    /// The registry's stream profile for these servers: R3 `production`
    /// on the cluster, R1 `dev` on one node.
    pub fn profile(&self) -> &'static str {
        match self {
            Self::Cluster(_) => "production",
            _ => "dev",
        }
    }
}

/// A connection that knows every node, named so that the servers'
/// `/connz` can tell whose traffic is whose.
pub async fn connect(urls: &[String], name: &str) -> anyhow::Result<async_nats::Client> {
    Ok(async_nats::ConnectOptions::new()
        .name(name)
        .connect(urls)
        .await?)
}

/// Messages the clients whose connection names start with a prefix sent
/// to the servers and got from them, summed over every node's open client
/// connections (`/connz`; empty for a server this run did not start).
#[derive(Debug, Default, Clone, Copy)]
struct Traffic {
    to_servers: u64,
    from_servers: u64,
}

impl Traffic {
    async fn read(servers: &[&NatsServer], prefix: &str) -> anyhow::Result<Self> {
        let mut traffic = Self::default();
        for server in servers {
            let connz = server.monitor("/connz?limit=100000").await?;
            let connections = connz["connections"].as_array().cloned().unwrap_or_default();
            for connection in connections {
                let name = connection["name"].as_str().unwrap_or_default();
                if name.starts_with(prefix) {
                    traffic.to_servers += connection["in_msgs"].as_u64().unwrap_or(0);
                    traffic.from_servers += connection["out_msgs"].as_u64().unwrap_or(0);
                }
            }
        }
        Ok(traffic)
    }

    /// Per acked event, rounded to hundredths.
    fn per_event(self, events: usize) -> serde_json::Value {
        let per = |count: u64| (count as f64 / events.max(1) as f64 * 100.0).round() / 100.0;
        json!({
            "to_servers_per_event": per(self.to_servers),
            "from_servers_per_event": per(self.from_servers),
        })
    }
}

/// When each event was acked and first seen by each group, in nanoseconds
/// since `origin` plus one (zero: not yet); event `n` is scheduled at
/// `origin + n / rate`.
struct Clock {
    /// Set by [`Clock::start`], once everything is set up.
    origin: std::sync::OnceLock<Instant>,
    interval_ns: f64,
    /// The run's tag, the high half of every event id it sends.
    tag: u64,
    total: usize,
    acked: Vec<AtomicU64>,
    seen: Vec<Vec<AtomicU64>>,
    acked_count: AtomicUsize,
    seen_count: Vec<AtomicUsize>,
    redelivered: Vec<AtomicUsize>,
    failures: AtomicUsize,
    /// Failed publishes by kind (the SDK's `PublishError::kind_name`, raw
    /// async-nats' error kind).
    failure_kinds: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
    foreign: AtomicUsize,
    publishing: AtomicUsize,
    /// How often the pacer waited for the backlog to fall under
    /// [`MAX_BACKLOG`].
    backlog_waits: AtomicUsize,
}

impl Clock {
    fn new(rate: u32, total: usize) -> Self {
        let slots = || (0..total).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Self {
            origin: std::sync::OnceLock::new(),
            interval_ns: 1e9 / f64::from(rate),
            tag: fastrand::u64(..),
            total,
            acked: slots(),
            seen: (0..GROUPS).map(|_| slots()).collect(),
            acked_count: AtomicUsize::new(0),
            seen_count: (0..GROUPS).map(|_| AtomicUsize::new(0)).collect(),
            redelivered: (0..GROUPS).map(|_| AtomicUsize::new(0)).collect(),
            failures: AtomicUsize::new(0),
            failure_kinds: Default::default(),
            foreign: AtomicUsize::new(0),
            publishing: AtomicUsize::new(0),
            backlog_waits: AtomicUsize::new(0),
        }
    }

    /// Fixes the schedule's origin a moment from now and returns it.
    fn start(&self) -> Instant {
        *self
            .origin
            .get_or_init(|| Instant::now() + Duration::from_millis(50))
    }

    fn now(&self) -> u64 {
        let Some(origin) = self.origin.get() else {
            return 1;
        };
        let since = Instant::now().saturating_duration_since(*origin);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    fn scheduled(&self, n: usize) -> u64 {
        (n as f64 * self.interval_ns) as u64 + 1
    }

    fn id(&self, n: usize) -> Uuid {
        Uuid::from_u64_pair(self.tag, n as u64)
    }

    /// Event `n`'s publish ended: acked, or failed with this kind.
    fn published(&self, n: usize, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.acked[n].store(self.now(), Ordering::Release);
                self.acked_count.fetch_add(1, Ordering::AcqRel);
            }
            Err(kind) => {
                self.failures.fetch_add(1, Ordering::AcqRel);
                let mut kinds = self.failure_kinds.lock().unwrap_or_else(|p| p.into_inner());
                *kinds.entry(kind).or_default() += 1;
            }
        }
        self.publishing.fetch_sub(1, Ordering::AcqRel);
    }

    /// Group `group`'s handler saw the event with this id.
    fn seen(&self, group: usize, id: Uuid) {
        let now = self.now();
        let (tag, n) = id.as_u64_pair();
        let slot = usize::try_from(n)
            .ok()
            .filter(|_| tag == self.tag)
            .and_then(|n| self.seen[group].get(n));
        let Some(slot) = slot else {
            self.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if slot
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.seen_count[group].fetch_add(1, Ordering::AcqRel);
        } else {
            self.redelivered[group].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn all_seen(&self) -> bool {
        let acked = self.acked_count.load(Ordering::Acquire);
        self.seen_count
            .iter()
            .all(|seen| seen.load(Ordering::Acquire) >= acked)
    }
}

/// One event type: how the SDK side prepares it and subscribes to it.
trait Kind: Send + Sync {
    fn event_type(&self) -> &'static str;
    fn stream(&self) -> &'static str;
    fn prepare(
        &self,
        publisher: &Publisher,
        ctx: &PublishContext,
        id: Uuid,
    ) -> Result<Prepared, PublishError>;
    fn register(&self, subscriber: &mut Subscriber, clock: Arc<Clock>, group: usize);
}

/// A generated type and its schema's first example.
struct Typed<E> {
    example: E,
}

impl<E> Kind for Typed<E>
where
    E: ReadAnyVersion + DeserializeOwned + Send + Sync + 'static,
{
    fn event_type(&self) -> &'static str {
        E::EVENT_TYPE
    }

    fn stream(&self) -> &'static str {
        E::STREAM
    }

    fn prepare(
        &self,
        publisher: &Publisher,
        ctx: &PublishContext,
        id: Uuid,
    ) -> Result<Prepared, PublishError> {
        publisher.prepare_with_id(ctx, id, &self.example)
    }

    fn register(&self, subscriber: &mut Subscriber, clock: Arc<Clock>, group: usize) {
        subscriber.handle::<E, _>(move |event: Event<E>| {
            clock.seen(group, event.meta.event_id);
            async move { Ok::<(), Infallible>(()) }
        });
    }
}

/// The latest type of every event type, grouped by service in the order
/// the registry lists them.
fn services() -> anyhow::Result<Vec<Vec<Arc<dyn Kind>>>> {
    let mut all: Vec<Arc<dyn Kind>> = Vec::new();
    macro_rules! add {
        ($t:ty) => {
            all.push(Arc::new(Typed::<$t> {
                example: support::example::<$t>()?,
            }));
        };
    }
    every_latest_type!(add);
    let mut services: Vec<(&str, Vec<Arc<dyn Kind>>)> = Vec::new();
    for kind in all {
        let service = kind.event_type().split('.').next().unwrap_or_default();
        match services.iter_mut().find(|(s, _)| *s == service) {
            Some((_, kinds)) => kinds.push(kind),
            None => services.push((service, vec![kind])),
        }
    }
    anyhow::ensure!(
        services.len() == 6,
        "expected the six services' event types, found {}",
        services.len()
    );
    Ok(services.into_iter().map(|(_, kinds)| kinds).collect())
}

/// Event `n`'s service and its type within the service.
fn pick(services: &[Vec<Arc<dyn Kind>>], n: usize) -> (usize, usize) {
    let service = n % services.len();
    (service, (n / services.len()) % services[service].len())
}

/// Starts `send(n)` for every event when it is due; returns when the last
/// one was started, in nanoseconds since the clock's origin.
async fn pace(clock: &Clock, mut send: impl FnMut(usize)) -> u64 {
    let origin = tokio::time::Instant::from_std(clock.start());
    let mut next = 0;
    while next < clock.total {
        let elapsed = clock.now() as f64;
        let due = ((elapsed / clock.interval_ns) as usize + 1).min(clock.total);
        while next < due {
            while clock.publishing.load(Ordering::Acquire) >= MAX_BACKLOG {
                clock.backlog_waits.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            clock.publishing.fetch_add(1, Ordering::AcqRel);
            send(next);
            next += 1;
        }
        if next < clock.total {
            tokio::time::sleep_until(origin + Duration::from_nanos(clock.scheduled(next) - 1))
                .await;
        }
    }
    clock.now()
}

/// CPU time in ticks: a process's (user + system), or the machine's busy
/// and total.
pub fn process_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name (which may hold spaces): state is the
    // first, utime the 12th and stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0)
}

fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    (busy, busy + get(3) + get(4))
}

/// The 1, 5 and 15-minute load averages (zeros where unreadable).
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut parts = text.split_whitespace().map(|p| p.parse().unwrap_or(0.0));
    [
        parts.next().unwrap_or(0.0),
        parts.next().unwrap_or(0.0),
        parts.next().unwrap_or(0.0),
    ]
}

/// CPU counters at one instant.
struct Cpu {
    at: Instant,
    bench: u64,
    servers: u64,
    machine: (u64, u64),
}

impl Cpu {
    fn read(servers: &[u32]) -> Self {
        Self {
            at: Instant::now(),
            bench: process_ticks(std::process::id()),
            servers: servers.iter().map(|pid| process_ticks(*pid)).sum(),
            machine: machine_ticks(),
        }
    }

    /// Cores used between `self` and `later`.
    fn used_until(&self, later: &Self, cores: usize) -> serde_json::Value {
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let cores_of = |ticks: u64| ticks as f64 / USER_HZ / wall;
        let busy = later.machine.0.saturating_sub(self.machine.0) as f64;
        let total = later.machine.1.saturating_sub(self.machine.1).max(1) as f64;
        let machine = busy / total * cores as f64;
        let bench = cores_of(later.bench.saturating_sub(self.bench));
        let servers = cores_of(later.servers.saturating_sub(self.servers));
        json!({
            "cores": cores,
            "machine_busy_cores": machine,
            "bench_process_cores": bench,
            "nats_servers_cores": servers,
            "other_processes_cores": (machine - bench - servers).max(0.0),
        })
    }
}

/// The highest 1-minute load average seen while sampling.
async fn sample_load(highest: Arc<AtomicU64>) {
    loop {
        let now = (load_average()[0] * 100.0) as u64;
        highest.fetch_max(now, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn percentiles_ms(mut samples: Vec<u64>) -> serde_json::Value {
    samples.sort_unstable();
    let at = |p: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1] as f64 / 1e6
    };
    json!({
        "n": samples.len(),
        "p50_ms": at(50.0),
        "p95_ms": at(95.0),
        "p99_ms": at(99.0),
        "max_ms": samples.last().map_or(0.0, |ns| *ns as f64 / 1e6),
    })
}

fn goal(value: f64, max: f64) -> serde_json::Value {
    json!({ "value_ms": value, "max_ms": max, "met": value <= max })
}

/// Everything one side needs, shared with its tasks.
struct Run<'a> {
    servers: &'a Servers,
    servers_urls: Vec<String>,
    services: Arc<Vec<Vec<Arc<dyn Kind>>>>,
    streams: Vec<&'static str>,
    admin: jetstream::Context,
    server_pids: Vec<u32>,
    cores: usize,
}

impl Run<'_> {
    /// Deletes every consumer of the six streams and empties them.
    async fn reset(&self) -> anyhow::Result<()> {
        for name in &self.streams {
            let stream = self.admin.get_stream(*name).await?;
            let consumers: Vec<String> = stream
                .consumer_names()
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!(e))?;
            for consumer in consumers {
                stream
                    .delete_consumer(&consumer)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
            }
            stream.purge().await.map_err(|e| anyhow::anyhow!(e))?;
        }
        Ok(())
    }

    async fn side(&self, side: Side, options: &Options) -> anyhow::Result<serde_json::Value> {
        self.reset().await?;
        let warmup = options.events(options.warmup_s);
        let total = warmup + options.events(options.duration_s);
        let publisher_config = PublisherConfig {
            ce_headers: options.ce_headers,
            ..PublisherConfig::default()
        };
        let sub_config = SubscriberConfig {
            start_at: StartAt::New,
            max_in_flight: options.sub_in_flight,
            ..SubscriberConfig::default()
        };
        let ctx = PublishContext::new("org-load")?;

        // Consumers first, on a connection per group.
        let clock = Arc::new(Clock::new(options.rate, total));
        let mut running = Vec::new();
        let mut readers = Vec::new();
        for group in 0..GROUPS {
            let name = format!("load-{}-{group}", side.name());
            let client = connect(&self.servers_urls, &format!("bench-{name}")).await?;
            match side {
                Side::Sdk => {
                    let mut subscriber = Subscriber::new(client, &name, sub_config.clone())?;
                    for kind in self.services.iter().flatten() {
                        kind.register(&mut subscriber, clock.clone(), group);
                    }
                    running.push(subscriber.start().await?);
                }
                Side::Raw => {
                    let js = jetstream::new(client);
                    for stream in &self.streams {
                        let consumer = js
                            .get_stream(*stream)
                            .await?
                            .create_consumer(consumer::pull::Config {
                                durable_name: Some(name.clone()),
                                ack_policy: consumer::AckPolicy::Explicit,
                                ack_wait: sub_config.ack_wait,
                                max_ack_pending: i64::try_from(sub_config.ack_pending())?,
                                deliver_policy: consumer::DeliverPolicy::New,
                                ..Default::default()
                            })
                            .await?;
                        readers.push(tokio::spawn(raw_read(consumer, clock.clone(), group)));
                    }
                }
            }
        }

        // A publisher and a connection per service.
        let mut publishers = Vec::new();
        let mut raw_contexts = Vec::new();
        let mut raw_bodies = Vec::new();
        for (service, kinds) in self.services.iter().enumerate() {
            let name = format!("bench-publish-{}-{service}", side.name());
            let client = connect(&self.servers_urls, &name).await?;
            let publisher = Publisher::new(client.clone(), publisher_config.clone())?;
            raw_bodies.push(
                kinds
                    .iter()
                    .map(|kind| {
                        let prepared = kind.prepare(&publisher, &ctx, Uuid::now_v7())?;
                        Ok((prepared.subject().to_string(), prepared.body().clone()))
                    })
                    .collect::<anyhow::Result<Vec<(String, Bytes)>>>()?,
            );
            raw_contexts.push(
                jetstream::ContextBuilder::new()
                    .timeout(publisher_config.attempt_timeout)
                    .max_ack_inflight(publisher_config.max_in_flight)
                    .backpressure_on_inflight(true)
                    .build(client),
            );
            publishers.push(publisher);
        }
        let publishers = Arc::new(publishers);
        let raw_contexts = Arc::new(raw_contexts);
        let raw_bodies = Arc::new(raw_bodies);

        let highest_load = Arc::new(AtomicU64::new(0));
        let sampler = tokio::spawn(sample_load(highest_load.clone()));
        let load_start = load_average();
        eprintln!(
            "bench: multi-stream {}: {} events/s for {} s (+{} s warm-up), load average {:.2}",
            side.name(),
            options.rate,
            options.duration_s,
            options.warmup_s,
            load_start[0]
        );
        // Wait for the schedule's origin, so the CPU window matches it.
        tokio::time::sleep_until(tokio::time::Instant::from_std(clock.start())).await;
        let cpu_start = Cpu::read(&self.server_pids);
        let issued_until = pace(&clock, |n| {
            let (service, kind) = pick(&self.services, n);
            let clock = clock.clone();
            match side {
                Side::Sdk => {
                    let publishers = publishers.clone();
                    let services = self.services.clone();
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        let publisher = &publishers[service];
                        let outcome =
                            match services[service][kind].prepare(publisher, &ctx, clock.id(n)) {
                                Ok(prepared) => publisher.send(prepared).await.map(drop),
                                Err(e) => Err(e),
                            };
                        clock.published(n, outcome.map_err(|e| e.kind_name().to_string()));
                    });
                }
                Side::Raw => {
                    let contexts = raw_contexts.clone();
                    let bodies = raw_bodies.clone();
                    tokio::spawn(async move {
                        let (subject, body) = &bodies[service][kind];
                        let mut headers = async_nats::HeaderMap::new();
                        headers.insert("Nats-Msg-Id", clock.id(n).to_string().as_str());
                        let message = PublishMessage::build()
                            .payload(body.clone())
                            .headers(headers);
                        let outcome = match contexts[service]
                            .send_publish(subject.clone(), message)
                            .await
                        {
                            Ok(ack) => ack.await.map(drop),
                            Err(e) => Err(e),
                        };
                        clock.published(n, outcome.map_err(|e| format!("{:?}", e.kind())));
                    });
                }
            }
        })
        .await;

        // Every publish answered (the SDK's retries can take ~41 s).
        let publish_deadline = Instant::now() + Duration::from_secs(60);
        while clock.publishing.load(Ordering::Acquire) > 0 && Instant::now() < publish_deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drain_deadline = Instant::now() + Duration::from_secs_f64(options.drain_s);
        while !clock.all_seen() && Instant::now() < drain_deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cpu_end = Cpu::read(&self.server_pids);
        let load_end = load_average();
        let started = self.servers.started();
        let group_traffic =
            Traffic::read(&started, &format!("bench-load-{}-", side.name())).await?;
        let publish_traffic =
            Traffic::read(&started, &format!("bench-publish-{}-", side.name())).await?;
        sampler.abort();
        for running in running {
            running.shutdown().await;
        }
        for reader in readers {
            reader.abort();
        }
        let unanswered = clock.publishing.load(Ordering::Acquire);
        let report = self.summarise(
            side,
            options,
            &clock,
            warmup,
            issued_until,
            unanswered,
            cpu_start.used_until(&cpu_end, self.cores),
            json!({
                "start": load_start,
                "end": load_end,
                "highest_1m": highest_load.load(Ordering::Relaxed) as f64 / 100.0,
            }),
            [publish_traffic, group_traffic],
        );
        self.reset().await?;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn summarise(
        &self,
        side: Side,
        options: &Options,
        clock: &Clock,
        warmup: usize,
        issued_until: u64,
        unanswered: usize,
        cpu: serde_json::Value,
        load: serde_json::Value,
        [publish_traffic, group_traffic]: [Traffic; 2],
    ) -> serde_json::Value {
        let counted = warmup..clock.total;
        let window_start = clock.scheduled(warmup);
        let per_s = |count: usize, until: u64| {
            count as f64 / (until.saturating_sub(window_start).max(1) as f64 / 1e9)
        };
        let mut publish = Vec::new();
        let mut last_ack = 0;
        for n in counted.clone() {
            let acked = clock.acked[n].load(Ordering::Acquire);
            if acked > 0 {
                publish.push(acked.saturating_sub(clock.scheduled(n)));
                last_ack = last_ack.max(acked);
            }
        }
        let acked = publish.len();
        let acked_all = (0..clock.total)
            .filter(|n| clock.acked[*n].load(Ordering::Acquire) > 0)
            .count();
        let achieved = per_s(acked, last_ack);
        let mut all_e2e = Vec::new();
        let mut groups = Vec::new();
        let mut consumed_min = f64::INFINITY;
        let mut missing_total = 0;
        for group in 0..GROUPS {
            let mut e2e = Vec::new();
            let mut missing = 0;
            let mut last_seen = 0;
            for n in counted.clone() {
                let seen = clock.seen[group][n].load(Ordering::Acquire);
                if seen > 0 {
                    e2e.push(seen.saturating_sub(clock.scheduled(n)));
                    last_seen = last_seen.max(seen);
                } else if clock.acked[n].load(Ordering::Acquire) > 0 {
                    missing += 1;
                }
            }
            let consumed = per_s(e2e.len(), last_seen);
            consumed_min = consumed_min.min(consumed);
            missing_total += missing;
            all_e2e.extend_from_slice(&e2e);
            groups.push(json!({
                "group": format!("load-{}-{group}", side.name()),
                "handled": e2e.len(),
                "missing": missing,
                "handled_again": clock.redelivered[group].load(Ordering::Relaxed),
                "consumed_per_s": consumed,
                "end_to_end": percentiles_ms(e2e),
            }));
        }
        let publish = percentiles_ms(publish);
        let end_to_end = percentiles_ms(all_e2e);
        let offered = f64::from(options.rate);
        let rate_min = offered * RATE_MIN_SHARE;
        let failures = clock.failures.load(Ordering::Acquire);
        json!({
            "side": side.name(),
            "events_counted": counted.len(),
            "warmup_events": warmup,
            "offered_per_s": offered,
            "issued_per_s": per_s(counted.len(), issued_until),
            "achieved_publish_per_s": achieved,
            "acked": acked,
            "publish_failures": failures,
            "publish_failures_by_kind": *clock.failure_kinds.lock().unwrap_or_else(|p| p.into_inner()),
            "publish_unanswered": unanswered,
            "foreign_deliveries": clock.foreign.load(Ordering::Relaxed),
            "pacer_waits_at_backlog_cap": clock.backlog_waits.load(Ordering::Relaxed),
            "publish": publish,
            "end_to_end": end_to_end,
            "groups": groups,
            "spec": {
                "publish_p95": goal(publish["p95_ms"].as_f64().unwrap_or(f64::MAX), PUBLISH_P95_MAX_MS),
                "end_to_end_p95": goal(
                    end_to_end["p95_ms"].as_f64().unwrap_or(f64::MAX),
                    END_TO_END_P95_MAX_MS,
                ),
                "rate": {
                    "achieved_publish_per_s": achieved,
                    "slowest_group_consumed_per_s": consumed_min,
                    "min_per_s": rate_min,
                    "met": achieved >= rate_min && consumed_min >= rate_min
                        && failures == 0 && unanswered == 0 && missing_total == 0,
                },
            },
            "cpu": cpu,
            "load_average": load,
            "server_messages": {
                "events_acked_including_warmup": acked_all,
                "publishers": publish_traffic.per_event(acked_all),
                "groups_together": group_traffic.per_event(acked_all),
            },
        })
    }
}

/// A raw group's consumer on one stream: each message's id to the clock,
/// then an ack.
async fn raw_read(
    consumer: consumer::PullConsumer,
    clock: Arc<Clock>,
    group: usize,
) -> anyhow::Result<()> {
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| anyhow::anyhow!(e))?;
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .and_then(|id| Uuid::parse_str(id.as_str()).ok())
            .unwrap_or_default();
        clock.seen(group, id);
        message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(())
}

/// The short commit of the checkout, `-dirty` when tracked files differ
/// from it (a result of uncommitted code says so), or `unknown`.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--exclude=*"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Runs the benchmark and returns its report.
pub async fn run(options: &Options) -> anyhow::Result<serde_json::Value> {
    let load_at_launch = load_average();
    let servers = Servers::launch(options.nodes, options.sync_always).await?;
    let admin_client = connect(&servers.urls(), "bench-admin").await?;
    let server_version = admin_client.server_info().version;
    let admin = jetstream::new(admin_client);
    let profile = servers.profile();
    let plans = support::provision(&admin, profile).await?;
    let services = services()?;
    let mut streams: Vec<&'static str> = Vec::new();
    for kind in services.iter().flatten() {
        if !streams.contains(&kind.stream()) {
            streams.push(kind.stream());
        }
    }
    let mut replicas = BTreeMap::new();
    for stream in &streams {
        let stream_replicas = admin
            .get_stream(*stream)
            .await?
            .cached_info()
            .config
            .num_replicas;
        replicas.insert(stream.to_string(), stream_replicas);
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let run = Run {
        servers: &servers,
        servers_urls: servers.urls(),
        server_pids: servers.pids(),
        services: Arc::new(services),
        streams,
        admin,
        cores,
    };
    let mut sides = serde_json::Map::new();
    for side in &options.sides {
        sides.insert(side.name().into(), run.side(*side, options).await?);
    }
    let ratio = |section: &str| {
        let p95 = |side: &str| sides.get(side).and_then(|s| s[section]["p95_ms"].as_f64());
        match (p95("sdk"), p95("raw")) {
            (Some(sdk), Some(raw)) if raw > 0.0 => json!(sdk / raw),
            _ => serde_json::Value::Null,
        }
    };
    let (publish_ratio, e2e_ratio) = (ratio("publish"), ratio("end_to_end"));
    let now = time::OffsetDateTime::now_utc();
    Ok(json!({
        "benchmark": "multi-stream",
        "date_utc": now.format(&time::format_description::well_known::Rfc3339)?,
        "commit": git_commit(),
        "server_version": server_version,
        "topology": {
            "nodes": options.nodes,
            "external_server": matches!(servers, Servers::External(_)),
            "profile": profile,
            "replicas": replicas,
            "streams_provisioned": plans.len(),
        },
        "sync": if options.sync_always { "always" } else { "default (nats-server's 2 min)" },
        "machine": {
            "cores": cores,
            "load_average_at_launch": load_at_launch,
            "load_average_end": load_average(),
        },
        "load": {
            "rate_per_s": options.rate,
            "duration_s": options.duration_s,
            "warmup_s": options.warmup_s,
            "sdk_ce_headers": options.ce_headers,
            "sdk_group_max_in_flight": options.sub_in_flight,
            "raw_group_batch_per_stream": 200,
            "services": run.services.len(),
            "event_types": run.services.iter().map(Vec::len).sum::<usize>(),
            "groups": GROUPS,
            "latency_from": "the event's scheduled send instant (open loop), one monotonic clock",
        },
        "spec": {
            "publish_p95_max_ms": PUBLISH_P95_MAX_MS,
            "end_to_end_p95_max_ms": END_TO_END_P95_MAX_MS,
            "rate_min_share_of_offered": RATE_MIN_SHARE,
        },
        "sides": sides,
        "sdk_over_raw": {
            "publish_p95": publish_ratio,
            "end_to_end_p95": e2e_ratio,
        },
    }))
}
