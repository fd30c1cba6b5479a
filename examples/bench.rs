//! The Tidings benchmark: the SDK beside raw async-nats, in one run, against
//! the same servers (one node, or a 3-node cluster with `--cluster 3`),
//! printing JSON on stdout.
//!
//! Run it with `scripts/bench` (release build, a local nats-server it starts
//! itself; set `TIDINGS_NATS_URL` to use another). Options:
//! `--sequential N` (default 3000), `--pipelined N` (default 30000),
//! `--in-flight N` (default 256), `--rounds N` (default 3), `--cluster 1|3`
//! (R3 streams on a 3-node loopback cluster), `--sync always`.
//!
//! Both sides publish the same payload bytes (the SDK's CloudEvents body,
//! built before the clock starts for the raw side) with a fresh
//! `Nats-Msg-Id` each. By default the raw side sends only that header, as a
//! hand-rolled publisher would (the SDK adds `content-type`); `--raw-headers
//! full` gives it the 13 headers of an SDK publisher with `ce_headers` on,
//! which isolates the SDK's own work from the cost of carrying those headers
//! on the wire. `--breakdown` adds pipelined runs that split the gap: raw
//! with those 13 headers, the SDK sending events prepared before the clock
//! starts (its send path alone), and the SDK with `ce_headers` on, beside
//! raw and the SDK as above; and end-to-end runs of the mixed pairs (SDK
//! publisher with raw consumer, raw publisher with SDK subscriber).
//!
//! `--multi-stream` runs the load benchmark of `bench/multi.rs` instead
//! (SC-004: the six service streams, three consumer groups, an open-loop
//! rate, on one node or a 3-node cluster); `--help` prints every option.
// A benchmark reports on stdout, and on stderr what is wrong with its
// command line.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/support/mod.rs"]
#[macro_use]
mod support;
#[path = "bench/consume.rs"]
mod consume;
#[path = "bench/multi.rs"]
mod multi;
#[path = "bench/results.rs"]
mod results;
#[path = "bench/stages.rs"]
mod stages;

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, message::PublishMessage};
use futures_util::stream::{self, StreamExt};
use serde_json::json;
use support::UserCreated;
use tidings::{PublishContext, Publisher, PublisherConfig};

/// Issue 17's goals: sequential publish p95 at most 1.1 times raw's,
/// pipelined publish at least 0.95 of raw's rate.
const SEQUENTIAL_P95_GOAL_MAX: f64 = 1.1;
const PIPELINED_GOAL_MIN: f64 = 0.95;

struct Options {
    sequential: usize,
    pipelined: usize,
    in_flight: usize,
    rounds: usize,
    raw_full_headers: bool,
    breakdown: bool,
    nodes: usize,
    sync_always: bool,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        sequential: 3000,
        pipelined: 30_000,
        in_flight: 256,
        rounds: 3,
        raw_full_headers: false,
        breakdown: false,
        nodes: 1,
        sync_always: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--breakdown" {
            options.breakdown = true;
            continue;
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        if consume::FLAGS.contains(&flag.as_str()) {
            continue;
        }
        if flag == "--cluster" {
            options.nodes = multi::cluster_flag(&value)?;
            continue;
        }
        if flag == "--sync" {
            options.sync_always = multi::sync_flag(&value)?;
            continue;
        }
        if flag == "--raw-headers" {
            options.raw_full_headers = match value.as_str() {
                "full" => true,
                "msg-id" => false,
                other => anyhow::bail!("--raw-headers {other}: use full or msg-id"),
            };
            continue;
        }
        let number: usize = value
            .parse()
            .with_context(|| format!("{flag} {value}: not a whole number"))?;
        anyhow::ensure!(number > 0, "{flag} must be at least 1");
        match flag.as_str() {
            "--sequential" => options.sequential = number,
            "--pipelined" => options.pipelined = number,
            "--in-flight" => options.in_flight = number,
            "--rounds" => options.rounds = number,
            other => anyhow::bail!(
                "unknown option {other}; use --sequential N, --pipelined N, --in-flight N, \
                 --rounds N, --raw-headers full|msg-id, --breakdown, --cluster 1|3, \
                 --sync always|default, or --multi-stream with its options (--help prints \
                 them all)"
            ),
        }
    }
    Ok(options)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e6
}

fn latency_summary(mut samples: Vec<Duration>, elapsed: Duration) -> serde_json::Value {
    samples.sort();
    json!({
        "n": samples.len(),
        "p50_us": percentile(&samples, 50.0),
        "p95_us": percentile(&samples, 95.0),
        "p99_us": percentile(&samples, 99.0),
        "rate_per_s": samples.len() as f64 / elapsed.as_secs_f64(),
    })
}

