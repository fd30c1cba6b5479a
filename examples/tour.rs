//! The Tidings tour: an end-to-end walk over what exists today, on a local
//! nats-server it starts itself (or on `TIDINGS_NATS_URL` if set).
//!
//! Run it with `scripts/tour`. Each piece of Tidings adds a stop here.
// The tour talks to a person on stdout.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer::pull};
use events::auth::{UserCreated, UserCreatedV1};
use events::upcast::ReadAnyVersion;
use futures_util::StreamExt;
use tidings::envelope::Envelope;
use tidings::streams::{self, Action, ApplyOptions};
use tidings::testing::NatsServer;
use tidings::{PublishContext, Publisher, PublisherConfig};
use tidings_codegen::registry::{check::check, source::Source};

fn registry_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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

    // 2. A server: ours, or the one in TIDINGS_NATS_URL.
    let mut local = None;
    let url = match std::env::var("TIDINGS_NATS_URL") {
        Ok(url) => {
            println!("2. Using the existing server at {url} (TIDINGS_NATS_URL).");
            url
        }
        Err(_) => {
            let server = NatsServer::builder()
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
            let url = server.url();
            local = Some(server);
            url
        }
    };
    let client = async_nats::connect(&url).await?;
    let js = jetstream::new(client.clone());

    // 3. Streams from schemas/tidings.toml, idempotently.
    let specs = streams::load_streams(registry_dir(), "dev")?;
    let plans = streams::apply(&js, &specs, ApplyOptions::default()).await?;
    let created = plans.iter().filter(|p| p.action == Action::Create).count();
    println!(
        "3. Provisioned {} streams from schemas/tidings.toml (dev profile): {} created, {} already right.",
        plans.len(),
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
    let publisher = Publisher::new(client.clone(), PublisherConfig::default())?;
    let ctx = PublishContext::new("org-42")?;
    let v2: UserCreated = serde_json::from_value(serde_json::json!({
        "user_id": "0190f3a5-1111-7abc-8def-000000000001",
        "email": "ada@example.com",
        "display_name": "Ada Lovelace",
        "role": "planner",
        "created_at": "2025-12-09T10:15:00Z",
        "locale": "en-GB"
    }))?;
    let v1: UserCreatedV1 = serde_json::from_value(serde_json::json!({
        "user_id": "0190f3a5-1111-7abc-8def-000000000002",
        "email": "grace@example.com",
        "display_name": "Grace Hopper",
        "role": "admin",
        "created_at": "2025-12-09T10:16:00Z"
    }))?;
    for published in [
        publisher.publish(&ctx, &v2).await?,
        publisher.publish(&ctx, &v1).await?,
    ] {
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
    let broken = serde_json::from_value::<UserCreated>(serde_json::json!({
        "user_id": "0190f3a5-1111-7abc-8def-000000000003",
        "email": "x@example.com",
        "display_name": "",
        "role": "planner",
        "created_at": "2025-12-09T10:15:00Z"
    }));
    match broken {
        Err(e) => println!("5. The generated type refuses a payload its schema forbids: {e}"),
        Ok(_) => anyhow::bail!("an empty display_name was accepted"),
    }
    match PublishContext::new("org.42") {
        Err(e) => {
            println!("   So does the publisher a tenant id that would break the subject: {e}")
        }
        Ok(_) => anyhow::bail!("org.42 was accepted"),
    }

    // 6. The stored event survives a restart.
    if let Some(server) = local.as_mut() {
        server.restart().await?;
        println!(
            "6. Restarted nats-server on the same port and store (pid {}).",
            server.pid().unwrap_or_default()
        );
    } else {
        println!("6. (Skipping the restart: the server is not ours.)");
    }

    // 7. A durable consumer reads it back as a typed event.
    let client = async_nats::connect(&url).await?;
    let js = jetstream::new(client);
    let consumer = js
        .get_stream("AUTH_EVENTS")
        .await?
        .get_or_create_consumer(
            "tour-analytics",
            pull::Config {
                durable_name: Some("tour-analytics".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .context("no event delivered within 10 s")?
            .context("the consumer ended")?
            .map_err(|e| anyhow::anyhow!(e))?;
        let envelope = Envelope::decode_message(message.headers.as_ref(), &message.payload)?;
        // A v2 reader reads v1 and v2 events alike.
        let user = UserCreated::read_any_version(envelope.schema_version(), envelope.data.clone())?;
        println!(
            "7. Durable consumer tour-analytics got {} v{} for {} (event {}), read as v2: {} <{}>, locale {:?}",
            envelope.event_type,
            envelope.schema_version(),
            envelope.organization_id(),
            envelope.id,
            *user.display_name,
            *user.email,
            user.locale.as_deref().map(|l| l.as_str())
        );
        message.double_ack().await.map_err(|e| anyhow::anyhow!(e))?;
    }
    println!("8. Acknowledged. Done; the local server stops with the tour.");
    Ok(())
}
