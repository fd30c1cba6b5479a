//! What the monitors (`tidings dlq monitor`, `tidings lag monitor`) share:
//! where alerts go besides tracing (a NATS subject, an https webhook), the
//! log set-up on stderr, and waiting for Ctrl-C.
use std::io::IsTerminal;

use anyhow::bail;
use tidings::dlq::{NatsSink, WebhookConfig, WebhookSink, WEBHOOK_TOKEN_ENV};

/// The alert destinations of a monitor (flattened into each).
#[derive(clap::Args, Debug, Clone)]
pub struct SinkArgs {
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
}

/// The sinks of [`SinkArgs`], built, and their names for the start line.
pub struct Sinks {
    /// The NATS subject's sink.
    pub nats: Option<NatsSink>,
    /// The webhook's sink.
    pub webhook: Option<WebhookSink>,
    /// `tracing`, then each configured sink, for people.
    pub names: Vec<String>,
}

impl SinkArgs {
    /// Checks the flags (before connecting).
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(subject) = &self.nats_subject {
            check_subject(subject)?;
        }
        Ok(())
    }

    /// The sinks, on `client` for the NATS one.
    pub fn build(&self, client: &async_nats::Client) -> anyhow::Result<Sinks> {
        let mut names = vec!["tracing".to_string()];
        let nats = self.nats_subject.as_ref().map(|subject| {
            names.push(format!("nats subject {subject}"));
            NatsSink::new(client.clone(), subject.clone())
        });
        let webhook = match &self.webhook {
            Some(url) => {
                let mut config = WebhookConfig::from_env(url.as_str());
                if let Some(ca) = &self.webhook_ca {
                    config = config.ca_file(ca);
                }
                let sink = WebhookSink::with_config(config)
                    .map_err(|e| anyhow::anyhow!("--webhook: {e}"))?;
                let token = if std::env::var_os(WEBHOOK_TOKEN_ENV).is_some_and(|t| !t.is_empty()) {
                    format!(" with the bearer token of {WEBHOOK_TOKEN_ENV}")
                } else {
                    String::new()
                };
                names.push(format!("webhook {url}{token}"));
                Some(sink)
            }
            None => None,
        };
        Ok(Sinks {
            nats,
            webhook,
            names,
        })
    }
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

/// Alerts of the tracing sink (and the monitor's own warnings) on stderr,
/// without the client's connection chatter; RUST_LOG overrides.
pub fn init_logs() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_subjects_are_plain() {
        assert!(check_subject("ops.alerts.dlq").is_ok());
        for bad in ["", "ops..dlq", "ops.*", "ops.>", "ops alerts"] {
            assert!(check_subject(bad).is_err(), "{bad}");
        }
    }
}