/// One raw message: the SDK's body for event `n` with its event id as message id,
/// and either only that header or every header `publisher` sends (pass one
/// with `ce_headers` on for the 13). Built before the clock starts: the raw
/// side is timed on publishing only.
fn raw_message(
    publisher: &Publisher,
    ctx: &PublishContext,
    n: usize,
    full_headers: bool,
) -> anyhow::Result<(String, PublishMessage)> {
    let prepared = publisher.prepare(ctx, &UserCreated::numbered(n))?;
    let mut headers = if full_headers {
        prepared.headers().clone()
    } else {
        async_nats::HeaderMap::new()
    };
    // The event's own id, as the SDK sends it: a subscriber checks that the
    // two agree (the mixed end-to-end pair reads these with the SDK).
    headers.insert("Nats-Msg-Id", prepared.event_id().to_string().as_str());
    Ok((
        prepared.subject().to_string(),
        PublishMessage::build()
            .payload(prepared.body().clone())
            .headers(headers),
    ))
}

/// Publishes pre-built raw messages with `in_flight` PubAcks outstanding;
/// the time taken and how many failed.
async fn raw_pipelined(
    js: &jetstream::Context,
    messages: Vec<(String, PublishMessage)>,
    in_flight: usize,
) -> (Duration, usize) {
    let started = Instant::now();
    let results: Vec<_> = stream::iter(messages)
        .map(|(subject, message)| {
            let js = js.clone();
            async move { js.send_publish(subject, message).await?.await }
        })
        .buffered(in_flight)
        .collect()
        .await;
    (
        started.elapsed(),
        results.iter().filter(|r| r.is_err()).count(),
    )
}

/// The split of the pipelined gap (`--breakdown`): the same events through
/// raw with only `Nats-Msg-Id`, raw with the 13 headers of a publisher with
/// `ce_headers` on, the SDK's send path alone (events prepared before the
/// clock starts), the SDK's batch call, and the batch call with
/// `ce_headers` on; rates and ratios to raw.
async fn breakdown(
    options: &Options,
    client: &async_nats::Client,
    js: &jetstream::Context,
    publisher: &Publisher,
    ctx: &PublishContext,
) -> anyhow::Result<serde_json::Value> {
    const SIDES: [&str; 5] = [
        "raw",
        "raw_ce_headers",
        "sdk_send_only",
        "sdk",
        "sdk_ce_headers",
    ];
    let mut times = [Duration::ZERO; SIDES.len()];
    let with_headers = ce_publisher(client, publisher)?;
    let mut failures = 0;
    let events: Vec<UserCreated> = (0..options.pipelined).map(UserCreated::numbered).collect();
    for round in 0..options.rounds {
        for turn in 0..SIDES.len() {
            // Each round starts with the next side, so none always runs first.
            let side = (round + turn) % SIDES.len();
            let (elapsed, failed) = match SIDES[side] {
                "raw" | "raw_ce_headers" => {
                    let full = SIDES[side] == "raw_ce_headers";
                    let source = if full { &with_headers } else { publisher };
                    let messages = (0..events.len())
                        .map(|n| raw_message(source, ctx, n, full))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    raw_pipelined(js, messages, options.in_flight).await
                }
                "sdk_send_only" => {
                    let prepared = events
                        .iter()
                        .map(|event| publisher.prepare(ctx, event))
                        .collect::<Result<Vec<_>, _>>()?;
                    let started = Instant::now();
                    let results: Vec<_> = stream::iter(prepared)
                        .map(|prepared| publisher.send(prepared))
                        .buffered(options.in_flight)
                        .collect()
                        .await;
                    (
                        started.elapsed(),
                        results.iter().filter(|r| r.is_err()).count(),
                    )
                }
                _ => {
                    let publisher = if SIDES[side] == "sdk" {
                        publisher
                    } else {
                        &with_headers
                    };
                    let started = Instant::now();
                    let results = publisher.publish_batch(ctx, &events).await;
                    (
                        started.elapsed(),
                        results.iter().filter(|r| r.is_err()).count(),
                    )
                }
            };
            times[side] += elapsed;
            failures += failed;
            purge(js).await?;
        }
    }
    anyhow::ensure!(
        failures == 0,
        "{failures} publishes failed in the breakdown"
    );
    let total = (options.pipelined * options.rounds) as f64;
    let rates: Vec<f64> = times.iter().map(|t| total / t.as_secs_f64()).collect();
    let mut report = serde_json::Map::new();
    for (side, rate) in SIDES.iter().zip(&rates) {
        report.insert(
            (*side).to_string(),
            json!({ "rate_per_s": rate, "over_raw": rate / rates[0] }),
        );
    }
    Ok(serde_json::Value::Object(report))
}

