//! The chaos checker: Jepsen-style accounting of the SDK under faults.
//!
//! Run it with `scripts/chaos` (release build; `--debug` reuses the debug
//! build the test suite made, as CI does). It starts a 3-node loopback
//! cluster with `sync_interval: always`, provisions the registry's streams
//! on the production profile (R3), and runs for `--duration` seconds:
//!
//! * 10 publishers (tasks with a connection each; the first through a
//!   [`FaultProxy`]) publish `auth.chaos.probed` events at `--rate` events/s
//!   in total, over `--keys` entity keys, every `--poison-every`-th of a
//!   publisher refused by every handler (so the DLQ fills on purpose). Each
//!   event has its due time on a fixed schedule; what fell due while a
//!   publisher was held up goes out as soon as it can, and how late is
//!   reported. Each outcome is recorded: ok, failed (not stored) or unknown.
//! * 3 consumer groups of 3 instances, each instance its own process (this
//!   binary in `subscriber` mode): `chaos-ordered` (`ordered_by_key`),
//!   `chaos-dedup` (a `Deduplicator`) and `chaos-plain`; one instance of
//!   the plain group also connects through a proxy. Every handled event is
//!   appended to the process's log before the ack.
//! * a nemesis applies one fault every `--fault-interval` seconds, in a
//!   rotation: SIGKILL and restart of a node, SIGKILL of a subscriber
//!   process, a stream leader step-down, a partition of the proxied clients,
//!   SIGSTOP/SIGCONT of a node, a graceful node restart, a graceful
//!   subscriber restart.
//!
//! Then it heals everything, waits for the groups to settle, stops the
//! subscribers, reads the stream and the DLQ, and reports (JSON in
//! `<out>/report.json`, a summary on stdout): events lost (acknowledged but
//! not stored, or stored but neither handled nor dead-lettered by a group),
//! unexpected (stored without an ok or unknown outcome), stored twice,
//! handled twice per group, order violations in the ordered group, and the
//! DLQ accounting per group. It exits 1 on any loss, unexpected event,
//! storage duplicate, order violation or DLQ mismatch.
//!
//! Every process it starts (servers, subscribers) is killed by pid when the
//! run ends, fails or is interrupted (Ctrl-C); subscribers also exit when
//! this process dies (their standard input closes).
// A checker reports on stdout.
#![allow(clippy::print_stdout)]

#[path = "chaos/check.rs"]
mod check;
#[path = "chaos/event.rs"]
mod event;
#[path = "chaos/nemesis.rs"]
mod nemesis;
#[path = "chaos/processes.rs"]
mod processes;
#[path = "chaos/subscriber.rs"]
mod subscriber;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use serde_json::json;
use tidings::idempotency::Deduplicator;
use tidings::publish::{Outcome as SdkOutcome, PublishError};
use tidings::testing::{FaultProxy, NatsCluster, NatsServer};
use tidings::{PublishContext, Publisher, PublisherConfig};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use check::{GroupSpec, Outcome, Publish};
use event::{Probe, DEDUP_BUCKET, ORGANIZATION, STREAM};

#[derive(Debug, Parser)]
#[command(
    name = "chaos",
    about = "Jepsen-style fault checker for the Tidings SDK"
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// One subscriber instance (started by the checker itself).
    #[command(hide = true)]
    Subscriber(subscriber::SubscriberArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// Seconds of publishing under faults.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Events per second, all publishers together.
    #[arg(long, default_value_t = 2000)]
    rate: u32,
    /// Publishers (the first one connects through a fault proxy).
    #[arg(long, default_value_t = 10)]
    publishers: u32,
    /// Entity keys the events are spread over.
    #[arg(long, default_value_t = 1000)]
    keys: u32,
    /// Every n-th event of a publisher is refused by every handler (0: none).
    #[arg(long, default_value_t = 500)]
    poison_every: u64,
    /// Seconds between the starts of two faults (the first comes after 5 s).
    #[arg(long, default_value_t = 15)]
    fault_interval: u64,
    /// Unanswered publishes per publisher.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Seconds the groups get to settle after the faults end.
    #[arg(long, default_value_t = 180)]
    settle_timeout: u64,
    /// Seed of the nemesis's choices (default: the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Where the logs and the report go (default target/chaos/<unix time>).
    #[arg(long)]
    out: Option<PathBuf>,
}

