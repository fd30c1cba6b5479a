//! `tidings publish`: one JSON payload from a file or stdin, validated
//! against the registry's schema of its type and version and published as
//! a typed publish would (same envelope, subject, headers, retries and
//! deduplication), through the SDK's one preparation path.
//!
//! Exit 0 stored (or already stored: `duplicate: true`), 1 the payload
//! breaks its schema or the server refused the event, 2 usage, I/O or
//! connection error, or an outcome that stays unknown (retry with `--id`).
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::ValueEnum;
use serde_json::json;
use tidings::publish::{PublishError, Published};
use tidings::{PublishContext, Publisher, PublisherConfig};
use uuid::Uuid;

/// Output formats of `tidings publish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `name: value` lines.
    Text,
    /// One JSON object.
    Json,
}

/// Arguments of `tidings publish`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub connect: crate::connect::ConnectArgs,
    #[command(flatten)]
    pub registry: crate::registry_types::RegistryArgs,
    /// The event type (e.g. auth.user.created).
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: String,
    /// The organization (tenant) the event belongs to.
    #[arg(long, value_name = "ORG")]
    pub org: String,
    /// The schema version of the payload (default: the latest).
    #[arg(long, value_name = "V")]
    pub version: Option<u32>,
    /// The entity key the payload must carry (its x-entity-key property): a
    /// guard against publishing on another entity's subject.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// The event id (a UUID): publishing again with the same id within the
    /// stream's duplicate window stores the event once (default: a new UUID v7).
    #[arg(long, value_name = "UUID")]
    pub id: Option<Uuid>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The JSON payload (the event's `data`), or `-` for stdin.
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,
}

/// Runs `tidings publish`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = args.connect.options()?;
    let registry = crate::registry_types::Registry::load(&args.registry.schemas)?;
    let event_type = registry.dynamic(&args.event_type, args.version)?;
    let ctx = PublishContext::new(&args.org).map_err(|e| anyhow::anyhow!("--org: {e}"))?;
    let text = read_payload(&args.file)?;
    let data: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    if let (Some(wanted), Some(field)) = (&args.key, event_type.key_field()) {
        let found = match data.get(field) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(v @ serde_json::Value::Number(_)) => Some(v.to_string()),
            _ => None,
        };
        if found.as_deref() != Some(wanted.as_str()) {
            bail!(
                "--key {wanted:?} but the payload's entity key {field:?} is {}: fix one of them",
                found.map_or_else(|| "missing".to_string(), |f| format!("{f:?}"))
            );
        }
    } else if let Some(wanted) = &args.key {
        bail!(
            "--key {wanted:?}: {} has no entity key (no x-entity-key); leave --key out",
            event_type.event_type()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let url = options.server_list().join(", ");
        let client = options.connect().await?;
        let publisher = Publisher::new(client, PublisherConfig::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let id = args.id.unwrap_or_else(Uuid::now_v7);
        let result = match tidings::Publish::encoder(&publisher).prepare_dynamic(
            &ctx,
            id,
            &event_type,
            &data,
        ) {
            Ok(prepared) => publisher.send(prepared).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(published) => {
                print(&published, args.format);
                Ok(ExitCode::SUCCESS)
            }
            Err(PublishError::InvalidPayload {
                event_type,
                version,
                violations,
            }) => {
                eprintln!(
                    "the payload is not a valid {event_type} v{version}; nothing was published:"
                );
                for v in &violations {
                    eprintln!("  {v}");
                }
                Ok(ExitCode::from(1))
            }
            Err(
                e @ (PublishError::Rejected { .. }
                | PublishError::ClientRefused { .. }
                | PublishError::TooLarge { .. }
                | PublishError::StreamMissing { .. }),
            ) => {
                eprintln!("error: on {url}: {e}");
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!(
                "on {url}; the outcome may be unknown: publish again with --id {id} to store it at most once"
            ))),
        }
    })
}

/// The payload text of FILE, or of stdin for `-`.
fn read_payload(file: &std::path::Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the payload from stdin")?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
    }
}

fn print(published: &Published, format: Format) {
    match format {
        Format::Text => {
            let rows = vec![
                vec!["event id".into(), published.event_id.to_string()],
                vec!["subject".into(), published.subject.clone()],
                vec!["stream".into(), published.stream.clone()],
                vec!["sequence".into(), published.sequence.to_string()],
                vec!["duplicate".into(), published.duplicate.to_string()],
            ];
            print!("{}", crate::table::aligned(&rows));
        }
        Format::Json => println!(
            "{:#}",
            json!({
                "event_id": published.event_id,
                "subject": published.subject,
                "stream": published.stream,
                "sequence": published.sequence,
                "duplicate": published.duplicate,
            })
        ),
    }
}
