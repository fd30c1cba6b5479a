//! End-to-end tests of the operating commands against a real nats-server:
//! `tidings publish`, `tidings tail`, `tidings replay` and `tidings lag`,
//! each run as the built binary.
use std::borrow::Cow;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tidings::envelope::Envelope;
use tidings::streams::{self, ApplyOptions};
use tidings::testing::NatsServer;
use tidings::{DomainEvent, PublishContext, Publisher, PublisherConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

const REGISTRY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");

/// `auth.user.created` v1 as a service's typed code has it (the schema is
/// the registry's, checked by the CLI; this side only needs its identity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UserCreated {
    user_id: String,
    email: String,
    display_name: String,
    role: String,
    created_at: String,
}

impl DomainEvent for UserCreated {
    const EVENT_TYPE: &'static str = "auth.user.created";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = r#"{"type": "object"}"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/auth/user.created.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("user_id");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.user_id))
    }
}

impl tidings::upcast::ReadAnyVersion for UserCreated {}

fn user(n: u32) -> UserCreated {
    UserCreated {
        user_id: format!("0190f3a5-1111-7abc-8def-{n:012}"),
        email: format!("user{n}@example.com"),
        display_name: format!("User {n}"),
        role: "planner".into(),
        created_at: "2025-12-09T10:15:00Z".into(),
    }
}

/// A server with the registry's streams (dev profile).
async fn provisioned() -> anyhow::Result<(NatsServer, async_nats::Client, jetstream::Context)> {
    let server = NatsServer::launch().await?;
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    streams::apply(
        &js,
        &streams::load_streams(Path::new(REGISTRY), "dev")?,
        ApplyOptions::default(),
    )
    .await?;
    Ok((server, client, js))
}

/// Runs `tidings ARGS --server URL --schemas REGISTRY` with `stdin` and
/// waits for it (at most a minute).
async fn tidings(server: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<Output> {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .args(["--server", server, "--schemas", REGISTRY])
        .env_remove("NATS_URL")
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await?;
    }
    Ok(tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await??)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn both(o: &Output) -> String {
    format!(
        "stdout:\n{}stderr:\n{}",
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The stored message at `sequence` of AUTH_EVENTS.
async fn stored(
    js: &jetstream::Context,
    sequence: u64,
) -> anyhow::Result<jetstream::message::StreamMessage> {
    Ok(js
        .get_stream("AUTH_EVENTS")
        .await?
        .get_raw_message(sequence)
        .await?)
}

/// The headers as sorted (name, value) pairs, without those that differ
/// between two publishes of the same payload (id and time).
fn stable_headers(headers: &async_nats::HeaderMap) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .flat_map(|(name, values)| {
            let name: &str = name.as_ref();
            values
                .iter()
                .map(move |v| (name.to_ascii_lowercase(), v.as_str().to_string()))
        })
        .filter(|(name, _)| !matches!(name.as_str(), "nats-msg-id" | "ce-id" | "ce-time"))
        .collect();
    pairs.sort();
    pairs
}

/// The body without `id` and `time`.
fn stable_body(body: &[u8]) -> anyhow::Result<Value> {
    let mut value: Value = serde_json::from_slice(body)?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("body not an object"))?;
    anyhow::ensure!(object.remove("id").is_some() && object.remove("time").is_some());
    Ok(value)
}

/// `tidings publish` stores what a typed publish of the same payload
/// stores: the same subject, headers and body (but for id and time), read
/// back by a typed decoder as the same value.
#[tokio::test]
async fn publish_stores_what_a_typed_publish_stores() -> anyhow::Result<()> {
    let (server, client, js) = provisioned().await?;
    let event = user(1);
    let typed = Publisher::new(client, PublisherConfig::default())?
        .publish(&PublishContext::new("org-1")?, &event)
        .await?;
    let payload = serde_json::to_string(&event)?;
    let out = tidings(
        &server.url(),
        &[
            "publish",
            "--type",
            "auth.user.created",
            "--version",
            "1",
            "--org",
            "org-1",
            "--format",
            "json",
            "-",
        ],
        Some(&payload),
    )
    .await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let printed: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(printed["subject"], json!(typed.subject), "{printed}");
    assert_eq!(printed["stream"], json!("AUTH_EVENTS"));
    assert_eq!(printed["sequence"], json!(typed.sequence + 1));
    assert_eq!(printed["duplicate"], json!(false));

    let (a, b) = (
        stored(&js, typed.sequence).await?,
        stored(&js, typed.sequence + 1).await?,
    );
    assert_eq!(a.subject, b.subject);
    assert_eq!(stable_headers(&a.headers), stable_headers(&b.headers));
    assert_eq!(stable_body(&a.payload)?, stable_body(&b.payload)?);
    let envelope = Envelope::decode_message(Some(&b.headers), &b.payload)?;
    assert_eq!(
        envelope.id.to_string(),
        printed["event_id"].as_str().unwrap_or_default()
    );
    assert_eq!(envelope.schema_version, 1);
    assert_eq!(envelope.data_as::<UserCreated>()?, event);
    Ok(())
}

/// A payload that breaks the registry's schema is refused with each
/// violation and exit 1, and nothing is stored.
#[tokio::test]
async fn publish_refuses_an_invalid_payload_with_its_violations() -> anyhow::Result<()> {
    let (server, _client, js) = provisioned().await?;
    let mut payload = serde_json::to_value(user(2))?;
    payload["role"] = json!("emperor");
    payload.as_object_mut().map(|o| o.remove("email"));
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), payload.to_string())?;
    let path = file.path().to_string_lossy().into_owned();
    let out = tidings(
        &server.url(),
        &[
            "publish",
            "--type",
            "auth.user.created",
            "--org",
            "org-1",
            &path,
        ],
        None,
    )
    .await?;
    assert_eq!(code(&out), 1, "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a valid auth.user.created v2"), "{err}");
    assert!(err.contains("at /role"), "{err}");
    assert!(err.contains("\"email\" is a required property"), "{err}");
    assert_eq!(
        js.get_stream("AUTH_EVENTS")
            .await?
            .info()
            .await?
            .state
            .messages,
        0
    );
    Ok(())
}

