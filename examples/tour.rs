//! The Tidings tour: an end-to-end walk over what exists today, on a local
//! nats-server it starts itself (or on `TIDINGS_NATS_URL` if set, with the
//! credentials of the `nats` CLI's variables: `tidings::connect`).
//!
//! On a server running the users of `tidings permissions`, the credential
//! of those variables is the operator's (it provisions the streams and the
//! failures bucket, replays and redrives), and the tour publishes as user
//! `auth` and runs its consumer groups as user `tour`, with the passwords
//! in `TIDINGS_PASSWORD_AUTH` and `TIDINGS_PASSWORD_TOUR` (the variables
//! the generated server configuration reads).
//!
//! Step 10 shows the transactional outbox on SQLite (embedded: no database
//! server). Run it with `scripts/tour`. Each piece of Tidings adds a stop here.
// The tour talks to a person on stdout.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use events::auth::{UserCreated, UserCreatedV1};
use metrics_exporter_prometheus::PrometheusBuilder;
use tidings::connect::ConnectOptions;
use tidings::dlq::{self, DlqFilter};
use tidings::outbox::sqlite::{self, SqliteOutbox};
use tidings::outbox::sqlx;
use tidings::outbox::{Relay, Store as _};
use tidings::replay::{Replay, ReplaySpec, ReplayStart};
use tidings::streams::{self, Action, ApplyOptions};
use tidings::subscribe::{Backoff, StartAt};
use tidings::telemetry::{self, Collector};
use tidings::testing::NatsServer;
use tidings::{Event, PublishContext, Publisher, PublisherConfig, Subscriber, SubscriberConfig};
use tidings_codegen::registry::access::{inbox_prefix, password_env};
use tidings_codegen::registry::{check::check, source::Source};

fn registry_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))
}

/// Who the tour connects as.
pub struct Credentials {
    /// Provisions the streams and the failures bucket, replays, lists and
    /// redrives dead letters.
    pub operator: ConnectOptions,
    /// Publishes `auth.user.created`.
    pub publisher: ConnectOptions,
    /// Runs the consumer groups `tour-analytics` and `tour-billing`.
    pub consumer: ConnectOptions,
}

impl Credentials {
    /// One credential for everything (a server without authorization).
    pub fn one(options: ConnectOptions) -> Self {
        Self {
            operator: options.clone(),
            publisher: options.clone(),
            consumer: options,
        }
    }

    /// The users of `tidings permissions`: `operator` as given, `auth` and
    /// `tour` with these passwords, on the same servers and TLS, each with
    /// its inbox prefix.
    pub fn users(operator: ConnectOptions, auth_password: String, tour_password: String) -> Self {
        let user = |name: &str, password: String| {
            operator
                .clone()
                .name(format!("tidings-tour-{name}"))
                .user_password(name, password)
                .inbox_prefix(inbox_prefix(name))
        };
        Self {
            publisher: user("auth", auth_password),
            consumer: user("tour", tour_password),
            operator,
        }
    }

    /// For `TIDINGS_NATS_URL`: the `nats` CLI's variables are the operator's
    /// credential; with `TIDINGS_PASSWORD_AUTH` and `TIDINGS_PASSWORD_TOUR`
    /// set, the services connect as `auth` and `tour` (else with the same
    /// credential).
    fn from_env(url: &str) -> anyhow::Result<Self> {
        let operator = ConnectOptions::from_env()?
            .servers(url)
            .name("tidings-tour");
        let password = |user: &str| std::env::var(password_env(user)).ok();
        match (password("auth"), password("tour")) {
            (Some(auth), Some(tour)) => Ok(Self::users(operator, auth, tour)),
            (None, None) => Ok(Self::one(operator)),
            _ => anyhow::bail!(
                "set both {} and {} (the service users auth and tour), or neither",
                password_env("auth"),
                password_env("tour")
            ),
        }
    }
}

/// Where the tour serves its Prometheus metrics unless `TIDINGS_METRICS_ADDR` says.
const METRICS_ADDR: &str = "127.0.0.1:9464";

