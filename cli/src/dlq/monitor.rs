//! `tidings dlq monitor`: DLQ depth per consumer group and event type
//! against a threshold, alerts through tracing (stderr) and optionally a NATS
//! subject and an https webhook (bearer token from TIDINGS_WEBHOOK_TOKEN).
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{bail, Context};
use tidings::dlq::{
    DlqMonitor, MonitorConfig, NatsSink, TracingSink, WebhookConfig, WebhookSink, WEBHOOK_TOKEN_ENV,
};

use super::connect;
use crate::when::duration;

/// Arguments of `tidings dlq monitor`.
#[derive(clap::Args)]
pub struct Args {
    /// Alert when a group and event type hold more than this many dead letters.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub threshold: u64,
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
    /// Also publish each alert as JSON on this NATS subject (e.g. ops.alerts.dlq).
    #[arg(long, value_name = "SUBJECT")]
    pub nats_subject: Option<String>,
    /// Also POST each alert as JSON to this https:// URL (http:// only to a
    /// loopback address), with `Authorization: Bearer $TIDINGS_WEBHOOK_TOKEN`
    /// if that variable is set.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Trust only the CA certificates in this PEM file for the webhook's
    /// server (a private CA), instead of the system's roots.
    #[arg(long, env = "TIDINGS_WEBHOOK_CA", value_name = "FILE")]
    pub webhook_ca: Option<std::path::PathBuf>,
    /// Look once, print the depths, exit 1 if an alert was raised, else 0.
    #[arg(long)]
    pub once: bool,
}

/// A subject to publish on: tokens separated by dots, no wildcards.
fn check_subject(subject: &str) -> anyhow::Result<()> {
    let ok = !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && !token
                    .chars()
                    .any(|c| matches!(c, '*' | '>') || c.is_whitespace() || c.is_control())
        });
    if !ok {
        bail!(
            "--nats-subject {subject:?} is not a subject to publish on: use dot-separated tokens without spaces or wildcards (e.g. ops.alerts.dlq)"
        );
    }
    Ok(())
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
    if let Some(subject) = &args.nats_subject {
        check_subject(subject)?;
    }
    let webhook = match &args.webhook {
        Some(url) => {
            let mut config = WebhookConfig::from_env(url.as_str());
            if let Some(ca) = &args.webhook_ca {
                config = config.ca_file(ca);
            }
            Some(WebhookSink::with_config(config).map_err(|e| anyhow::anyhow!("--webhook: {e}"))?)
        }
        None => None,
    };
    // Alerts of the tracing sink (and the monitor's own warnings) on stderr,
    // without the client's connection chatter; RUST_LOG overrides.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))?;

    let conn = connect(server).await?;
    let mut sinks = vec!["tracing".to_string()];
    let mut monitor = DlqMonitor::new(
        conn.js.clone(),
        MonitorConfig {
            threshold: args.threshold,
            interval,
            repeat_after,
            group: args.group.clone(),
            ..MonitorConfig::default()
        },
    )
    .sink(TracingSink);
    if let Some(subject) = &args.nats_subject {
        monitor = monitor.sink(NatsSink::new(conn.client.clone(), subject.clone()));
        sinks.push(format!("nats subject {subject}"));
    }
    if let Some(webhook) = webhook {
        monitor = monitor.sink(webhook);
        let token = if std::env::var_os(WEBHOOK_TOKEN_ENV).is_some_and(|t| !t.is_empty()) {
            format!(" with the bearer token of {WEBHOOK_TOKEN_ENV}")
        } else {
            String::new()
        };
        sinks.push(format!(
            "webhook {}{token}",
            args.webhook.as_deref().unwrap_or("")
        ));
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
        sinks.join(", ")
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

    #[test]
    fn alert_subjects_are_plain() {
        assert!(check_subject("ops.alerts.dlq").is_ok());
        for bad in ["", "ops..dlq", "ops.*", "ops.>", "ops alerts"] {
            assert!(check_subject(bad).is_err(), "{bad}");
        }
    }
}