/// `--id` twice stores the event once; the second answer says duplicate.
#[tokio::test]
async fn publish_with_the_same_id_twice_stores_once() -> anyhow::Result<()> {
    let (server, _client, js) = provisioned().await?;
    let payload = serde_json::to_string(&user(3))?;
    let id = "0190f3a5-2222-7abc-8def-000000000003";
    let args = [
        "publish",
        "--type",
        "auth.user.created",
        "--org",
        "org-2",
        "--key",
        "0190f3a5-1111-7abc-8def-000000000003",
        "--id",
        id,
        "--format",
        "json",
        "-",
    ];
    let first = tidings(&server.url(), &args, Some(&payload)).await?;
    assert_eq!(code(&first), 0, "{}", both(&first));
    let second = tidings(&server.url(), &args, Some(&payload)).await?;
    assert_eq!(code(&second), 0, "{}", both(&second));
    let (first, second): (Value, Value) = (
        serde_json::from_slice(&first.stdout)?,
        serde_json::from_slice(&second.stdout)?,
    );
    assert_eq!(first["event_id"], json!(id));
    assert_eq!(first["duplicate"], json!(false));
    assert_eq!(second["duplicate"], json!(true));
    assert_eq!(second["sequence"], first["sequence"]);
    assert_eq!(
        js.get_stream("AUTH_EVENTS")
            .await?
            .info()
            .await?
            .state
            .messages,
        1
    );
    Ok(())
}