/// Serves every Tidings metric (`tidings::telemetry::names`) in the
/// Prometheus text format at `http://ADDR/metrics` (any path answers), from
/// a global recorder; histograms with `DURATION_BUCKETS`, counters with
/// `_total` and units in the names. Call once, inside the runtime.
pub fn serve_metrics(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "the tour serves metrics on loopback only, not {addr}"
    );
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .with_recommended_naming(true)
        .set_buckets(&telemetry::DURATION_BUCKETS)?
        .install()
        .with_context(|| format!("serving metrics on {addr}"))?;
    telemetry::describe_metrics();
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // 0. Metrics for Prometheus, and (feature `otlp`) traces to an
    //    OpenTelemetry collector.
    let addr: std::net::SocketAddr = std::env::var("TIDINGS_METRICS_ADDR")
        .unwrap_or_else(|_| METRICS_ADDR.to_string())
        .parse()
        .context("TIDINGS_METRICS_ADDR is not an address like 127.0.0.1:9464")?;
    serve_metrics(addr)?;
    println!("0. Metrics at http://{addr}/metrics while the tour runs.");
    #[cfg(feature = "otlp")]
    let _traces = otlp::install()?;
    // 1. The registry, checked as CI checks it.
    let source = Source::from_dir(registry_dir()).context("reading schemas/")?;
    let report = check(&source, None);
    println!(
        "1. tidings check: {} event types, {} versions, {} files; {} errors, {} warnings.",
        report.summary.event_types,
        report.summary.versions,
        report.summary.files,
        report.summary.errors,
        report.summary.warnings
    );
    anyhow::ensure!(
        !report.has_errors(),
        "the registry has errors: run `cargo run --bin tidings -- check`"
    );

    // 2. A server: ours, or the one in TIDINGS_NATS_URL, with the
    //    credentials of the nats CLI's variables (NATS_USER/NATS_PASSWORD,
    //    NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT, NATS_KEY).
    match std::env::var("TIDINGS_NATS_URL") {
        Ok(url) => {
            let credentials = Credentials::from_env(&url)?;
            println!(
                "2. Using the existing server at {url} (TIDINGS_NATS_URL): set-up with {}, services {}.",
                credentials.operator.get_credential().kind(),
                if std::env::var(password_env("auth")).is_ok() {
                    "as users auth and tour"
                } else {
                    "with the same credential"
                }
            );
            tour(&credentials, None).await
        }
        Err(_) => {
            let mut server = NatsServer::builder()
                .name("tidings-tour")
                .sync_always(true)
                .launch()
                .await
                .context(
                    "starting a local nats-server (run scripts/tour, which finds or installs one)",
                )?;
            println!(
                "2. Started nats-server (pid {}) on {}, JetStream file storage in {}.",
                server.pid().unwrap_or_default(),
                server.url(),
                server.store_dir().display()
            );
            let options = ConnectOptions::new(&server.url()).name("tidings-tour");
            tour(&Credentials::one(options), Some(&mut server)).await
        }
    }
}