const GROUPS: [(&str, bool, bool); 3] = [
    ("chaos-ordered", true, false),
    ("chaos-dedup", false, true),
    ("chaos-plain", false, false),
];
const INSTANCES: usize = 3;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,chaos=info".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.mode {
        Some(Mode::Subscriber(args)) => runtime.block_on(subscriber::run(args)),
        None => {
            let code = runtime.block_on(async {
                tokio::select! {
                    result = controller(cli.run) => result,
                    _ = tokio::signal::ctrl_c() => {
                        // Dropping the run kills every process it started.
                        anyhow::bail!("interrupted")
                    }
                }
            })?;
            // Spawned publishing tasks end with the runtime.
            runtime.shutdown_timeout(Duration::from_secs(5));
            std::process::exit(code);
        }
    }
}

/// Runs the whole check; returns the exit code.
async fn controller(args: RunArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(
        args.rate > 0 && args.publishers > 0 && args.keys > 0,
        "--rate, --publishers and --keys must be at least 1"
    );
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/chaos")
            .join(seed.to_string())
    });
    std::fs::create_dir_all(out.join("handled"))
        .with_context(|| format!("creating {}", out.display()))?;
    println!("chaos: seed {seed}, logs and report in {}", out.display());
    // Bound everything: publishing, healing, settling, reading.
    let bound = Duration::from_secs(args.duration + args.settle_timeout + 600);
    tokio::time::timeout(bound, run(&args, seed, &out))
        .await
        .with_context(|| format!("the run did not finish within {bound:?}"))?
}

