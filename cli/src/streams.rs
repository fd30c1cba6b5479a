//! `tidings streams`: provision the streams of `tidings.toml` for a profile,
//! and the dead-letter mover's failures bucket beside DLQ_EVENTS (services
//! may not create either; run it with an operator credential).
//!
//! Exit 0 done (or nothing to do), 1 changes that would delete stored
//! events were not applied (`apply`) or the server differs (`plan`), 2
//! usage, connection or server error.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use tidings::streams::{self, Action, ApplyOptions, ProvisionError};

/// Arguments of `tidings streams`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub connect: crate::connect::ConnectArgs,
    #[command(subcommand)]
    pub command: StreamsCommand,
}

/// The `tidings streams` subcommands.
#[derive(Subcommand)]
pub enum StreamsCommand {
    /// Compare each configured stream with the server; change nothing.
    Plan(ProfileArgs),
    /// Create missing streams, update drifted ones, and create the
    /// tidings_failures bucket beside DLQ_EVENTS if missing.
    Apply(ApplyArgs),
}

/// Which registry and profile.
#[derive(clap::Args)]
pub struct ProfileArgs {
    /// The registry directory (holding tidings.toml).
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    pub schemas: PathBuf,
    /// The profile of tidings.toml (e.g. dev, production).
    #[arg(long, value_name = "PROFILE")]
    pub profile: String,
}

/// Arguments of `tidings streams apply`.
#[derive(clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Also apply changes that can delete stored events (a shorter max_age,
    /// a smaller max_bytes, a removed subject, fewer replicas, retention
    /// from limits to interest). Changes JetStream cannot make in place
    /// (storage, retention to or from workqueue) stay refused.
    #[arg(long)]
    pub allow_data_loss: bool,
}

/// Runs `tidings streams`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let server = args.connect.options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (profile, options) = match &args.command {
            StreamsCommand::Plan(p) => (p, None),
            StreamsCommand::Apply(a) => (
                &a.profile,
                Some(ApplyOptions {
                    allow_data_loss: a.allow_data_loss,
                }),
            ),
        };
        let specs = streams::load_streams(&profile.schemas, &profile.profile)?;
        let client = server.connect().await?;
        let js = async_nats::jetstream::new(client);
        let url = server.server_list().join(", ");
        let plans = match options {
            None => streams::plan(&js, &specs).await,
            Some(options) => streams::apply(&js, &specs, options).await,
        };
        let plans = match plans {
            Ok(plans) => plans,
            Err(ProvisionError::Blocked(blocked)) => {
                for plan in &blocked {
                    println!("{plan} (not applied)");
                }
                let drifts = || {
                    blocked.iter().flat_map(|p| match &p.action {
                        Action::Blocked(d) => d.as_slice(),
                        _ => &[],
                    })
                };
                if drifts().any(|d| d.updatable && d.loses_data)
                    && !options.is_some_and(|o| o.allow_data_loss)
                {
                    eprintln!(
                        "error: not applied on {url}, to keep stored events; re-run with --allow-data-loss if that is intended"
                    );
                }
                if drifts().any(|d| !d.updatable) {
                    eprintln!(
                        "error: not applied on {url}: JetStream cannot change {} of an existing stream, with or without --allow-data-loss; move its events to a new stream, or delete it and apply again",
                        drifts().filter(|d| !d.updatable).map(|d| d.field).collect::<Vec<_>>().join(" or ")
                    );
                }
                return Ok(ExitCode::from(1));
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("on {url}"))),
        };
        for plan in &plans {
            println!("{plan}");
        }
        let pending = plans.iter().any(|p| p.action != Action::Unchanged);
        if options.is_some() {
            if specs.iter().any(|s| s.name == tidings::dlq::DLQ_STREAM) {
                println!("{}: present", tidings::dlq::FAILURES_BUCKET);
            }
            Ok(ExitCode::SUCCESS)
        } else if pending {
            Ok(ExitCode::from(1))
        } else {
            Ok(ExitCode::SUCCESS)
        }
    })
}
