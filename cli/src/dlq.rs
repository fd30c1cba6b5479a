//! `tidings dlq`: list, show, redrive and purge dead letters in
//! `DLQ_EVENTS`, and watch its depth.
//!
//! Exit 0 done, 1 some items failed (redrive, purge) or an alert was raised
//! (`monitor --once`), 2 usage, connection or server error.
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use tidings::connect::ConnectOptions;
use tidings::dlq::{DlqError, DlqFilter, DLQ_STREAM};
use tidings::OrganizationId;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod act;
mod monitor;
mod render;

/// Output formats of `ls` and `show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns (`ls`) or labelled sections (`show`) for people.
    Text,
    /// JSON: an array of dead letters (`ls`) or one object (`show`).
    Json,
}

/// Arguments of `tidings dlq`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub connect: crate::connect::ConnectArgs,
    #[command(subcommand)]
    pub command: DlqCommand,
}

/// The `tidings dlq` subcommands.
#[derive(Subcommand)]
pub enum DlqCommand {
    /// List dead letters, oldest first: one row each.
    Ls(LsArgs),
    /// Show one dead letter: its failure record and the decoded event.
    Show(ShowArgs),
    /// Republish dead letters to their original subjects (same event id, a
    /// redrive message id, a redrive count) and remove each after its
    /// PubAck; every matching group gets them, or only the failing one with
    /// --group-only.
    Redrive(ActArgs),
    /// Delete dead letters for good.
    Purge(ActArgs),
    /// Watch DLQ depth per consumer group and event type; alert above a
    /// threshold (tracing on stderr, optionally a NATS subject and a webhook).
    Monitor(monitor::Args),
}

/// Which dead letters: by group, type, tenant and time stored.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only this consumer group's.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Only this event type (service.entity.action).
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    pub event_type: Option<String>,
    /// Only this organization's (tenant id).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// Only those stored at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only those stored before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

impl FilterArgs {
    fn is_set(&self) -> bool {
        self.group.is_some()
            || self.event_type.is_some()
            || self.org.is_some()
            || self.from.is_some()
            || self.until.is_some()
    }

    /// The library filter, every value checked.
    fn to_filter(&self) -> anyhow::Result<DlqFilter> {
        if let Some(group) = &self.group {
            tidings::token::check_group(group).map_err(|e| anyhow::anyhow!("--group: {e}"))?;
        }
        let organization = match &self.org {
            Some(org) => {
                Some(OrganizationId::new(org.as_str()).map_err(|e| anyhow::anyhow!("--org: {e}"))?)
            }
            None => None,
        };
        let filter = DlqFilter {
            group: self.group.clone(),
            event_type: self.event_type.clone(),
            organization,
            from: self
                .from
                .as_deref()
                .map(|t| time_arg("--from", t))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| time_arg("--until", t))
                .transpose()?,
        };
        if let (Some(from), Some(until)) = (filter.from, filter.until) {
            if from >= until {
                bail!("--from must be earlier than --until (the range is [from, until))");
            }
        }
        filter.subject().map_err(|e| match e {
            DlqError::Filter(detail) if self.event_type.is_some() => {
                anyhow::anyhow!("--type: {detail} (for example --type auth.user.created)")
            }
            other => anyhow::Error::new(other),
        })?;
        Ok(filter)
    }
}

fn time_arg(flag: &str, value: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|e| {
        anyhow::anyhow!(
            "{flag} {value:?} is not an RFC 3339 time ({e}); write it like 2025-12-11T09:30:00Z"
        )
    })
}

/// Arguments of `tidings dlq ls`.
#[derive(clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most this many (the oldest).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Arguments of `tidings dlq show`.
#[derive(clap::Args)]
pub struct ShowArgs {
    /// The dead letter's sequence in DLQ_EVENTS (the first column of `ls`).
    #[arg(value_name = "SEQ")]
    pub sequence: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Arguments of `tidings dlq redrive` and `purge`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["sequences", "all"])))]
pub struct ActArgs {
    /// Dead letters by their sequence in DLQ_EVENTS.
    #[arg(value_name = "SEQ")]
    pub sequences: Vec<u64>,
    /// Every dead letter the filters select (all of them without filters).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// redrive only: only the consumer group that gave each dead letter up
    /// handles it again; subscribers of other groups ack it unhandled.
    #[arg(long)]
    pub group_only: bool,
}

/// Runs `tidings dlq`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let server = args.connect.options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            DlqCommand::Ls(a) => ls(&server, a).await,
            DlqCommand::Show(a) => show(&server, a).await,
            DlqCommand::Redrive(a) => act::run(&server, act::Action::Redrive, a).await,
            DlqCommand::Purge(a) => act::run(&server, act::Action::Purge, a).await,
            DlqCommand::Monitor(a) => monitor::run(&server, a).await,
        }
    })
}

/// A connected client and its JetStream context.
pub(crate) struct Connection {
    pub(crate) client: async_nats::Client,
    pub(crate) js: async_nats::jetstream::Context,
    pub(crate) url: String,
}

/// Connects with the shared options; the error names the servers, the
/// credential kind and the cause.
pub(crate) async fn connect(options: &ConnectOptions) -> anyhow::Result<Connection> {
    let client = options.connect().await?;
    let js = async_nats::jetstream::new(client.clone());
    Ok(Connection {
        client,
        js,
        url: options.server_list().join(", "),
    })
}

impl Connection {
    /// A library error with where it happened and, for a missing stream, what
    /// to do.
    pub(crate) fn explain(&self, e: DlqError) -> anyhow::Error {
        if matches!(e, DlqError::StreamMissing) {
            anyhow::anyhow!(
                "{DLQ_STREAM} does not exist on {}: provision the streams first (`tidings streams apply --profile <profile>` with an operator credential)",
                self.url
            )
        } else if let DlqError::NotFound(seq) = e {
            anyhow::anyhow!(
                "{DLQ_STREAM} on {} has no dead letter #{seq}; `tidings dlq ls` lists the sequences",
                self.url
            )
        } else {
            anyhow::Error::new(e).context(format!("on {}", self.url))
        }
    }
}

async fn ls(server: &ConnectOptions, args: LsArgs) -> anyhow::Result<ExitCode> {
    let filter = args.filter.to_filter()?;
    if args.limit == Some(0) {
        bail!("--limit 0 selects nothing; give a positive number or leave it out");
    }
    let conn = connect(server).await?;
    // One more than asked, to say whether there are more.
    let mut dead = tidings::dlq::ops::list(&conn.js, &filter, args.limit.map(|l| l + 1))
        .await
        .map_err(|e| conn.explain(e))?;
    let more = args.limit.is_some_and(|l| dead.len() > l);
    if let Some(limit) = args.limit {
        dead.truncate(limit);
    }
    match args.format {
        Format::Text => print!("{}", render::ls_text(&dead)),
        Format::Json => println!("{}", render::to_pretty(&render::ls_json(&dead))),
    }
    if more {
        eprintln!(
            "more dead letters match: showing the oldest {}; raise --limit to see more",
            dead.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(server: &ConnectOptions, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let conn = connect(server).await?;
    let dead = tidings::dlq::ops::get(&conn.js, args.sequence)
        .await
        .map_err(|e| conn.explain(e))?;
    match args.format {
        Format::Text => print!("{}", render::show_text(&dead)),
        Format::Json => println!("{}", render::to_pretty(&render::show_json(&dead))),
    }
    Ok(ExitCode::SUCCESS)
}