async fn run(args: &RunArgs, seed: u64, out: &Path) -> anyhow::Result<i32> {
    let started = Instant::now();
    let mut cluster = NatsCluster::launch_with(NatsServer::builder().sync_always(true)).await?;
    let urls = cluster.urls().join(",");
    let admin = cluster.connect().await?;
    let js = jetstream::new(admin.clone());
    support::provision(&js, "production").await?;
    Deduplicator::open(&js, DEDUP_BUCKET, Duration::from_secs(3600), 3).await?;

    // Publisher 0 reaches node 1 through a proxy, and so does the plain group's
    // instance 0 (node 2): partitions cut a publisher and a subscriber.
    let proxies = vec![
        FaultProxy::start(cluster.node(0)?.port()).await?,
        FaultProxy::start(cluster.node(1)?.port()).await?,
    ];
    let mut specs = Vec::new();
    for (group, ordered, dedup) in GROUPS {
        for instance in 0..INSTANCES {
            let urls = if group == "chaos-plain" && instance == 0 {
                proxies[1].url()
            } else {
                urls.clone()
            };
            specs.push(processes::Spec {
                group: group.to_string(),
                instance,
                urls,
                ordered,
                dedup,
            });
        }
    }
    let mut subscribers = processes::Subscribers::spawn(out, specs)?;
    for (group, _, _) in GROUPS {
        tidings::testing::eventually(
            &format!("consumer group {group} exists"),
            Duration::from_secs(60),
            || async { support::consumer_info(&js, STREAM, group).await.map(drop) },
        )
        .await?;
    }
    println!(
        "chaos: cluster and {} subscribers up in {:.1} s; publishing {} events/s for {} s",
        subscribers.len(),
        started.elapsed().as_secs_f64(),
        args.rate,
        args.duration
    );

    // Publishing.
    let publish_start = Instant::now();
    let publish_start_ms = check::unix_ms();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.duration);
    let mut publishers = JoinSet::new();
    for i in 0..args.publishers {
        let client = if i == 0 {
            async_nats::connect(proxies[0].url()).await?
        } else {
            cluster.connect().await?
        };
        publishers.spawn(publish(i, client, args.clone(), deadline));
    }

    // The nemesis, one fault at a time, and a watch over the subscribers.
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut faults = Vec::new();
    let mut next_fault = tokio::time::Instant::now() + Duration::from_secs(5);
    let last_fault_start =
        deadline - Duration::from_secs(args.fault_interval.min(args.duration) / 2);
    while tokio::time::Instant::now() < deadline {
        subscribers.revive()?;
        let now = tokio::time::Instant::now();
        if now >= next_fault && now < last_fault_start {
            let mut targets = nemesis::Targets {
                cluster: &mut cluster,
                subscribers: &mut subscribers,
                proxies: &proxies,
                admin: &admin,
            };
            let at = publish_start.elapsed().as_secs_f64();
            faults.push(nemesis::apply(faults.len(), &mut rng, &mut targets, at).await);
            next_fault += Duration::from_secs(args.fault_interval);
        }
        tokio::time::sleep(
            Duration::from_millis(200)
                .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
        )
        .await;
    }
    nemesis::heal(&mut cluster, &proxies).await?;
    let mut publishes = Vec::new();
    let mut failure_reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut lateness = Lateness::default();
    while let Some(result) = publishers.join_next().await {
        let (records, reasons, late) = result??;
        lateness.merge(late);
        publishes.extend(records);
        for (reason, n) in reasons {
            *failure_reasons.entry(reason).or_default() += n;
        }
    }
    let publishing = publish_start.elapsed();
    println!(
        "chaos: {} publishes in {:.1} s ({:.0}/s), {} faults; settling",
        publishes.len(),
        publishing.as_secs_f64(),
        publishes.len() as f64 / publishing.as_secs_f64(),
        faults.len()
    );

    // Settle: every group has nothing pending and nothing unacknowledged.
    let settle_start = Instant::now();
    let settled = settle(
        &js,
        &mut subscribers,
        Duration::from_secs(args.settle_timeout),
    )
    .await?;
    let settle_time = settle_start.elapsed();
    subscribers.stop_all().await?;

    // Read what is there.
    let stored = read_stream(&js, STREAM, |m| {
        Some((header(m, "Nats-Msg-Id")?.parse().ok()?, ()))
    })
    .await?;
    let stored: Vec<(Uuid, u64)> = stored
        .into_iter()
        .map(|((id, ()), seq)| (id, seq))
        .collect();
    let dead = read_stream(&js, tidings::dlq::DLQ_STREAM, |m| {
        let group = header(m, tidings::dlq::record::GROUP_HEADER)?;
        let id = header(m, tidings::dlq::record::MSG_ID_HEADER_ORIGINAL)?
            .parse()
            .ok()?;
        Some((group, id))
    })
    .await?;
    let dead: Vec<(String, Uuid)> = dead.into_iter().map(|(d, _)| d).collect();
    let logs = read_logs(&out.join("handled"), &subscribers.killed)?;
    // A fault can cause a redelivery from its start until an ack wait
    // (and a pull round) after its healing.
    let redelivery = subscriber::config(false).ack_wait + Duration::from_secs(2);
    let windows: Vec<check::FaultWindow> = faults
        .iter()
        .map(|f| {
            let from_ms = publish_start_ms + (f.at_s * 1000.0) as u64;
            check::FaultWindow {
                kind: serde_json::to_value(f.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                from_ms,
                to_ms: from_ms
                    + u64::try_from(f.healed_after_ms + redelivery.as_millis()).unwrap_or(0),
            }
        })
        .collect();
    let specs: Vec<GroupSpec> = GROUPS
        .iter()
        .map(|(name, ordered, dedup)| GroupSpec {
            name: name.to_string(),
            ordered: *ordered,
            dedup: *dedup,
        })
        .collect();
    let accounting = check::account(&publishes, &stored, &dead, &logs, &specs, &windows);

    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for fault in &faults {
        *by_kind
            .entry(
                serde_json::to_value(fault.kind)?
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
            )
            .or_default() += 1;
    }
    let fault_errors = faults.iter().filter(|f| f.error.is_some()).count();
    let failed = accounting.failed() || !settled;
    let report = json!({
        "seed": seed,
        "config": {
            "duration_s": args.duration, "rate": args.rate, "publishers": args.publishers,
            "keys": args.keys, "poison_every": args.poison_every,
            "fault_interval_s": args.fault_interval, "nodes": 3, "replicas": 3,
            "sync_interval": "always", "groups": GROUPS.len(), "instances_per_group": INSTANCES,
        },
        "publishing_s": publishing.as_secs_f64(),
        "achieved_rate": publishes.len() as f64 / publishing.as_secs_f64(),
        "issue_lateness": lateness,
        "settled": settled,
        "settle_s": settle_time.as_secs_f64(),
        "total_s": started.elapsed().as_secs_f64(),
        "faults_by_kind": by_kind,
        "fault_errors": fault_errors,
        "faults": faults,
        "publish_failures_by_reason": failure_reasons,
        "subscriber_unexpected_exits": subscribers.unexpected_exits,
        "accounting": accounting,
        "failed": failed,
    });
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
    summary(&report, &accounting, failed);
    println!("chaos: report in {}", path.display());
    Ok(if failed { 1 } else { 0 })
}

