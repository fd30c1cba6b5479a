//! `tidings dlq monitor`: DLQ depth per consumer group and event type
//! against a threshold, alerts through tracing (stderr) and optionally a NATS
//! subject and an https webhook (bearer token from TIDINGS_WEBHOOK_TOKEN).
use std::process::ExitCode;

use anyhow::Context;
use tidings::dlq::{DlqMonitor, MonitorConfig, TracingSink};

use super::connect;
use crate::when::duration;

/// Arguments of `tidings dlq monitor`.
#[derive(clap::Args)]
pub struct Args {
    /// Alert when a group and event type hold more than this many dead letters.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub threshold: u64,
    /// Alert when all groups together hold more than this many dead
    /// letters (0: off).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub total_threshold: u64,
    /// How often to look (e.g. 500ms, 30s, 5m, 1h).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub interval: String,
    /// The shortest time between two alerts for one group and type while it
    /// stays above the threshold.
    #[arg(long, default_value = "15m", value_name = "DURATION")]
    pub repeat_after: String,
    /// Only this consumer group's dead letters.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    #[command(flatten)]
    pub sinks: crate::alerts::SinkArgs,
    /// Look once, print the depths, exit 1 if an alert was raised, else 0.
    #[arg(long)]
    pub once: bool,
}

/// Runs the monitor.
pub async fn run(
    server: &tidings::connect::ConnectOptions,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let interval = duration("--interval", &args.interval)?;
    let repeat_after = duration("--repeat-after", &args.repeat_after)?;
    if let Some(group) = &args.group {
        tidings::token::check_group(group).map_err(|e| anyhow::anyhow!("--group: {e}"))?;
    }
    args.sinks.check()?;
    crate::alerts::init_logs()?;

    let conn = connect(server).await?;
    let sinks = args.sinks.build(&conn.client)?;
    let mut monitor = DlqMonitor::new(
        conn.js.clone(),
        MonitorConfig {
            threshold: args.threshold,
            total_threshold: args.total_threshold,
            interval,
            repeat_after,
            group: args.group.clone(),
            ..MonitorConfig::default()
        },
    )
    .sink(TracingSink);
    if let Some(nats) = sinks.nats {
        monitor = monitor.sink(nats);
    }
    if let Some(webhook) = sinks.webhook {
        monitor = monitor.sink(webhook);
    }

    if args.once {
        let depths = monitor.depths().await.map_err(|e| conn.explain(e))?;
        if depths.is_empty() {
            println!("no dead letters");
        }
        for d in &depths {
            println!("{}  {}  {}", d.group, d.event_type, d.count);
        }
        let alerts = monitor.check().await.map_err(|e| conn.explain(e))?;
        if alerts.is_empty() {
            eprintln!("no group and event type above {}", args.threshold);
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{} alert{} raised (threshold {})",
            alerts.len(),
            if alerts.len() == 1 { "" } else { "s" },
            args.threshold
        );
        return Ok(ExitCode::from(1));
    }

    // Fail now, not silently in the background, when the queue cannot be read.
    monitor.depths().await.map_err(|e| conn.explain(e))?;
    eprintln!(
        "watching {} on {} every {:?} (threshold {}, repeat after {:?}; alerts to {}); Ctrl-C stops",
        tidings::dlq::DLQ_STREAM,
        conn.url,
        interval,
        args.threshold,
        repeat_after,
        sinks.names.join(", ")
    );
    let task = monitor.spawn();
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    task.abort();
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_take_a_unit() -> anyhow::Result<()> {
        assert_eq!(duration("--x", "500ms")?, Duration::from_millis(500));
        assert_eq!(duration("--x", "30s")?, Duration::from_secs(30));
        assert_eq!(duration("--x", "30")?, Duration::from_secs(30));
        assert_eq!(duration("--x", "15m")?, Duration::from_secs(900));
        assert_eq!(duration("--x", "2h")?, Duration::from_secs(7200));
        for bad in ["", "s", "1.5s", "10d", "-1s", "0s"] {
            assert!(duration("--x", bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
