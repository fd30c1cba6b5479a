//! The per-event work of the SDK's own stages, timed on one thread with no
//! server (`--stages`): what a publish does before sending (validation,
//! encoding) and what a subscriber does with each message before and
//! around its handler (the envelope, the schema check, the Rust type).
//! Stable where the network figures scatter: the machine's other work
//! moves them little, so a change to one stage shows in its figure.
#![allow(clippy::print_stderr)]

use std::hint::black_box;
use std::time::Instant;

use serde_json::json;
use tidings::envelope::Envelope;
use tidings::publish::Publish;
use tidings::testing::RecordingPublisher;
use tidings::upcast::ReadAnyVersion;
use tidings::{DomainEvent, PublishContext};
use uuid::Uuid;

use super::support::UserCreated;

/// The flag that selects this benchmark.
pub const FLAG: &str = "--stages";

/// Its part of `--help`.
pub const USAGE: &str = "\
  scripts/bench --stages [--events N]
      The SDK's per-event stages timed on one thread, no server (default
      200000 events each): prepare (schema check and envelope), decode
      (the envelope and its header cross-check), validate (the payload
      against its schema), into the Rust type, and read_any_version (the
      two together, what a handler's event goes through). Nanoseconds per
      event, the median of 5 rounds.";

/// Rounds per stage; the median is reported.
const ROUNDS: usize = 5;

/// Parses `--events N`.
pub fn parse(args: &[String]) -> anyhow::Result<usize> {
    let mut events = 200_000;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            FLAG => {}
            "--events" => {
                events = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--events needs a number"))?
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--events: {e}"))?;
                anyhow::ensure!(events > 0, "--events must be at least 1");
            }
            other => anyhow::bail!("unknown option {other:?} for --stages"),
        }
    }
    Ok(events)
}

/// The median of `ROUNDS` timings of `n` calls of `stage`, in ns per call.
fn time(n: usize, mut stage: impl FnMut(usize) -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for i in 0..n {
            stage(i)?;
        }
        rounds.push(started.elapsed().as_nanos() as f64 / n as f64);
    }
    rounds.sort_by(f64::total_cmp);
    Ok(rounds[ROUNDS / 2])
}

/// Runs every stage `n` times and reports them.
pub fn run(n: usize) -> anyhow::Result<serde_json::Value> {
    let publisher = RecordingPublisher::new();
    let encoder = publisher.encoder();
    let ctx = PublishContext::new("org-bench")?;
    let event = UserCreated::numbered(1);
    let prepared = encoder.prepare_with_id(&ctx, Uuid::now_v7(), &event)?;
    let (headers, body) = (prepared.headers().clone(), prepared.body().clone());
    let envelope = Envelope::decode_message(Some(&headers), &body)?;
    let data = envelope.data.clone();
    eprintln!("bench: stages, {n} events each, {ROUNDS} rounds");

    let prepare = time(n, |_| {
        black_box(encoder.prepare_with_id(&ctx, Uuid::now_v7(), black_box(&event))?);
        Ok(())
    })?;
    let decode = time(n, |_| {
        black_box(Envelope::decode_message(
            Some(black_box(&headers)),
            black_box(&body),
        )?);
        Ok(())
    })?;
    let validate = time(n, |_| {
        black_box(tidings::schema::violations::<UserCreated>(black_box(
            &data,
        ))?);
        Ok(())
    })?;
    let deserialize = time(n, |_| {
        black_box(serde_json::from_value::<UserCreated>(black_box(
            data.clone(),
        ))?);
        Ok(())
    })?;
    let clone = time(n, |_| {
        black_box(black_box(&data).clone());
        Ok(())
    })?;
    let read = time(n, |_| {
        black_box(UserCreated::read_any_version(
            UserCreated::SCHEMA_VERSION,
            black_box(data.clone()),
        )?);
        Ok(())
    })?;
    Ok(json!({
        "benchmark": "stages",
        "events_per_round": n,
        "rounds": ROUNDS,
        "event": UserCreated::EVENT_TYPE,
        "body_bytes": body.len(),
        "ns_per_event_median": {
            "publish_prepare": prepare,
            "consume_decode_envelope": decode,
            "consume_validate_payload": validate,
            "consume_into_rust_type": (deserialize - clone).max(0.0),
            "consume_read_any_version": (read - clone).max(0.0),
        },
        "note": "into_rust_type and read_any_version exclude the clone of the payload each call needs here",
    }))
}
