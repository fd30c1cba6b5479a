//! Proves the single-server test harness against a real nats-server: the
//! JetStream round trip, durability across a restart and a SIGKILL, pause and
//! resume, and that no process outlives its handle, even through a panic.
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
use tidings::testing::NatsServer;

const STREAM: &str = "AUTH_EVENTS";

async fn create_stream(js: &jetstream::Context) -> anyhow::Result<jetstream::stream::Stream> {
    Ok(js
        .create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec!["auth.>".into()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?)
}

/// Reads `count` messages from a durable pull consumer and acks each, waiting
/// for the server to confirm every ack.
async fn consume(
    stream: &jetstream::stream::Stream,
    durable: &str,
    count: usize,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let consumer = stream
        .get_or_create_consumer(
            durable,
            pull::Config {
                durable_name: Some(durable.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?.take(count);
    let mut seen = Vec::new();
    while let Some(message) = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .context("no message within 10 s")?
    {
        let message = message.map_err(|e| anyhow::anyhow!(e))?;
        // A double ack waits for the server to confirm it, so the consumer's
        // state below is settled rather than racing a fire-and-forget ack.
        message.double_ack().await.map_err(|e| anyhow::anyhow!(e))?;
        seen.push((message.subject.to_string(), message.payload.to_vec()));
    }
    Ok(seen)
}

#[tokio::test]
async fn publishes_with_puback_and_consumes_from_a_durable_pull_consumer() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    assert!(server.url().starts_with("nats://127.0.0.1:"));
    let js = jetstream::new(server.connect().await?);
    let stream = create_stream(&js).await?;

    let ack = js
        .publish("auth.user.created", r#"{"user":"u-1"}"#.into())
        .await?
        .await?;
    assert_eq!(ack.stream, STREAM);
    assert_eq!(ack.sequence, 1);
    assert!(!ack.duplicate);

    let seen = consume(&stream, "analytics", 1).await?;
    assert_eq!(
        seen,
        vec![(
            "auth.user.created".to_string(),
            br#"{"user":"u-1"}"#.to_vec()
        )]
    );
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_consumer("analytics")
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let info = consumer.info().await?;
    assert_eq!(info.num_pending, 0, "the acked message is not pending");
    assert_eq!(info.num_ack_pending, 0, "the ack reached the server");
    Ok(())
}

#[tokio::test]
async fn stored_messages_survive_a_graceful_restart_and_a_sigkill() -> anyhow::Result<()> {
    // Without sync_always a PubAck may precede the write to the file by a few
    // milliseconds, and the SIGKILL below could land in that window.
    let mut server = NatsServer::builder().sync_always(true).launch().await?;
    let port = server.port();
    let store = server.store_dir();
    {
        let js = jetstream::new(server.connect().await?);
        create_stream(&js).await?;
        js.publish("auth.user.created", "before restart".into())
            .await?
            .await?;
    }

    let jsz = server.monitor("/jsz").await?;
    assert_eq!(
        jsz["config"]["sync_always"], true,
        "sync_always reached the server: {jsz}"
    );
    let first_pid = server.pid();
    server.restart().await?;
    assert_ne!(
        server.pid(),
        first_pid,
        "a new process serves after restart"
    );
    assert_eq!(server.port(), port, "restart keeps the port");
    assert_eq!(server.store_dir(), store, "restart keeps the store");

    let js = jetstream::new(server.connect().await?);
    let mut stream = js.get_stream(STREAM).await?;
    assert_eq!(stream.info().await?.state.messages, 1);
    js.publish("auth.user.updated", "before kill".into())
        .await?
        .await?;
    drop(js);

    server.kill()?;
    assert!(!server.is_running());
    server.start().await?;

    let js = jetstream::new(server.connect().await?);
    let stream = js.get_stream(STREAM).await?;
    let seen = consume(&stream, "after-restarts", 2).await?;
    assert_eq!(
        seen,
        vec![
            ("auth.user.created".to_string(), b"before restart".to_vec()),
            ("auth.user.updated".to_string(), b"before kill".to_vec()),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_paused_server_answers_nothing_until_resumed() -> anyhow::Result<()> {
    let mut server = NatsServer::launch().await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(300))
        .build(server.connect().await?);
    create_stream(&js).await?;

    server.pause().await?;
    let paused = js.publish("auth.user.created", "while paused".into()).await;
    let outcome = match paused {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(outcome.is_err(), "a paused server must not acknowledge");

    server.resume().await?;
    let ack =
        tidings::testing::eventually("a PubAck after resume", Duration::from_secs(10), || {
            let js = js.clone();
            async move {
                let ack = js
                    .publish("auth.user.created", "after resume".into())
                    .await?;
                ack.await
            }
        })
        .await?;
    assert_eq!(ack.stream, STREAM);
    Ok(())
}

/// Whether a process with this pid still exists (a zombie would count, but
/// the harness reaps what it kills).
fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn dropping_the_handle_stops_the_server_even_when_the_test_panics() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let server = NatsServer::launch().await.expect("server starts");
            tx.send((server.pid().expect("running"), server.store_dir()))
                .expect("send pid");
            panic!("a test failing with the server still up");
        })
    })
    .join();
    assert!(outcome.is_err(), "the thread panicked");
    let (pid, store) = rx.recv().expect("pid was sent before the panic");
    assert!(!process_exists(pid), "nats-server {pid} outlived the panic");
    assert!(!store.exists(), "the temp dir {store:?} was removed");
}

#[tokio::test]
async fn monitor_errors_name_the_endpoint() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let err = server
        .monitor("/no-such-endpoint")
        .await
        .expect_err("unknown endpoint");
    assert!(err.to_string().contains("/no-such-endpoint"), "{err}");
    Ok(())
}
