//! Subscriber mode: one instance of one consumer group, in its own process
//! (so the nemesis can SIGKILL it). Every handled event is appended to this
//! process's log with one `write` before the handler returns, that is before
//! the ack: a SIGKILL after the ack cannot lose the record (the kernel holds
//! the written bytes), and a SIGKILL before it leaves at most a record of an
//! event that is then redelivered (handled twice, which the report counts).
//!
//! The process exits gracefully on SIGTERM, and also when its standard input
//! closes (the controller died), so it never outlives the run.
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tidings::idempotency::Deduplicator;
use tidings::subscribe::{Backoff, StartAt};
use tidings::{Event, Subscriber, SubscriberConfig};

use super::event::{Probe, DEDUP_BUCKET};

/// What a subscriber process runs.
#[derive(Debug, clap::Args)]
pub struct SubscriberArgs {
    /// The consumer group.
    #[arg(long)]
    pub group: String,
    /// The instance number in the group (for the log's name).
    #[arg(long)]
    pub instance: usize,
    /// Comma-separated server URLs.
    #[arg(long)]
    pub urls: String,
    /// The directory of the handled-event logs.
    #[arg(long)]
    pub dir: PathBuf,
    /// Handle one entity's events one at a time, in stream order.
    #[arg(long)]
    pub ordered: bool,
    /// Skip events this group already handled (a key-value bucket).
    #[arg(long)]
    pub dedup: bool,
}

/// The subscriber settings of every group: redeliveries and dead letters
/// come within the run's time.
pub fn config(ordered: bool) -> SubscriberConfig {
    SubscriberConfig {
        ack_wait: Duration::from_secs(4),
        max_deliveries: 3,
        backoff: Backoff {
            initial: Duration::from_millis(100),
            factor: 2.0,
            max: Duration::from_millis(500),
            jitter: true,
        },
        ordered_by_key: ordered,
        start_at: StartAt::All,
        pull_expires: Duration::from_secs(1),
        shutdown_deadline: Duration::from_secs(5),
        ..Default::default()
    }
}

/// Runs one instance until SIGTERM or the end of standard input.
pub async fn run(args: SubscriberArgs) -> anyhow::Result<()> {
    let path = args.dir.join(format!(
        "{}.{}.{}.log",
        args.group,
        args.instance,
        std::process::id()
    ));
    let log = Arc::new(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?,
    ));
    let urls: Vec<String> = args.urls.split(',').map(str::to_string).collect();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(urls.as_slice())
        .await
        .with_context(|| format!("connecting to {}", args.urls))?;
    let js = async_nats::jetstream::new(client.clone());

    // A node may be down or electing while this instance starts: retry for a while.
    let started = Instant::now();
    let running = loop {
        let attempt = async {
            let mut subscriber =
                Subscriber::new(client.clone(), &args.group, config(args.ordered))?;
            let log = log.clone();
            subscriber.handle(move |event: Event<Probe>| {
                let log = log.clone();
                async move { handle(&log, &event) }
            });
            if args.dedup {
                let dedup =
                    Deduplicator::open(&js, DEDUP_BUCKET, Duration::from_secs(3600), 3).await?;
                subscriber.deduplicate(dedup);
            }
            anyhow::Ok(subscriber.start().await?)
        };
        match attempt.await {
            Ok(running) => break running,
            Err(e) if started.elapsed() < Duration::from_secs(60) => {
                tracing::warn!(group = %args.group, error = %e, "cannot start yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.context("starting the subscriber for 60 s")),
        }
    };

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // A thread blocks on standard input until it closes.
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while !matches!(stdin.read(&mut sink), Ok(0) | Err(_)) {}
        let _ = closed_tx.send(());
    });
    tokio::select! {
        _ = term.recv() => {}
        _ = closed_rx => tracing::warn!("the controller is gone; stopping"),
    }
    let report = running.shutdown().await;
    tracing::info!(group = %args.group, abandoned = report.abandoned, "stopped");
    Ok(())
}

/// Records a handled event: `event_id stream_sequence key delivery
/// unix_ms` (the wall clock, to place it among the nemesis's faults).
fn handle(log: &Mutex<File>, event: &Event<Probe>) -> Result<(), std::io::Error> {
    if event.payload.poison {
        return Err(std::io::Error::other(
            "poison probe: every handler refuses it",
        ));
    }
    let meta = &event.meta;
    let line = format!(
        "{} {} {} {} {}\n",
        meta.event_id,
        meta.stream_sequence,
        event.payload.key,
        meta.delivery,
        super::check::unix_ms()
    );
    let mut file = log.lock().unwrap_or_else(|p| p.into_inner());
    // One write per record: whole lines, also when the process is killed.
    file.write_all(line.as_bytes())
}
