//! `tidings tail`: live events of the registry's streams, decoded and
//! checked against their schemas, as they are stored (and, with
//! `--since`, from a time or a duration ago). Read-only: each stream is
//! read through an ephemeral consumer of its own (no acks, in memory),
//! deleted when tail stops; the server removes it after a minute of
//! inactivity should tail be killed.
//!
//! Stops after `--limit` events, on Ctrl-C or SIGTERM, and, when stdin is
//! not a terminal, when stdin closes. Exit 0, 1 when an event shown was
//! undecodable, invalid or unregistered, 2 usage or connection error.
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use time::OffsetDateTime;

use crate::event_view::{self, Checker, Format};
use crate::registry_types::Registry;

/// How long the server keeps a consumer tail left behind (killed tail).
const INACTIVE_THRESHOLD: Duration = Duration::from_secs(60);

/// Arguments of `tidings tail`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub connect: crate::connect::ConnectArgs,
    #[command(flatten)]
    pub registry: crate::registry_types::RegistryArgs,
    /// Only this event type (e.g. auth.user.created); default: every type
    /// of every stream of the registry.
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Only this organization's events.
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// Also show events stored since then: an RFC 3339 time or a duration
    /// ago (10m, 2h); default: only events stored from now on.
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,
}

/// One stream's tail consumer.
struct Tailed {
    stream: jetstream::stream::Stream,
    name: String,
}

/// Runs `tidings tail`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = args.connect.options()?;
    let registry = Registry::load(&args.registry.schemas)?;
    let streams: Vec<String> = match &args.event_type {
        Some(t) => vec![registry.stream_of(t)?],
        None => {
            let mut all: Vec<String> = registry.streams().into_values().collect();
            all.sort();
            all.dedup();
            all
        }
    };
    let organization = args
        .org
        .as_deref()
        .map(tidings::OrganizationId::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--org: {e}"))?;
    let filter = match (&args.event_type, &organization) {
        (Some(t), org) => Some(tidings::subject::filter_for_type(t, org.as_ref())),
        (None, Some(org)) => Some(format!("*.*.*.{org}.>")),
        (None, None) => None,
    };
    let deliver = match &args.since {
        Some(text) => consumer::DeliverPolicy::ByStartTime {
            start_time: crate::when::instant("--since", text, OffsetDateTime::now_utc())?,
        },
        None => consumer::DeliverPolicy::New,
    };
    if args.limit == Some(0) {
        anyhow::bail!("--limit 0 shows nothing; give a positive number or leave it out");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut checker = Checker::new(registry);
    runtime.block_on(async move {
        let url = options.server_list().join(", ");
        let client = options.connect().await?;
        let js = jetstream::new(client);
        let mut tailed = Vec::new();
        let mut feeds = Vec::new();
        let started = start(&js, &streams, filter.as_deref(), deliver, &mut tailed, &mut feeds).await;
        let outcome = match started {
            Ok(()) => {
                eprintln!(
                    "tailing {} on {url}{}; Ctrl-C stops",
                    tailed.iter().map(|t| t.stream.cached_info().config.name.as_str()).collect::<Vec<_>>().join(", "),
                    filter.as_deref().map(|f| format!(" ({f})")).unwrap_or_default(),
                );
                follow(futures_util::stream::select_all(feeds), &mut checker, &args).await
            }
            Err(e) => Err(e),
        };
        // Whatever happened, leave no consumer behind.
        for t in &tailed {
            if let Err(e) = t.stream.delete_consumer(&t.name).await {
                eprintln!(
                    "warning: consumer {} of {} not deleted ({e}); the server removes it after {:?} idle",
                    t.name,
                    t.stream.cached_info().config.name,
                    INACTIVE_THRESHOLD
                );
            }
        }
        outcome.with_context(|| format!("on {url}"))
    })
}

type Feed = futures_util::stream::BoxStream<'static, (String, Result<jetstream::Message, String>)>;

/// Creates one consumer per stream (skipping, with a warning, streams the
/// server does not have).
async fn start(
    js: &jetstream::Context,
    streams: &[String],
    filter: Option<&str>,
    deliver: consumer::DeliverPolicy,
    tailed: &mut Vec<Tailed>,
    feeds: &mut Vec<Feed>,
) -> anyhow::Result<()> {
    for name in streams {
        let stream = match js.get_stream(name).await {
            Ok(stream) => stream,
            Err(e) if tidings::streams::is_not_found(&e) => {
                eprintln!("warning: stream {name} does not exist; not tailed");
                continue;
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("stream {name}"))),
        };
        let consumer_name = format!("tidings_tail_{}", uuid::Uuid::now_v7().simple());
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                name: Some(consumer_name.clone()),
                description: Some("tidings tail (read-only, deleted on exit)".into()),
                deliver_policy: deliver,
                ack_policy: consumer::AckPolicy::None,
                filter_subject: filter.unwrap_or_default().to_string(),
                inactive_threshold: INACTIVE_THRESHOLD,
                memory_storage: true,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create a consumer on {name}"))?;
        tailed.push(Tailed {
            stream,
            name: consumer_name,
        });
        let messages = consumer
            .messages()
            .await
            .with_context(|| format!("cannot read {name}"))?;
        let stream_name = name.clone();
        feeds.push(
            messages
                .map(move |m| (stream_name.clone(), m.map_err(|e| e.to_string())))
                .boxed(),
        );
    }
    anyhow::ensure!(
        !tailed.is_empty(),
        "none of the streams {} exists; provision them with `tidings streams apply --profile <profile>`",
        streams.join(", ")
    );
    Ok(())
}

/// Prints events until the limit, a signal, stdin's end or stdout's.
async fn follow(
    mut feed: futures_util::stream::SelectAll<Feed>,
    checker: &mut Checker,
    args: &Args,
) -> anyhow::Result<ExitCode> {
    let colour = std::io::stdout().is_terminal();
    let stdin_closed = stdin_closed();
    tokio::pin!(stdin_closed);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot wait for SIGTERM")?;
    let mut shown = 0u64;
    let mut findings = 0u64;
    let mut out = std::io::stdout().lock();
    loop {
        let (stream, message) = tokio::select! {
            next = feed.next() => match next {
                Some(item) => item,
                None => anyhow::bail!("the server ended the tail's consumers"),
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            () = &mut stdin_closed => break,
        };
        let message = message.map_err(|e| anyhow::anyhow!("reading {stream}: {e}"))?;
        let (sequence, stored_at) = match message.info() {
            Ok(info) => (info.stream_sequence, Some(info.published)),
            Err(_) => (0, None),
        };
        let view = checker.shown(
            &stream,
            sequence,
            &message.subject,
            stored_at,
            message.headers.as_ref(),
            &message.payload,
        );
        findings += u64::from(view.status.is_finding());
        let text = event_view::render(&view, args.format, colour);
        // A closed stdout (`tidings tail | head`) ends the tail.
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
        shown += 1;
        if args.limit.is_some_and(|limit| shown >= limit) {
            break;
        }
    }
    Ok(crate::event_view::summary(shown, "shown", findings))
}

/// Resolves when stdin reaches its end, when it is not a terminal (a
/// parent process closing the pipe stops tail); never on a terminal.
async fn stdin_closed() {
    if std::io::stdin().is_terminal() {
        return std::future::pending().await;
    }
    let (done, closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = done.send(());
    });
    let _ = closed.await;
}