/// Steps 3 to 10 on a running server (`local`: ours, restarted in step 6).
pub async fn tour(credentials: &Credentials, local: Option<&mut NatsServer>) -> anyhow::Result<()> {
    let js = jetstream::new(credentials.operator.connect().await?);

    // 3. Streams from schemas/tidings.toml, idempotently.
    let specs = streams::load_streams(registry_dir(), "dev")?;
    let plans = streams::apply(&js, &specs, ApplyOptions::default()).await?;
    let created = plans.iter().filter(|p| p.action == Action::Create).count();
    println!(
        "3. Provisioned {} streams and the {} bucket from schemas/tidings.toml (dev profile): {} created, {} already right.",
        plans.len(),
        dlq::FAILURES_BUCKET,
        created,
        plans.len() - created
    );
    let again = streams::plan(&js, &specs).await?;
    println!(
        "   Planning again: {}.",
        if again.iter().all(|p| p.action == Action::Unchanged) {
            "nothing to do"
        } else {
            "drift!"
        }
    );

    // 4. Typed publishes: generated types, validated, enveloped, acknowledged.
    let publisher = Publisher::new(
        credentials.publisher.connect().await?,
        PublisherConfig::default(),
    )?;
    let ctx = PublishContext::new("org-42")?;
    let v2 = UserCreated::builder()
        .user_id("0190f3a5-1111-7abc-8def-000000000001")
        .email("ada@example.com")
        .display_name("Ada Lovelace")
        .role("planner")
        .created_at("2025-12-09T10:15:00Z")
        .locale("en-GB")
        .build()?;
    let v1 = UserCreatedV1::builder()
        .user_id("0190f3a5-1111-7abc-8def-000000000002")
        .email("grace@example.com")
        .display_name("Grace Hopper")
        .role("admin")
        .created_at("2025-12-09T10:16:00Z")
        .build()?;
    for (published, user_id) in [
        (publisher.publish(&ctx, &v2).await?, v2.user_id.to_string()),
        (publisher.publish(&ctx, &v1).await?, v1.user_id.to_string()),
    ] {
        // The schema's x-entity-key (user_id) is the subject's last token:
        // one user's events share a subject and keep their order.
        anyhow::ensure!(
            published.subject == format!("auth.user.created.org-42.{user_id}"),
            "subject {} is not keyed by the user id {user_id}",
            published.subject
        );
        println!(
            "4. Published event {} on {}: PubAck {} #{} after {} attempt(s).",
            published.event_id,
            published.subject,
            published.stream,
            published.sequence,
            published.attempts
        );
    }

    // 5. Mistakes are caught before anything is sent.
    let broken = UserCreated::builder()
        .user_id("0190f3a5-1111-7abc-8def-000000000003")
        .email("x@example.com")
        .display_name("")
        .role("planner")
        .created_at("2025-12-09T10:15:00Z")
        .build();
    match broken {
        Err(e) => println!("5. The generated builder refuses a value its schema forbids: {e}"),
        Ok(_) => anyhow::bail!("an empty display_name was accepted"),
    }
    match PublishContext::new("org.42") {
        Err(e) => {
            println!("   So does the publisher a tenant id that would break the subject: {e}")
        }
        Ok(_) => anyhow::bail!("org.42 was accepted"),
    }

    // 6. The stored event survives a restart.
    if let Some(server) = local {
        server.restart().await?;
        println!(
            "6. Restarted nats-server on the same port and store (pid {}).",
            server.pid().unwrap_or_default()
        );
    } else {
        println!("6. (Skipping the restart: the server is not ours.)");
    }

    // 7. A consumer group receives both, typed: a v2 handler reads v1 and
    //    v2 events alike.
    let client = credentials.consumer.connect().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(
        client.clone(),
        "tour-analytics",
        SubscriberConfig {
            start_at: StartAt::All,
            ..Default::default()
        },
    )?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event);
            Ok::<(), std::convert::Infallible>(())
        }
    });
    let running = subscriber.start().await?;
    for _ in 0..2 {
        let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .context("no event delivered within 10 s")?
            .context("the subscriber stopped")?;
        let (meta, user) = (&event.meta, &event.payload);
        println!(
            "7. Consumer group {} got {} v{} for {} (event {}, {} #{}, delivery {}), read as v2: {} <{}>, locale {:?}",
            meta.group,
            meta.event_type,
            meta.schema_version,
            meta.organization_id,
            meta.event_id,
            meta.stream,
            meta.stream_sequence,
            meta.delivery,
            *user.display_name,
            *user.email,
            user.locale.as_deref().map(|l| l.as_str())
        );
    }
    let report = running.shutdown().await;
    println!(
        "   Graceful shutdown in {:?}: handlers finished, acks flushed, {} abandoned.",
        report.elapsed, report.abandoned
    );

    // 8. Replay: the same events again, from the stream, without touching
    //    the group.
    let js = jetstream::new(credentials.operator.connect().await?);
    let mut replay = Replay::start(
        &js,
        ReplaySpec {
            stream: "AUTH_EVENTS".into(),
            event_types: vec!["auth.user.created".into()],
            organization: Some(ctx.organization_id().clone()),
            start: ReplayStart::Sequence(1),
            until: None,
        },
    )
    .await?;
    while let Some(replayed) = replay.next().await {
        let replayed = replayed?;
        println!(
            "8. Replayed AUTH_EVENTS #{} stored at {}: {} v{}.",
            replayed.stream_sequence,
            replayed.stored_at,
            replayed.envelope.event_type,
            replayed.envelope.schema_version()
        );
    }
    // 9. A handler that keeps failing: after max_deliveries the event moves
    //    to DLQ_EVENTS with its failure record, and can be redriven.
    let client = credentials.consumer.connect().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut failing = Subscriber::new(
        client.clone(),
        "tour-billing",
        SubscriberConfig {
            start_at: StartAt::All,
            max_deliveries: 3,
            backoff: Backoff {
                initial: Duration::from_millis(100),
                ..Backoff::default()
            },
            organization: Some(ctx.organization_id().clone()),
            ..Default::default()
        },
    )?;
    failing.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.meta.delivery);
            Err::<(), _>(format!(
                "billing backend refused {} (HTTP 503)",
                *event.payload.email
            ))
        }
    });
    let running = failing.start().await?;
    let dead = tidings::testing::eventually(
        "the events reach the dead-letter queue",
        Duration::from_secs(30),
        || async {
            let found = dlq::ops::list(&js, &DlqFilter::default(), None).await?;
            anyhow::ensure!(found.len() == 2, "{} of 2 dead letters", found.len());
            Ok(found)
        },
    )
    .await?;
    running.shutdown().await;
    let mut deliveries = Vec::new();
    while let Ok(d) = rx.try_recv() {
        deliveries.push(d);
    }
    println!(
        "9. Consumer group tour-billing failed {} times (deliveries {:?}); both events are now in DLQ_EVENTS:",
        deliveries.len(),
        deliveries
    );
    for letter in &dead {
        let record = letter.record.clone()?;
        println!(
            "   #{} {} after {} deliveries ({}): {}",
            letter.dlq_sequence,
            letter.subject,
            record.deliveries,
            record.kind.as_str(),
            record.error
        );
    }
    let redriven = dlq::ops::redrive(&js, &dead[0], dlq::RedriveTarget::EveryGroup).await?;
    println!(
        "   Redrove #{} to {}: {} #{} (redrive count {}).",
        redriven.dlq_sequence,
        redriven.subject,
        redriven.stream,
        redriven.sequence,
        redriven.redrive_count
    );
    // 10. The transactional outbox on SQLite (no database server): the
    // event commits or rolls back with the data it describes.
    let dir = tempfile::tempdir()?;
    let outbox = SqliteOutbox::new(
        sqlite::connect(dir.path().join("auth.db")).await?,
        &publisher,
    );
    sqlx::query("CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL)")
        .execute(outbox.pool())
        .await?;
    let mut committed = None;
    for (n, email, commit) in [(3, "alan@example.com", true), (4, "eve@example.com", false)] {
        let user = UserCreated::builder()
            .user_id(format!("0190f3a5-1111-7abc-8def-00000000000{n}").as_str())
            .email(email)
            .display_name(email)
            .role("planner")
            .created_at("2025-12-09T10:17:00Z")
            .locale("en-GB")
            .build()?;
        let mut tx = outbox.pool().begin().await?;
        sqlx::query("INSERT INTO users (id, email) VALUES (?1, ?2)")
            .bind(user.user_id.to_string())
            .bind(email)
            .execute(&mut *tx)
            .await?;
        let event_id = outbox.enqueue(&mut tx, &ctx, &user).await?;
        if commit {
            tx.commit().await?;
            committed = Some(event_id);
        } else {
            tx.rollback().await?;
        }
    }
    let relay = Relay::new(outbox.clone(), publisher.clone());
    let pass = relay.run_once().await?;
    println!(
        "10. Outbox on SQLite: user alan@example.com and its user.created committed in one transaction, eve@example.com's rolled back; the relay published {} event ({}) with its PubAck and marked it sent; {} pending.",
        pass.sent,
        committed.map(|id| id.to_string()).unwrap_or_default(),
        outbox.pending().await?
    );
    // 11. The gauges that need the server: each group's lag, the DLQ depth.
    Collector::new(js.clone(), ["AUTH_EVENTS"])
        .collect()
        .await?;
    println!("11. Collected consumer lag and dead-letter depth into the metrics (a service runs Collector::spawn).");
    println!("12. Done; the local server stops with the tour.");
    Ok(())
}

/// Feature `otlp`: the SDK's spans exported over OTLP/HTTP (protobuf) to
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://127.0.0.1:4318`).
#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// Flushes and stops the exporter when dropped.
    pub struct Traces(SdkTracerProvider);

    impl Drop for Traces {
        fn drop(&mut self) {
            if let Err(error) = self.0.shutdown() {
                tracing::warn!(%error, "the OTLP exporter did not flush");
            }
        }
    }

    /// Installs a global `tracing` subscriber whose spans go to OTLP.
    pub fn install() -> anyhow::Result<Traces> {
        // reqwest leaves rustls' crypto provider to the process: ring, as async-nats.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        // The batch processor exports from its own thread, with reqwest's
        // blocking client (the async one would need this runtime's reactor).
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("tidings-tour");
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer)),
        )?;
        println!("0. Traces over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (default http://127.0.0.1:4318).");
        Ok(Traces(provider))
    }
}
