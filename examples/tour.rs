//! The Tidings tour: an end-to-end walk over what exists today, on a local
//! nats-server it starts itself (or on `TIDINGS_NATS_URL` if set).
//!
//! Run it with `scripts/tour`. Each later piece of Tidings adds a stop here.
// The tour talks to a person on stdout.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
use tidings::testing::NatsServer;

const STREAM: &str = "AUTH_EVENTS";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut local = None;
    let url = match std::env::var("TIDINGS_NATS_URL") {
        Ok(url) => {
            println!("1. Using the existing server at {url} (TIDINGS_NATS_URL).");
            url
        }
        Err(_) => {
            let server = NatsServer::builder()
                .name("tidings-tour")
                .launch()
                .await
                .context(
                    "starting a local nats-server (run scripts/tour, which finds or installs one)",
                )?;
            println!(
                "1. Started nats-server (pid {}) on {} with JetStream file storage in {}.",
                server.pid().unwrap_or_default(),
                server.url(),
                server.store_dir().display()
            );
            let url = server.url();
            local = Some(server);
            url
        }
    };

    let js = jetstream::new(async_nats::connect(&url).await?);
    let mut auth = js
        .get_or_create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec!["auth.>".into()],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 1 << 30,
            discard: stream::DiscardPolicy::Old,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
    let config = &auth.info().await?.config;
    println!(
        "2. Stream {STREAM}: subjects {:?}, max age {} days, max bytes {} MiB, discard {:?}.",
        config.subjects,
        config.max_age.as_secs() / 86_400,
        config.max_bytes >> 20,
        config.discard
    );

    let body = serde_json::json!({
        "user_id": "u-123",
        "email": "ada@example.com",
        "display_name": "Ada"
    });
    let subject = "auth.user.created.org-42";
    let publish = || {
        jetstream::message::PublishMessage::build()
            .payload(serde_json::to_vec(&body).unwrap_or_default().into())
            .message_id("tour-event-1")
    };
    let ack = js.send_publish(subject, publish()).await?.await?;
    println!(
        "3. Published {subject}: PubAck stream {} sequence {} duplicate {}.",
        ack.stream, ack.sequence, ack.duplicate
    );
    let again = js.send_publish(subject, publish()).await?.await?;
    println!(
        "4. Published it again with the same Nats-Msg-Id: sequence {} duplicate {} (stored once).",
        again.sequence, again.duplicate
    );

    if let Some(server) = local.as_mut() {
        server.restart().await?;
        println!(
            "5. Restarted nats-server on the same port and store (pid {}).",
            server.pid().unwrap_or_default()
        );
    } else {
        println!("5. (Skipping the restart: the server is not ours.)");
    }

    let js = jetstream::new(async_nats::connect(&url).await?);
    let stream = js.get_stream(STREAM).await?;
    let consumer = stream
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
    let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .context("no event delivered within 10 s")?
        .context("the consumer ended")?
        .map_err(|e| anyhow::anyhow!(e))?;
    let info = message.info().map_err(|e| anyhow::anyhow!(e))?;
    println!(
        "6. Durable consumer tour-analytics received {} (stream sequence {}, delivery {}): {}",
        message.subject,
        info.stream_sequence,
        info.delivered,
        String::from_utf8_lossy(&message.payload)
    );
    message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
    println!("7. Acknowledged it. Done; the local server stops with the tour.");
    Ok(())
}
