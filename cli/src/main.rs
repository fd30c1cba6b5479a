//! `tidings`: the command line of the Tidings schema registry.
//!
//! Exit codes follow one rule across subcommands: 0 clean, 1 findings
//! (incompatible, lint errors, failed dead-letter operations, DLQ alerts,
//! invalid payloads or events),
//! 2 usage, I/O or connection error. Every `--help` ends with them.
// A command-line program talks to its user on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod alerts;
mod asyncapi;
mod check;
mod compat;
mod connect;
mod dlq;
mod docs;
mod event_view;
mod generate;
mod lag;
mod loaded;
mod new;
mod permissions;
mod publish;
mod registry_types;
mod replay;
mod stats;
mod streams;
mod table;
mod tail;
mod when;

/// Tidings: typed, schema-checked domain events on NATS JetStream.
#[derive(Parser)]
#[command(name = "tidings", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lint the registry, check every event type's compatibility and the lock.
    Check(check::Args),
    /// Compare two standalone schema files under a compatibility mode.
    Compat(compat::Args),
    /// Write the generated Rust of the registry to `DIR/events.rs` (the code the `events` crate's build.rs generates).
    Generate(generate::Args),
    /// Scaffold the next version of an event type (or its first version).
    New(new::Args),
    /// Operate the dead-letter queue: ls, show, redrive, purge, monitor.
    Dlq(Box<dlq::Args>),
    /// Least-privilege NATS users from the registry: services, tenant readers, the operator.
    Permissions(permissions::Args),
    /// Provision the streams of tidings.toml and the failures bucket (an operator's credential).
    Streams(Box<streams::Args>),
    /// Streams against their limits, each consumer group's lag and time to eviction, dead letters per group and type.
    Stats(Box<stats::Args>),
    /// Publish one JSON payload, validated against the registry's schema, as a typed publish would.
    Publish(Box<publish::Args>),
    /// Live events, decoded and checked against their schemas; read-only, leaves no consumer behind.
    Tail(Box<tail::Args>),
    /// Stored events of a type between two times, in stream order, to stdout.
    Replay(Box<replay::Args>),
    /// Alert before a consumer group loses events to max_age or max_bytes, or when it lags too far.
    Lag(Box<lag::Args>),
    /// The registry as an AsyncAPI 3.0 document: channels, messages, operations, NATS bindings.
    Asyncapi(asyncapi::Args),
    /// The registry as a static HTML catalog that works offline: types, versions, changes, streams, groups.
    Docs(docs::Args),
}

/// The exit-code rule, shown at the end of every command's `--help`.
const EXIT_CODES: &str = "Exit codes:\n  0  success: nothing to report\n  1  findings: lint errors or incompatible changes (check, compat, generate --check, asyncapi --check, docs --check), failed dead-letter operations (dlq), a DLQ or lag alert (dlq monitor --once, lag monitor --once), stream changes not applied or pending (streams), a payload that breaks its schema or an event the server refused (publish), events shown that were undecodable, invalid or unregistered (tail, replay)\n  2  usage, I/O or connection error, or a publish whose outcome is unknown (retry it with --id)";

/// The command line with the exit codes in every command's help.
fn command() -> clap::Command {
    with_exit_codes(Cli::command())
}

/// Adds [`EXIT_CODES`] to `command` and its subcommands, except where a
/// command's help already ends with its own (more specific) exit status.
fn with_exit_codes(command: clap::Command) -> clap::Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    let command = if command.get_after_help().is_some() {
        command
    } else {
        command.after_help(EXIT_CODES)
    };
    names.iter().fold(command, |command, name| {
        command.mut_subcommand(name, with_exit_codes)
    })
}

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let outcome = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Compat(args) => compat::run(args),
        Command::New(args) => new::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Dlq(args) => dlq::run(*args),
        Command::Permissions(args) => permissions::run(args),
        Command::Streams(args) => streams::run(*args),
        Command::Stats(args) => stats::run(*args),
        Command::Publish(args) => publish::run(*args),
        Command::Tail(args) => tail::run(*args),
        Command::Replay(args) => replay::run(*args),
        Command::Lag(args) => lag::run(*args),
        Command::Asyncapi(args) => asyncapi::run(args),
        Command::Docs(args) => docs::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