/// One publisher: events at its share of the rate until the deadline, each
/// outcome recorded.
async fn publish(
    index: u32,
    client: async_nats::Client,
    args: RunArgs,
    deadline: tokio::time::Instant,
) -> anyhow::Result<(Vec<Publish>, BTreeMap<String, usize>, Lateness)> {
    let publisher = Publisher::new(
        client,
        PublisherConfig {
            // Smaller messages: a 10-minute run fits the stream's 1 GiB.
            ce_headers: false,
            // Retries give up within ~9 s, so a 12 s partition leaves unknowns.
            attempt_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )?;
    let ctx = PublishContext::new(ORGANIZATION)?;
    let period = Duration::from_secs_f64(f64::from(args.publishers) / f64::from(args.rate));
    // Event n is due at start + n × period: a publisher held up (every
    // permit waiting through a fault, or no core free) issues what fell due
    // meanwhile as soon as it can, so the rate asked is the rate offered
    // over the run, and how late events went out is reported.
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut lateness = Lateness::default();
    let permits = Arc::new(Semaphore::new(args.in_flight));
    let mut rng = fastrand::Rng::with_seed(u64::from(index));
    let mut tasks = JoinSet::new();
    let mut records = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut n = 0u64;
    loop {
        let permit = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            due = ticker.tick() => tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                permit = permits.clone().acquire_owned() => {
                    lateness.record(due.elapsed());
                    permit?
                }
            },
        };
        while let Some(done) = tasks.try_join_next() {
            let (record, reason) = done?;
            records.push(record);
            if let Some(reason) = reason {
                *reasons.entry(reason).or_default() += 1;
            }
        }
        n += 1;
        let probe = Probe {
            key: format!("k{}", rng.u32(0..args.keys)),
            publisher: index,
            n,
            poison: args.poison_every > 0 && n.is_multiple_of(args.poison_every),
        };
        let id = Uuid::now_v7();
        let publisher = publisher.clone();
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let result = publisher.publish_with_id(&ctx, id, &probe).await;
            drop(permit);
            let (outcome, reason) = match result {
                Ok(_) => (Outcome::Ok, None),
                Err(PublishError::RetriesExhausted {
                    outcome: SdkOutcome::Unknown,
                    ..
                }) => (
                    Outcome::Unknown,
                    Some("retries exhausted, unknown".to_string()),
                ),
                Err(PublishError::RetriesExhausted {
                    outcome: SdkOutcome::NotStored,
                    ..
                }) => (
                    Outcome::Failed,
                    Some("retries exhausted, not stored".to_string()),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "publish failed");
                    let kind = format!("{e:?}");
                    let kind = kind
                        .split([' ', '{', '('])
                        .next()
                        .unwrap_or("?")
                        .to_string();
                    (Outcome::Failed, Some(kind))
                }
            };
            let record = Publish {
                id,
                outcome,
                poison: probe.poison,
            };
            (record, reason)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (record, reason) = done?;
        records.push(record);
        if let Some(reason) = reason {
            *reasons.entry(reason).or_default() += 1;
        }
    }
    Ok((records, reasons, lateness))
}

