//! `tidings replay`: the stored events of one or more types (and one
//! tenant) between two times, in stream order, to stdout, through
//! `tidings::replay` (an ephemeral consumer of its own; the consumer groups
//! are not touched). Each event is checked against its registered schema as
//! `tail` checks it. A range that starts before the oldest retained event is
//! reported as truncated on stderr. A progress line on stderr when it is a
//! terminal and stdout is not.
//!
//! Exit 0, 1 when an event was undecodable, invalid or unregistered, 2
//! usage, connection or server error.
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use tidings::replay::{Replay, ReplayError, ReplaySpec, ReplayStart};
use time::OffsetDateTime;

use crate::event_view::{self, Checker, Format, Shown, Status};
use crate::registry_types::Registry;

/// Arguments of `tidings replay`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub connect: crate::connect::ConnectArgs,
    #[command(flatten)]
    pub registry: crate::registry_types::RegistryArgs,
    /// The event type (repeat for several, all of one stream).
    #[arg(long = "type", value_name = "TYPE", required = true)]
    pub event_types: Vec<String>,
    /// Only this organization's events.
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// The first events: stored at or after this RFC 3339 time, or this
    /// long ago (2h).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// Stop before events stored at or after this time (RFC 3339, or a
    /// duration ago); default: the last event stored when the replay starts.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

/// Runs `tidings replay`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = args.connect.options()?;
    let registry = Registry::load(&args.registry.schemas)?;
    let mut streams: Vec<String> = args
        .event_types
        .iter()
        .map(|t| registry.stream_of(t))
        .collect::<anyhow::Result<_>>()?;
    streams.dedup();
    anyhow::ensure!(
        streams.len() == 1,
        "--type {} are stored in different streams ({}): replay one stream at a time",
        args.event_types.join(", --type "),
        streams.join(", ")
    );
    let now = OffsetDateTime::now_utc();
    let from = crate::when::instant("--from", &args.from, now)?;
    let until = args
        .until
        .as_deref()
        .map(|u| crate::when::instant("--until", u, now))
        .transpose()?;
    if until.is_some_and(|u| u <= from) {
        anyhow::bail!("--until must be later than --from");
    }
    let organization = args
        .org
        .as_deref()
        .map(tidings::OrganizationId::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--org: {e}"))?;
    let spec = ReplaySpec {
        stream: streams.remove(0),
        event_types: args.event_types.clone(),
        organization,
        start: ReplayStart::Time(from),
        until,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut checker = Checker::new(registry);
    runtime.block_on(async move {
        let url = options.server_list().join(", ");
        let client = options.connect().await?;
        let js = async_nats::jetstream::new(client);
        let stream = spec.stream.clone();
        let last = js
            .get_stream(&stream)
            .await
            .with_context(|| format!("stream {stream} on {url}"))?
            .info()
            .await
            .with_context(|| format!("stream {stream} on {url}"))?
            .state
            .last_sequence;
        let mut replay = Replay::start(&js, spec)
            .await
            .with_context(|| format!("on {url}"))?;
        if let Some(truncated) = replay.truncated() {
            eprintln!("warning: {truncated}");
        }
        let mut progress = Progress::new(last);
        let colour = std::io::stdout().is_terminal();
        let mut out = std::io::stdout().lock();
        let (mut shown, mut findings) = (0u64, 0u64);
        while let Some(item) = replay.next().await {
            let view = match item {
                Ok(event) => {
                    let status = checker.check(&event.envelope);
                    Shown {
                        stream: stream.clone(),
                        sequence: event.stream_sequence,
                        subject: event.subject,
                        stored_at: Some(event.stored_at),
                        envelope: Some(event.envelope),
                        raw: None,
                        status,
                    }
                }
                Err(
                    e @ (ReplayError::Decode { sequence, .. }
                    | ReplayError::Mismatch { sequence, .. }),
                ) => Shown {
                    stream: stream.clone(),
                    sequence,
                    subject: String::new(),
                    stored_at: None,
                    envelope: None,
                    raw: None,
                    status: Status::Undecodable(e.to_string()),
                },
                Err(e) => {
                    progress.clear();
                    return Err(anyhow::Error::new(e).context(format!("on {url}")));
                }
            };
            findings += u64::from(view.status.is_finding());
            let text = event_view::render(&view, args.format, colour);
            if out.write_all(text.as_bytes()).is_err() {
                break;
            }
            shown += 1;
            progress.show(view.sequence, shown);
        }
        let _ = out.flush();
        progress.clear();
        Ok(crate::event_view::summary(
            shown,
            &format!("replayed from {stream}"),
            findings,
        ))
    })
}

/// A one-line progress report on stderr, redrawn at most ten times a
/// second; only when stderr is a terminal and stdout is not (events on the
/// terminal are their own progress).
struct Progress {
    on: bool,
    last: u64,
    drawn: Option<Instant>,
}

impl Progress {
    fn new(last: u64) -> Self {
        Self {
            on: std::io::stderr().is_terminal() && !std::io::stdout().is_terminal(),
            last,
            drawn: None,
        }
    }

    fn show(&mut self, sequence: u64, shown: u64) {
        if !self.on
            || self
                .drawn
                .is_some_and(|d| d.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        let share = if self.last == 0 {
            100.0
        } else {
            sequence.min(self.last) as f64 * 100.0 / self.last as f64
        };
        eprint!(
            "\r\x1b[2K{shown} replayed, sequence {sequence} of {} ({share:.0}%)",
            self.last
        );
        self.drawn = Some(Instant::now());
    }

    fn clear(&mut self) {
        if self.on && self.drawn.take().is_some() {
            eprint!("\r\x1b[2K");
        }
    }
}
