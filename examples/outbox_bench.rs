//! The outbox benchmark: direct `publish` beside the transactional outbox on
//! SQLite and on PostgreSQL, in one run, against one local nats-server and
//! one local PostgreSQL it starts itself, printing JSON on stdout.
//!
//! Run it with `scripts/bench --outbox` (release build). `--events N`
//! (default 3000) per measurement. For each way:
//!
//! - `direct`: `Publisher::publish` one after the other; latency is the
//!   call (validate, encode, PubAck).
//! - `outbox_<backend>.live`: one transaction per event (a business row and
//!   the outbox row) committed one after the other while a relay runs;
//!   latency is commit to the stream's store time of that event (the
//!   stream's timestamp, which precedes the PubAck by one hop), so it
//!   includes the relay's idle poll (50 ms) and any queueing.
//! - `outbox_<backend>.drain`: N committed rows drained by one relay
//!   started afterwards: the relay's throughput.
#![allow(clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
#[macro_use]
mod support;

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use support::{provision, UserCreated};
use tidings::outbox::postgres::{self, PgOutbox};
use tidings::outbox::sqlite::{self, SqliteOutbox};
use tidings::outbox::sqlx;
use tidings::outbox::{Relay, Store};
use tidings::testing::{NatsServer, PostgresServer};
use tidings::{PublishContext, Publisher, PublisherConfig};
use time::OffsetDateTime;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut events = 3000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => {
                events = args
                    .next()
                    .context("--events needs a number")?
                    .parse()
                    .context("--events needs a number")?;
            }
            other => anyhow::bail!("unknown argument {other:?}; usage: outbox_bench [--events N]"),
        }
    }
    let server = NatsServer::launch().await?;
    let pg = PostgresServer::launch().await?;
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    provision(&js, "dev").await?;
    let publisher = Publisher::new(client, PublisherConfig::default())?;
    let dir = tempfile::tempdir()?;

    let direct = direct(&publisher, events).await?;

    let sqlite = SqliteOutbox::new(
        sqlite::connect(dir.path().join("bench.db")).await?,
        &publisher,
    );
    sqlx::query("CREATE TABLE users (id TEXT PRIMARY KEY)")
        .execute(sqlite.pool())
        .await?;
    let sqlite_result = backend(
        &js,
        &publisher,
        sqlite.clone(),
        events,
        "sqlite",
        |org, n| {
            let outbox = sqlite.clone();
            async move {
                let ctx = PublishContext::new(&org)?;
                let mut tx = outbox.pool().begin().await?;
                sqlx::query("INSERT INTO users (id) VALUES (?1)")
                    .bind(format!("{org}-{n}"))
                    .execute(&mut *tx)
                    .await?;
                let id = outbox
                    .enqueue(&mut tx, &ctx, &UserCreated::numbered(n))
                    .await?;
                tx.commit().await?;
                Ok(id)
            }
        },
    )
    .await?;

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&pg.url())
        .await?;
    postgres::migrate(&pool).await?;
    sqlx::query("CREATE TABLE users (id TEXT PRIMARY KEY)")
        .execute(&pool)
        .await?;
    let pg_outbox = PgOutbox::new(pool, &publisher);
    let pg_result = backend(
        &js,
        &publisher,
        pg_outbox.clone(),
        events,
        "pg",
        |org, n| {
            let outbox = pg_outbox.clone();
            async move {
                let ctx = PublishContext::new(&org)?;
                let mut tx = outbox.pool().begin().await?;
                sqlx::query("INSERT INTO users (id) VALUES ($1)")
                    .bind(format!("{org}-{n}"))
                    .execute(&mut *tx)
                    .await?;
                let id = outbox
                    .enqueue(&mut tx, &ctx, &UserCreated::numbered(n))
                    .await?;
                tx.commit().await?;
                Ok(id)
            }
        },
    )
    .await?;

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let report = json!({
        "events": events,
        "load_average": load.split_whitespace().take(3).collect::<Vec<_>>(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "direct_publish": direct,
        "outbox_sqlite": sqlite_result,
        "outbox_postgres": pg_result,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Sequential `publish`: throughput and per-call latency.
async fn direct(publisher: &Publisher, events: usize) -> anyhow::Result<Value> {
    let ctx = PublishContext::new("bench-direct")?;
    let mut latencies = Vec::with_capacity(events);
    let started = Instant::now();
    for n in 0..events {
        let t = Instant::now();
        publisher.publish(&ctx, &UserCreated::numbered(n)).await?;
        latencies.push(t.elapsed());
    }
    Ok(json!({
        "per_second": per_second(events, started.elapsed()),
        "latency_ms": summary(&mut latencies),
    }))
}

/// One backend: live (relay running while events commit) and drain.
async fn backend<S, F, Fut>(
    js: &jetstream::Context,
    publisher: &Publisher,
    store: S,
    events: usize,
    name: &str,
    enqueue: F,
) -> anyhow::Result<Value>
where
    S: Store + Clone,
    F: Fn(String, usize) -> Fut,
    Fut: Future<Output = anyhow::Result<Uuid>>,
{
    // Live: commits one after the other, the relay running.
    let relay = Relay::new(store.clone(), publisher.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        relay
            .run(async {
                let _ = stop_rx.await;
            })
            .await;
    });
    let org = format!("bench-{name}-live");
    let mut committed = HashMap::with_capacity(events);
    let mut commit_latencies = Vec::with_capacity(events);
    let started = Instant::now();
    for n in 0..events {
        let t = Instant::now();
        let id = enqueue(org.clone(), n).await?;
        commit_latencies.push(t.elapsed());
        committed.insert(id, OffsetDateTime::now_utc());
    }
    while store.pending().await? > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let live_elapsed = started.elapsed();
    let _ = stop_tx.send(());
    task.await?;
    let mut latencies = commit_to_stored(js, &org, &committed).await?;

    // Drain: rows committed first, then one relay.
    let org = format!("bench-{name}-drain");
    for n in 0..events {
        enqueue(org.clone(), n).await?;
    }
    let relay = Relay::new(store.clone(), publisher.clone());
    let started = Instant::now();
    while store.pending().await? > 0 {
        relay.run_once().await?;
    }
    let drain_elapsed = started.elapsed();
    Ok(json!({
        "live": {
            "commits_per_second": per_second(events, live_elapsed),
            "commit_ms": summary(&mut commit_latencies),
            "commit_to_stored_ms": summary(&mut latencies),
        },
        "drain": {
            "per_second": per_second(events, drain_elapsed),
        },
    }))
}

/// For each committed event, its stream store time minus its commit time.
async fn commit_to_stored(
    js: &jetstream::Context,
    org: &str,
    committed: &HashMap<Uuid, OffsetDateTime>,
) -> anyhow::Result<Vec<Duration>> {
    let stream = js.get_stream("AUTH_EVENTS").await?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("auth.user.created.{org}.>"),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?.take(committed.len());
    let mut out = Vec::with_capacity(committed.len());
    while let Some(message) = tokio::time::timeout(Duration::from_secs(30), messages.next()).await?
    {
        let message = message.map_err(|e| anyhow::anyhow!(e))?;
        let id: Uuid = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .context("no Nats-Msg-Id")?
            .as_str()
            .parse()?;
        let stored = message.info().map_err(|e| anyhow::anyhow!(e))?.published;
        if let Some(commit) = committed.get(&id) {
            let gap = stored - *commit;
            out.push(Duration::try_from(gap).unwrap_or(Duration::ZERO));
        }
    }
    Ok(out)
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    (n as f64 / elapsed.as_secs_f64()).round()
}

/// p50, p99 and max in milliseconds.
fn summary(samples: &mut [Duration]) -> Value {
    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q).round() as usize)
            .map(|d| (d.as_secs_f64() * 1e5).round() / 100.0)
    };
    json!({"p50": at(0.5), "p99": at(0.99), "max": at(1.0)})
}