/// How late a publisher issued its events against their schedule.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
struct Lateness {
    /// The latest an event went out after it was due, in seconds.
    max_s: f64,
    /// Events issued more than a second after they were due.
    over_1s: u64,
}

impl Lateness {
    fn record(&mut self, late: Duration) {
        self.max_s = self.max_s.max(late.as_secs_f64());
        self.over_1s += u64::from(late > Duration::from_secs(1));
    }

    fn merge(&mut self, other: Lateness) {
        self.max_s = self.max_s.max(other.max_s);
        self.over_1s += other.over_1s;
    }
}

/// Waits until every group has nothing pending and nothing awaiting an ack
/// on the stream, restarting subscribers that exit meanwhile.
async fn settle(
    js: &jetstream::Context,
    subscribers: &mut processes::Subscribers,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        subscribers.revive()?;
        let mut busy = Vec::new();
        for (group, _, _) in GROUPS {
            match support::consumer_info(js, STREAM, group).await {
                Ok(info) if info.num_pending == 0 && info.num_ack_pending == 0 => {}
                Ok(info) => busy.push(format!(
                    "{group}: {} pending, {} awaiting ack",
                    info.num_pending, info.num_ack_pending
                )),
                Err(e) => busy.push(format!("{group}: {e}")),
            }
        }
        if busy.is_empty() {
            return Ok(true);
        }
        if Instant::now() > deadline {
            tracing::error!(state = ?busy, "the groups did not settle");
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn header(message: &jetstream::Message, name: &str) -> Option<String> {
    Some(message.headers.as_ref()?.get(name)?.to_string())
}

/// Reads every message of a stream with an ordered consumer: `read` of each
/// (or a warning if it cannot be read) with its stream sequence.
async fn read_stream<T>(
    js: &jetstream::Context,
    stream: &str,
    read: impl Fn(&jetstream::Message) -> Option<T>,
) -> anyhow::Result<Vec<(T, u64)>> {
    let mut handle = js.get_stream(stream).await?;
    let expected = handle.info().await?.state.messages as usize;
    let consumer = handle
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?.take(expected);
    let mut out = Vec::with_capacity(expected);
    while let Some(message) = tokio::time::timeout(Duration::from_secs(30), messages.next())
        .await
        .with_context(|| format!("reading {stream}: nothing for 30 s"))?
    {
        let message = message.map_err(|e| anyhow::anyhow!("reading {stream}: {e}"))?;
        let sequence = message
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        match read(&message) {
            Some(item) => out.push((item, sequence)),
            None => tracing::error!(stream, sequence, "a message without the expected headers"),
        }
    }
    Ok(out)
}

/// Reads every subscriber process's log (`GROUP.INSTANCE.PID.log`);
/// `killed`: the pids of the processes SIGKILLed. A last line cut short by
/// a SIGKILL cannot happen (one write per record) but is skipped if it
/// does.
fn read_logs(
    dir: &Path,
    killed: &std::collections::HashSet<u32>,
) -> anyhow::Result<Vec<check::ProcessLog>> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("log name")?
            .to_string();
        let group = name.split('.').next().unwrap_or_default().to_string();
        let mut records = Vec::new();
        for line in BufReader::new(std::fs::File::open(&path)?).lines() {
            let line = line?;
            let mut fields = line.split(' ');
            let parsed = (|| {
                Some(check::Handled {
                    id: fields.next()?.parse().ok()?,
                    sequence: fields.next()?.parse().ok()?,
                    key: fields.next()?.to_string(),
                    delivery: fields.next()?.parse().ok()?,
                    at_ms: fields.next()?.parse().ok()?,
                })
            })();
            match parsed {
                Some(record) => records.push(record),
                None => tracing::error!(log = %path.display(), line, "unreadable record"),
            }
        }
        let pid = name.rsplit('.').next().and_then(|p| p.parse::<u32>().ok());
        logs.push(check::ProcessLog {
            group,
            killed: pid.is_some_and(|p| killed.contains(&p)),
            name,
            records,
        });
    }
    Ok(logs)
}

