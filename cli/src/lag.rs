//! `tidings lag monitor`: alerts before a consumer group loses events, by
//! the stream's `max_age` or (with `discard: old`) its `max_bytes`, or when
//! its lag passes a threshold; through the DLQ monitor's sinks (tracing on
//! stderr, a NATS subject, an https webhook). The figures are those of
//! `tidings stats`.
//!
//! Exit 0 (with `--once`: no alert), 1 an alert was raised (`--once`), 2
//! usage, connection or server error.
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use tidings::dlq::TracingSink;
use tidings::lag::{LagConfig, LagMonitor};

use crate::when::duration;

/// Arguments of `tidings lag`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub connect: crate::connect::ConnectArgs,
    #[command(subcommand)]
    pub command: LagCommand,
}

/// The subcommands of `tidings lag`.
#[derive(Subcommand)]
pub enum LagCommand {
    /// Watch every consumer group of the profile's streams; alert before
    /// its oldest unhandled event is evicted or when it lags too far.
    Monitor(MonitorArgs),
}

/// Arguments of `tidings lag monitor`.
#[derive(clap::Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub profile: crate::streams::ProfileArgs,
    /// Alert when a group has more unhandled events than this (0: off).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_lag: u64,
    /// Alert when a group's oldest unhandled event has used this
    /// percentage of max_age, or the bytes stored from it on this
    /// percentage of max_bytes (with discard old) (0: off).
    #[arg(long, default_value_t = 80, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub used_percent: u8,
    /// Also alert when that event is expected to be evicted within this
    /// long (by max_age exactly; by max_bytes at the ingest rate between two
    /// looks).
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub evict_within: String,
    /// How often to look (e.g. 500ms, 30s, 5m, 1h).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub interval: String,
    /// The shortest time between two alerts of one kind for one group while
    /// the condition holds.
    #[arg(long, default_value = "15m", value_name = "DURATION")]
    pub repeat_after: String,
    /// Only this consumer group.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    #[command(flatten)]
    pub sinks: crate::alerts::SinkArgs,
    /// Look once, print each alert, exit 1 if one was raised, else 0.
    #[arg(long)]
    pub once: bool,
}

/// Runs `tidings lag`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let server = args.connect.options()?;
    let LagCommand::Monitor(args) = args.command;
    let config = LagConfig {
        streams: tidings::streams::load_streams(&args.profile.schemas, &args.profile.profile)?
            .into_iter()
            .map(|s| s.name)
            .collect(),
        group: args.group.clone(),
        interval: duration("--interval", &args.interval)?,
        repeat_after: duration("--repeat-after", &args.repeat_after)?,
        max_lag: args.max_lag,
        used_percent: args.used_percent,
        evict_within: Some(duration("--evict-within", &args.evict_within)?),
    };
    if let Some(group) = &args.group {
        tidings::token::check_group(group).map_err(|e| anyhow::anyhow!("--group: {e}"))?;
    }
    args.sinks.check()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        crate::alerts::init_logs()?;
        let url = server.server_list().join(", ");
        let client = server.connect().await?;
        let js = async_nats::jetstream::new(client.clone());
        let sinks = args.sinks.build(&client)?;
        let (interval, streams) = (config.interval, config.streams.join(", "));
        let mut monitor = LagMonitor::new(js, config).sink(TracingSink);
        if let Some(nats) = sinks.nats {
            monitor = monitor.sink(nats);
        }
        if let Some(webhook) = sinks.webhook {
            monitor = monitor.sink(webhook);
        }
        if args.once {
            let alerts = monitor.check().await.with_context(|| format!("on {url}"))?;
            for alert in &alerts {
                println!("{}: {}", alert.kind.as_str(), alert.summary());
            }
            if alerts.is_empty() {
                eprintln!("no consumer group near eviction or above its lag threshold");
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "{} alert{} raised",
                alerts.len(),
                if alerts.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::from(1));
        }
        // Fail now, not silently in the background, when a stream cannot be read.
        monitor.stats().await.with_context(|| format!("on {url}"))?;
        eprintln!(
            "watching the consumer groups of {streams} on {url} every {interval:?} (alerts to {}); Ctrl-C stops",
            sinks.names.join(", ")
        );
        let task = monitor.spawn();
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        task.abort();
        eprintln!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}
