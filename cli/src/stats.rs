//! `tidings stats`: per stream, what it holds against its limits; per
//! consumer group, how far behind it is (in events and as the age of its
//! oldest unhandled event), how long until `max_age` evicts that event and
//! what share of `max_bytes` the bytes from it on fill (`discard: old`
//! evicts it at 100%); the dead letters per group and type. Read-only.
//!
//! Exit 0 read, 2 usage, connection or server error.
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use serde_json::{json, Value};
use tidings::dlq::monitor::{Depth, DlqMonitor, MonitorConfig};
use tidings::stats::{self, StreamStats};

/// Output formats of `tidings stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people.
    Text,
    /// One JSON object: `streams` (each with its `groups`) and `dead_letters`.
    Json,
}

/// Arguments of `tidings stats`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub connect: crate::connect::ConnectArgs,
    #[command(flatten)]
    pub profile: crate::streams::ProfileArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Runs `tidings stats`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let server = args.connect.options()?;
    let specs = tidings::streams::load_streams(&args.profile.schemas, &args.profile.profile)?;
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let url = server.server_list().join(", ");
        let client = server.connect().await?;
        let js = async_nats::jetstream::new(client);
        let now = time::OffsetDateTime::now_utc();
        let streams = stats::collect(&js, &names, now)
            .await
            .with_context(|| format!("on {url}"))?;
        let depths = if names.iter().any(|n| n == tidings::dlq::DLQ_STREAM) {
            DlqMonitor::new(js, MonitorConfig::default())
                .depths()
                .await
                .with_context(|| format!("dead letters on {url}"))?
        } else {
            Vec::new()
        };
        match args.format {
            Format::Text => print!("{}", text(&streams, &depths)),
            Format::Json => println!("{:#}", to_json(&streams, &depths)),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The JSON form (durations in seconds, shares from 0 to 1).
fn to_json(streams: &[StreamStats], depths: &[Depth]) -> Value {
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    json!({
        "streams": streams.iter().map(|s| json!({
            "stream": s.stream,
            "messages": s.messages,
            "bytes": s.bytes,
            "max_bytes": s.max_bytes,
            "bytes_used": s.bytes_used(),
            "max_age_seconds": secs(s.max_age),
            "oldest_age_seconds": secs(s.oldest_age),
            "age_used": s.age_used(),
            "groups": s.groups.iter().map(|g| json!({
                "group": g.group,
                "lag": g.lag(),
                "pending": g.pending,
                "ack_pending": g.ack_pending,
                "redelivered": g.redelivered,
                "oldest_unhandled": g.oldest_unhandled.as_ref().map(|u| json!({
                    "sequence": u.sequence,
                    "age_seconds": u.age.as_secs_f64(),
                    "evicted_in_seconds": secs(u.evicted_in),
                    "bytes_from": u.bytes_from,
                    "byte_headroom": u.byte_headroom,
                    "bytes_used": u.bytes_used(),
                })),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "dead_letters": depths.iter().map(|d| json!({
            "group": d.group,
            "event_type": d.event_type,
            "count": d.count,
        })).collect::<Vec<_>>(),
    })
}

/// Three tables: streams, groups, dead letters.
fn text(streams: &[StreamStats], depths: &[Depth]) -> String {
    let dash = || "-".to_string();
    let mut rows = vec![row(&[
        "STREAM",
        "EVENTS",
        "BYTES",
        "OF MAX",
        "OLDEST",
        "OF MAX AGE",
    ])];
    for s in streams {
        rows.push(vec![
            s.stream.clone(),
            s.messages.to_string(),
            bytes(s.bytes),
            s.bytes_used().map_or_else(dash, percent),
            s.oldest_age.map_or_else(dash, duration),
            s.age_used().map_or_else(dash, percent),
        ]);
    }
    let mut out = crate::table::aligned(&rows);
    let mut rows = vec![row(&[
        "GROUP",
        "STREAM",
        "LAG",
        "PENDING",
        "UNACKED",
        "REDELIVERED",
        "OLDEST UNHANDLED",
        "EVICTED IN",
        "BACKLOG OF MAX BYTES",
    ])];
    for s in streams {
        for g in &s.groups {
            let oldest = g.oldest_unhandled.as_ref();
            rows.push(vec![
                g.group.clone(),
                s.stream.clone(),
                g.lag().to_string(),
                g.pending.to_string(),
                g.ack_pending.to_string(),
                g.redelivered.to_string(),
                oldest.map_or_else(dash, |u| duration(u.age)),
                oldest
                    .and_then(|u| u.evicted_in)
                    .map_or_else(dash, duration),
                oldest
                    .and_then(|u| u.bytes_used())
                    .map_or_else(dash, percent),
            ]);
        }
    }
    out.push('\n');
    if rows.len() == 1 {
        out.push_str("no consumer groups\n");
    } else {
        out.push_str(&crate::table::aligned(&rows));
    }
    if !depths.is_empty() {
        let mut rows = vec![row(&["DLQ GROUP", "TYPE", "DEAD LETTERS"])];
        rows.extend(
            depths
                .iter()
                .map(|d| vec![d.group.clone(), d.event_type.clone(), d.count.to_string()]),
        );
        out.push('\n');
        out.push_str(&crate::table::aligned(&rows));
    }
    out
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Bytes in binary units: `512 B`, `3.4 KiB`, `1.0 GiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration in its two largest units: `6d 23h`, `4m 3s`, `12s`.
fn duration(d: Duration) -> String {
    let total = d.as_secs();
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total / 3_600 % 24,
        total / 60 % 60,
        total % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_bytes_read_as_people_write_them() {
        assert_eq!(duration(Duration::from_millis(900)), "0s");
        assert_eq!(duration(Duration::from_secs(243)), "4m 3s");
        assert_eq!(duration(Duration::from_secs(7 * 86_400 - 60)), "6d 23h");
        assert_eq!(duration(Duration::from_secs(3_660)), "1h 1m");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3_482), "3.4 KiB");
        assert_eq!(bytes(1 << 30), "1.0 GiB");
    }
}