/// The one-screen summary.
fn summary(report: &serde_json::Value, a: &check::Accounting, failed: bool) {
    let s = &a.storage;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\n== chaos report ({})",
        if failed { "FAILED" } else { "passed" }
    );
    let _ = writeln!(
        out,
        "run: {:.0} s publishing at {:.0} events/s (asked {}; issued up to {:.1} s late, {} over 1 s), settled: {} in {:.1} s, total {:.0} s",
        report["publishing_s"].as_f64().unwrap_or_default(),
        report["achieved_rate"].as_f64().unwrap_or_default(),
        report["config"]["rate"],
        report["issue_lateness"]["max_s"].as_f64().unwrap_or_default(),
        report["issue_lateness"]["over_1s"],
        report["settled"],
        report["settle_s"].as_f64().unwrap_or_default(),
        report["total_s"].as_f64().unwrap_or_default(),
    );
    let _ = writeln!(
        out,
        "faults: {} ({} failed to apply or heal): {}",
        report["faults"].as_array().map_or(0, Vec::len),
        report["fault_errors"],
        report["faults_by_kind"]
    );
    let _ = writeln!(
        out,
        "publishes: {} attempted, {} ok, {} failed, {} unknown ({} of them stored); failures {}",
        s.attempted,
        s.ok,
        s.failed,
        s.unknown,
        s.unknown_stored,
        report["publish_failures_by_reason"]
    );
    let _ = writeln!(
        out,
        "storage: {} events in {} messages; lost (acked, not stored) {}, unexpected {}, stored twice {}",
        s.stored_events, s.stored_messages, s.lost.count, s.unexpected.count, s.duplicated.count
    );
    let _ = writeln!(
        out,
        "subscriber processes restarted after exiting on their own: {}",
        report["subscriber_unexpected_exits"]
    );
    let _ = writeln!(
        out,
        "{:<14} {:>6} {:>9} {:>9} {:>6} {:>7} {:>13} {:>6} {:>7}",
        "group", "procs", "handled", "dead", "lost", "twice", "dlq account", "order", "redeliv"
    );
    for (name, g) in &a.groups {
        let _ = writeln!(
            out,
            "{:<14} {:>6} {:>9} {:>9} {:>6} {:>7} {:>13} {:>6} {:>7}",
            format!("{name}{}", if g.dedup { "*" } else { "" }),
            g.processes,
            g.handled_events,
            g.dead_lettered,
            g.lost.count,
            g.handled_twice.count,
            if g.dlq_accounting_ok {
                "ok"
            } else {
                "MISMATCH"
            },
            g.order_violations
                .as_ref()
                .map_or("-".to_string(), |o| o.count.to_string()),
            g.redelivered_behind_later
                .map_or("-".to_string(), |n| n.to_string()),
        );
    }
    let _ = writeln!(
        out,
        "(* deduplicating group; twice: event ids handled more than once; order: first deliveries of a key\n handled out of stream order in one instance; redeliv: redeliveries handled after a later event of their key)"
    );
    let _ = writeln!(
        out,
        "handled again (each handling after an event's first), by where and during which fault:"
    );
    for (name, g) in &a.groups {
        let mut causes: Vec<(&String, &usize)> = g.handled_again_by_cause.iter().collect();
        causes.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
        let listed: Vec<String> = causes.iter().map(|(c, n)| format!("{n} {c}")).collect();
        let _ = writeln!(
            out,
            "  {name}: {}",
            if listed.is_empty() {
                "none".to_string()
            } else {
                listed.join(", ")
            }
        );
    }
}