/// A publisher like `publisher` that also sends the `ce-` headers.
fn ce_publisher(client: &async_nats::Client, publisher: &Publisher) -> anyhow::Result<Publisher> {
    Ok(Publisher::new(
        client.clone(),
        PublisherConfig {
            ce_headers: true,
            ..publisher.config().clone()
        },
    )?)
}

async fn purge(js: &jetstream::Context) -> anyhow::Result<()> {
    js.get_stream("AUTH_EVENTS")
        .await?
        .purge()
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(())
}

/// `--help`.
const USAGE: &str = "\
The Tidings benchmark: the SDK beside raw async-nats in the same run, JSON on stdout.
Starts its own nats-server (NATS_SERVER_BIN or PATH) unless TIDINGS_NATS_URL is set.

  scripts/bench [--sequential N] [--pipelined N] [--in-flight N] [--rounds N]
                [--raw-headers msg-id|full] [--breakdown] [--only publish|consume]
                [--rates R1,R2] [--e2e-secs S] [--consume N] [--consume-rounds N]
                [--sub-in-flight N] [--cluster 1|3] [--sync always|default]
      Publish (sequential and pipelined), consume and end-to-end figures on
      AUTH_EVENTS (defaults: 3000, 30000, 256, 3, msg-id; rates 1000,10000
      for 3 s; consume 30000 x 3; the subscriber's default in-flight).
      --cluster 3: a 3-node loopback cluster, AUTH_EVENTS R3 (production
      profile); 1 (default): one node, R1 (dev profile). --sync always:
      sync_interval always (default: nats-server's). --breakdown: pipelined
      runs that split the publish gap, and end-to-end runs of the mixed
      pairs (SDK publisher + raw consumer, raw publisher + SDK subscriber).

  scripts/bench --save ...      also keep the result, with its date, commit and
                                machine, in bench/results/
  scripts/bench --chart [DIR]   draw every result kept in DIR (bench/results)
                                as one SVG on stdout, the SDK beside raw
";

/// The options, or the error in them on stderr and exit status 2 (no
/// backtrace: the message says what to change).
fn usage_error<T>(parsed: anyhow::Result<T>) -> T {
    parsed.unwrap_or_else(|e| {
        eprintln!("bench: {e:#}\nRun with --help for the options.");
        std::process::exit(2)
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}\n{}\n\n{}", multi::USAGE, stages::USAGE);
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("--chart") {
        let dir = args.get(1).map_or(results::DIR, String::as_str);
        print!("{}", usage_error(results::chart(std::path::Path::new(dir))));
        return Ok(());
    }
    if args.iter().any(|a| a == stages::FLAG) {
        let events = usage_error(stages::parse(&args));
        println!("{}", serde_json::to_string_pretty(&stages::run(events)?)?);
        return Ok(());
    }
    if args.iter().any(|a| a == multi::FLAG) {
        let options = usage_error(multi::Options::parse(&args));
        let report = multi::run(&options).await?;
        return emit(report);
    }
    let options = usage_error(parse_options());
    let consume_options = usage_error(consume::Options::from_args());
    let servers = multi::Servers::launch(options.nodes, options.sync_always).await?;
    let urls = servers.urls();
    let client = multi::connect(&urls, "bench").await?;
    let server_version = client.server_info().version;
    let js = jetstream::ContextBuilder::new()
        .max_ack_inflight(options.in_flight)
        .backpressure_on_inflight(true)
        .build(client.clone());
    support::provision(&js, servers.profile()).await?;
    let publisher = Publisher::new(
        client.clone(),
        PublisherConfig {
            max_in_flight: options.in_flight,
            ..PublisherConfig::default()
        },
    )?;
    let ctx = PublishContext::new("org-bench")?;
    // `--raw-headers full`: the raw side carries the 13 headers of a
    // publisher with `ce_headers` on.
    let with_headers = ce_publisher(&client, &publisher)?;
    let raw_source = if options.raw_full_headers {
        &with_headers
    } else {
        &publisher
    };
    let payload_bytes = publisher
        .prepare(&ctx, &UserCreated::numbered(0))?
        .body()
        .len();
    // The end-to-end and consume figures, after the publish figures or alone.
    let run_consume = async |report: &mut serde_json::Value| {
        consume::run(&consume_options, &servers, &js, &publisher, &ctx, report).await
    };
    if consume_options.only == Some(consume::Only::Consume) {
        let mut report = json!({
            "benchmark": "consume",
            "server_version": server_version,
            "nodes": options.nodes,
            "sync_always": options.sync_always,
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "payload_bytes": payload_bytes,
        });
        run_consume(&mut report).await?;
        return emit(report);
    }

    // Warm up both paths (connections, JIT-free but caches and allocators).
    for n in 0..500 {
        let (subject, message) = raw_message(raw_source, &ctx, n, options.raw_full_headers)?;
        js.send_publish(subject, message).await?.await?;
        publisher.publish(&ctx, &UserCreated::numbered(n)).await?;
    }
    purge(&js).await?;

    let mut raw_seq = Vec::new();
    let mut sdk_seq = Vec::new();
    let mut raw_seq_time = Duration::ZERO;
    let mut sdk_seq_time = Duration::ZERO;
    let mut raw_pipe_time = Duration::ZERO;
    let mut sdk_pipe_time = Duration::ZERO;
    let mut failures = 0usize;
    // Rounds alternate which side goes first, so neither always runs warmer.
    for round in 0..options.rounds {
        for side in if round % 2 == 0 {
            ["raw", "sdk"]
        } else {
            ["sdk", "raw"]
        } {
            if side == "raw" {
                let messages = (0..options.sequential)
                    .map(|n| raw_message(raw_source, &ctx, n, options.raw_full_headers))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let started = Instant::now();
                for (subject, message) in messages {
                    let t = Instant::now();
                    js.send_publish(subject, message).await?.await?;
                    raw_seq.push(t.elapsed());
                }
                raw_seq_time += started.elapsed();
            } else {
                let started = Instant::now();
                for n in 0..options.sequential {
                    let t = Instant::now();
                    publisher.publish(&ctx, &UserCreated::numbered(n)).await?;
                    sdk_seq.push(t.elapsed());
                }
                sdk_seq_time += started.elapsed();
            }
            purge(&js).await?;

            let events: Vec<UserCreated> =
                (0..options.pipelined).map(UserCreated::numbered).collect();
            if side == "raw" {
                let messages = (0..events.len())
                    .map(|n| raw_message(raw_source, &ctx, n, options.raw_full_headers))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let (elapsed, failed) = raw_pipelined(&js, messages, options.in_flight).await;
                raw_pipe_time += elapsed;
                failures += failed;
            } else {
                let started = Instant::now();
                let results = publisher.publish_batch(&ctx, &events).await;
                sdk_pipe_time += started.elapsed();
                failures += results.iter().filter(|r| r.is_err()).count();
            }
            purge(&js).await?;
        }
    }
    anyhow::ensure!(
        failures == 0,
        "{failures} publishes failed during the benchmark"
    );

    let raw_sequential = latency_summary(raw_seq, raw_seq_time);
    let sdk_sequential = latency_summary(sdk_seq, sdk_seq_time);
    let total_pipelined = (options.pipelined * options.rounds) as f64;
    let raw_rate = total_pipelined / raw_pipe_time.as_secs_f64();
    let sdk_rate = total_pipelined / sdk_pipe_time.as_secs_f64();
    let p95_ratio = sdk_sequential["p95_us"].as_f64().unwrap_or(0.0)
        / raw_sequential["p95_us"]
            .as_f64()
            .unwrap_or(1.0)
            .max(f64::MIN_POSITIVE);
    let rate_ratio = sdk_rate / raw_rate;
    let mut report = json!({
        "benchmark": "publish",
        "server_version": server_version,
        "nodes": options.nodes,
        "sync_always": options.sync_always,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "payload_bytes": payload_bytes,
        "rounds": options.rounds,
        "raw_headers": if options.raw_full_headers { "full" } else { "msg-id" },
        "sequential": {
            "raw": raw_sequential,
            "sdk": sdk_sequential,
            "sdk_p95_over_raw": p95_ratio,
            "goal_max": SEQUENTIAL_P95_GOAL_MAX,
            "met": p95_ratio <= SEQUENTIAL_P95_GOAL_MAX,
        },
        "pipelined": {
            "n_per_round": options.pipelined,
            "in_flight": options.in_flight,
            "raw_rate_per_s": raw_rate,
            "sdk_rate_per_s": sdk_rate,
            "sdk_over_raw": rate_ratio,
            "goal_min": PIPELINED_GOAL_MIN,
            "met": rate_ratio >= PIPELINED_GOAL_MIN,
        },
    });
    if options.breakdown {
        report["pipelined_breakdown"] = breakdown(&options, &client, &js, &publisher, &ctx).await?;
    }
    if consume_options.only != Some(consume::Only::Publish) {
        report["benchmark"] = json!("publish, consume");
        run_consume(&mut report).await?;
    }
    emit(report)
}

/// Prints the report, and keeps it in `TIDINGS_BENCH_SAVE`'s directory
/// when set (`scripts/bench --save` sets it to `bench/results`).
fn emit(mut report: serde_json::Value) -> anyhow::Result<()> {
    if let Some(dir) = std::env::var_os("TIDINGS_BENCH_SAVE") {
        let path = results::save(&mut report, std::path::Path::new(&dir))?;
        eprintln!("bench: result kept in {}", path.display());
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