/// A `tidings` child left running, with its stdin kept open.
fn spawn(server: &str, args: &[&str]) -> anyhow::Result<tokio::process::Child> {
    Ok(tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .args(["--server", server, "--schemas", REGISTRY])
        .env_remove("NATS_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?)
}

/// The consumers of `stream`.
async fn consumers(js: &jetstream::Context, stream: &str) -> anyhow::Result<Vec<String>> {
    use futures_util::TryStreamExt;
    Ok(js
        .get_stream(stream)
        .await?
        .consumer_names()
        .try_collect()
        .await?)
}

/// Waits until tail's consumer exists on `stream` (tail sees every event
/// stored from then on).
async fn tail_ready(js: &jetstream::Context, stream: &str) -> anyhow::Result<()> {
    tidings::testing::eventually("tail's consumer", Duration::from_secs(30), || async {
        match consumers(js, stream).await {
            Ok(names) if names.iter().any(|n| n.starts_with("tidings_tail_")) => Ok(()),
            Ok(names) => Err(format!("consumers: {names:?}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?;
    Ok(())
}

fn json_lines(out: &Output) -> anyhow::Result<Vec<Value>> {
    stdout(out)
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

/// With `--since`, tail shows the matching events stored before it
/// started and those stored after, filtered by type and organization, in
/// order; after `--limit` it exits and leaves no consumer.
#[tokio::test]
async fn tail_shows_events_since_and_live_filtered_and_leaves_no_consumer() -> anyhow::Result<()> {
    let (server, client, js) = provisioned().await?;
    let publisher = Publisher::new(client, PublisherConfig::default())?;
    let (org1, org2) = (PublishContext::new("org-1")?, PublishContext::new("org-2")?);
    let before = publisher.publish(&org1, &user(10)).await?;
    publisher.publish(&org2, &user(11)).await?;
    let mut child = spawn(
        &server.url(),
        &[
            "tail",
            "--type",
            "auth.user.created",
            "--org",
            "org-1",
            "--since",
            "1h",
            "--limit",
            "2",
            "--format",
            "json",
        ],
    )?;
    tail_ready(&js, "AUTH_EVENTS").await?;
    publisher.publish(&org2, &user(12)).await?;
    let after = publisher.publish(&org1, &user(13)).await?;
    // Held open: a closed stdin would stop tail before its limit.
    let _stdin = child.stdin.take();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await??;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let lines = json_lines(&out)?;
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["event"]["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        ids,
        [before.event_id.to_string(), after.event_id.to_string()],
        "{}",
        both(&out)
    );
    for (line, published) in lines.iter().zip([&before, &after]) {
        assert_eq!(line["status"], json!("valid"));
        assert_eq!(line["stream"], json!("AUTH_EVENTS"));
        assert_eq!(line["sequence"], json!(published.sequence));
        assert_eq!(line["subject"], json!(published.subject));
        assert_eq!(line["event"]["schemaversion"], json!(1));
    }
    assert_eq!(consumers(&js, "AUTH_EVENTS").await?, Vec::<String>::new());
    Ok(())
}

/// Without `--since` tail shows only what is stored after it started;
/// an event that breaks its schema and a message that is not an event are
/// shown as such (exit 1), not dropped; closing stdin stops it, with every
/// stream's consumer deleted.
#[tokio::test]
async fn tail_shows_invalid_and_undecodable_events_and_stops_when_stdin_closes(
) -> anyhow::Result<()> {
    let (server, client, js) = provisioned().await?;
    let publisher = Publisher::new(client.clone(), PublisherConfig::default())?;
    let unchecked = Publisher::new(
        client.clone(),
        PublisherConfig {
            validate: false,
            ..PublisherConfig::default()
        },
    )?;
    let org = PublishContext::new("org-1")?;
    publisher.publish(&org, &user(20)).await?;
    let mut child = spawn(&server.url(), &["tail"])?;
    tail_ready(&js, "AUTH_EVENTS").await?;
    tail_ready(&js, "CATALOG_EVENTS").await?;
    let valid = publisher.publish(&org, &user(21)).await?;
    let mut bad = user(22);
    bad.role = "emperor".into();
    let invalid = unchecked.publish(&org, &bad).await?;
    js.publish("auth.user.created.org-1.x", "not an event".into())
        .await?
        .await?;
    // Read what tail prints until the last of them is shown (a delivery
    // the server counts may not be printed yet), then close its stdin.
    let mut reader = tokio::io::BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    );
    let last = format!("AUTH_EVENTS #{} ", invalid.sequence + 1);
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !text.contains(&last) {
            if reader.read_line(&mut text).await? == 0 {
                anyhow::bail!("tail ended before showing {last:?}: {text}");
            }
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("tail did not show {last:?} within 30 s: {text}"))??;
    drop(child.stdin.take());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await??;
    reader.read_to_string(&mut text).await?;
    assert_eq!(code(&out), 1, "{text}{}", both(&out));
    assert!(
        !text.contains("#1 "),
        "an event stored before tail started is shown: {text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let header = |seq: u64| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("AUTH_EVENTS #{seq} ")))
            .map(|l| l.to_string())
            .unwrap_or_default()
    };
    let expected = format!("auth.user.created v1  {}  valid", valid.subject);
    assert!(header(valid.sequence).ends_with(&expected), "{text}");
    assert!(header(invalid.sequence).ends_with("INVALID"), "{text}");
    assert!(text.contains("! at /role:"), "{text}");
    assert!(
        header(invalid.sequence + 1).contains("auth.user.created.org-1.x  UNDECODABLE"),
        "{text}"
    );
    assert!(text.contains("not an event"), "{text}");
    for stream in ["AUTH_EVENTS", "CATALOG_EVENTS", "DDMRP_EVENTS"] {
        assert_eq!(
            consumers(&js, stream).await?,
            Vec::<String>::new(),
            "{stream}"
        );
    }
    Ok(())
}

/// Ctrl-C (SIGINT) stops tail, exit 0, its consumer deleted.
#[tokio::test]
async fn tail_stops_on_sigint_and_leaves_no_consumer() -> anyhow::Result<()> {
    let (server, _client, js) = provisioned().await?;
    let mut child = spawn(&server.url(), &["tail", "--type", "auth.user.created"])?;
    let _stdin = child.stdin.take();
    tail_ready(&js, "AUTH_EVENTS").await?;
    let pid = child.id().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    let sent = tokio::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .await?;
    assert!(sent.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await??;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("0 events shown"),
        "{}",
        both(&out)
    );
    assert_eq!(consumers(&js, "AUTH_EVENTS").await?, Vec::<String>::new());
    Ok(())
}

fn rfc3339(t: time::OffsetDateTime) -> anyhow::Result<String> {
    Ok(t.format(&time::format_description::well_known::Rfc3339)?)
}

/// `tidings replay --from A --until B` prints exactly the events of the
/// type and organization stored in `[A, B)`, in stream order.
#[tokio::test]
async fn replay_prints_exactly_the_events_in_the_range_in_order() -> anyhow::Result<()> {
    let (server, client, js) = provisioned().await?;
    let publisher = Publisher::new(client, PublisherConfig::default())?;
    let (org1, org2) = (
        PublishContext::new("org-1")?,
        PublishContext::new("org-1-not")?,
    );
    publisher.publish(&org1, &user(30)).await?;
    let first = publisher.publish(&org1, &user(31)).await?;
    publisher.publish(&org2, &user(32)).await?;
    let second = publisher.publish(&org1, &user(33)).await?;
    let end = publisher.publish(&org1, &user(34)).await?;
    publisher.publish(&org1, &user(35)).await?;
    let from = rfc3339(stored(&js, first.sequence).await?.time)?;
    let until = rfc3339(stored(&js, end.sequence).await?.time)?;
    let out = tidings(
        &server.url(),
        &[
            "replay",
            "--type",
            "auth.user.created",
            "--org",
            "org-1",
            "--from",
            &from,
            "--until",
            &until,
            "--format",
            "json",
        ],
        None,
    )
    .await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let lines = json_lines(&out)?;
    let sequences: Vec<u64> = lines
        .iter()
        .filter_map(|l| l["sequence"].as_u64())
        .collect();
    // Two events stored in the same instant as `end` would be cut with it;
    // the stream's times are nanoseconds apart here.
    assert_eq!(
        sequences,
        [first.sequence, second.sequence],
        "{}",
        both(&out)
    );
    assert_eq!(lines[1]["event"]["id"], json!(second.event_id.to_string()));
    assert!(lines.iter().all(|l| l["status"] == json!("valid")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 events replayed from AUTH_EVENTS"), "{err}");
    assert!(!err.contains("truncated"), "{err}");
    Ok(())
}

/// A range that starts before the oldest retained event is replayed from
/// that event, with a warning that it is truncated.
#[tokio::test]
async fn replay_warns_when_the_range_is_truncated() -> anyhow::Result<()> {
    let (server, client, js) = provisioned().await?;
    let publisher = Publisher::new(client, PublisherConfig::default())?;
    let org = PublishContext::new("org-1")?;
    let gone = publisher.publish(&org, &user(40)).await?;
    let kept = publisher.publish(&org, &user(41)).await?;
    js.get_stream("AUTH_EVENTS")
        .await?
        .delete_message(gone.sequence)
        .await?;
    let out = tidings(
        &server.url(),
        &[
            "replay",
            "--type",
            "auth.user.created",
            "--from",
            "1h",
            "--format",
            "json",
        ],
        None,
    )
    .await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let lines = json_lines(&out)?;
    assert_eq!(lines.len(), 1, "{}", both(&out));
    assert_eq!(lines[0]["sequence"], json!(kept.sequence));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: the replay was asked to start at time"),
        "{err}"
    );
    assert!(err.contains("the range is truncated"), "{err}");
    Ok(())
}

/// `tidings lag monitor --once`: a group that does not handle its events
/// is reported (lag over the threshold, and its oldest event's eviction by
/// the 7-day max_age within the window asked for), on stdout and as JSON on
/// the NATS subject; a group that keeps up is not. Exit 1 with alerts.
#[tokio::test]
async fn lag_monitor_reports_the_lagging_group_only() -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let (server, client, js) = provisioned().await?;
    let stream = js.get_stream("AUTH_EVENTS").await?;
    for group in ["lagging", "healthy"] {
        stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some(group.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await?;
    }
    let publisher = Publisher::new(client.clone(), PublisherConfig::default())?;
    let org = PublishContext::new("org-1")?;
    for n in 50..53 {
        publisher.publish(&org, &user(n)).await?;
    }
    let healthy: jetstream::consumer::PullConsumer = stream
        .get_consumer("healthy")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut batch = healthy.fetch().max_messages(3).messages().await?;
    while let Some(message) = batch.next().await {
        message
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .double_ack()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut seen = client.subscribe("ops.alerts.lag").await?;
    client.flush().await?;
    let out = tidings(
        &server.url(),
        &[
            "lag",
            "monitor",
            "--once",
            "--profile",
            "dev",
            "--max-lag",
            "2",
            "--evict-within",
            "200h",
            "--nats-subject",
            "ops.alerts.lag",
        ],
        None,
    )
    .await?;
    assert_eq!(code(&out), 1, "{}", both(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", both(&out));
    assert!(lines[0].starts_with("tidings.lag.events: consumer group lagging on AUTH_EVENTS has 3 unhandled events (threshold 2)"), "{text}");
    assert!(
        lines[1].starts_with("tidings.lag.max_age: consumer group lagging on AUTH_EVENTS"),
        "{text}"
    );
    assert!(
        lines[1].contains("of the stream's max_age 604800s"),
        "{text}"
    );
    assert!(!text.contains("healthy"), "{text}");
    let message = tokio::time::timeout(Duration::from_secs(10), seen.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no alert on the subject"))?;
    let alert: Value = serde_json::from_slice(&message.payload)?;
    assert_eq!(alert["kind"], json!("tidings.lag.events"));
    assert_eq!(alert["count"], json!(3));
    Ok(())
}
