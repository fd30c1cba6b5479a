//! End-to-end tests of `tidings dlq` against a real nats-server: dead
//! letters made the real way (a consumer group whose handler fails), then
//! the binary lists, shows, redrives, purges and monitors them.
use std::borrow::Cow;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidings::dlq::{ops, DeadLetter, DeadLetterKind, DlqError, DlqFilter};
use tidings::streams::{self, ApplyOptions};
use tidings::subscribe::StartAt;
use tidings::testing::{eventually, NatsServer};
use tidings::{DomainEvent, Event, PublishContext, Publisher, PublisherConfig, Subscriber};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The handlers' error: long enough to be cut in `ls`.
fn failure_text() -> String {
    format!("database down: {}", "x".repeat(100))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UserCreated {
    user_id: String,
    email: String,
}

impl DomainEvent for UserCreated {
    const EVENT_TYPE: &'static str = "auth.user.created";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"user_id": {"type": "string"}, "email": {"type": "string"}},
        "required": ["user_id", "email"]
    }"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/test/user.created.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("user_id");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.user_id))
    }
}

impl tidings::upcast::ReadAnyVersion for UserCreated {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UserDeactivated {
    user_id: String,
    reason: String,
}

impl DomainEvent for UserDeactivated {
    const EVENT_TYPE: &'static str = "auth.user.deactivated";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"user_id": {"type": "string"}, "reason": {"type": "string"}},
        "required": ["user_id", "reason"]
    }"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/test/user.deactivated.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("user_id");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.user_id))
    }
}

impl tidings::upcast::ReadAnyVersion for UserDeactivated {}

/// A server with the registry's streams.
async fn provisioned() -> anyhow::Result<(NatsServer, async_nats::Client, jetstream::Context)> {
    let server = NatsServer::launch().await?;
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    let registry = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas"));
    streams::apply(
        &js,
        &streams::load_streams(registry, "dev")?,
        ApplyOptions::default(),
    )
    .await?;
    Ok((server, client, js))
}

/// Every dead letter, oldest first.
async fn all(js: &jetstream::Context) -> anyhow::Result<Vec<DeadLetter>> {
    Ok(ops::list(js, &DlqFilter::default(), None).await?)
}

struct Fixture {
    server: NatsServer,
    client: async_nats::Client,
    js: jetstream::Context,
}

/// Five dead letters, made by two groups whose handlers always fail (one
/// delivery each):
///
/// | group | type | org |
/// |---|---|---|
/// | analytics | auth.user.created | org-1, org-2 |
/// | analytics | auth.user.deactivated | org-1 |
/// | billing | auth.user.created | org-1, org-2 |
///
/// With `poison`, also an unreadable message on `auth.user.created.org-3.u-9`,
/// dead-lettered at once by both groups (seven in all).
async fn fixture(poison: bool) -> anyhow::Result<Fixture> {
    let (server, client, js) = provisioned().await?;
    let publisher = Publisher::new(client.clone(), PublisherConfig::default())?;
    for (org, user) in [("org-1", "u-1"), ("org-2", "u-2")] {
        let event = UserCreated {
            user_id: user.into(),
            email: format!("{user}@example.com"),
        };
        publisher
            .publish(&PublishContext::new(org)?, &event)
            .await?;
    }
    let event = UserDeactivated {
        user_id: "u-1".into(),
        reason: "left".into(),
    };
    publisher
        .publish(&PublishContext::new("org-1")?, &event)
        .await?;
    if poison {
        js.publish("auth.user.created.org-3.u-9", "this is not an event".into())
            .await?
            .await?;
    }
    let config = || tidings::SubscriberConfig {
        max_deliveries: 1,
        start_at: StartAt::All,
        pull_expires: Duration::from_millis(300),
        shutdown_deadline: Duration::from_secs(5),
        ..Default::default()
    };
    let mut analytics = Subscriber::new(client.clone(), "analytics", config())?;
    analytics
        .handle::<UserCreated, _>(|_: Event<UserCreated>| async { Err(failure_text()) })
        .handle::<UserDeactivated, _>(|_: Event<UserDeactivated>| async { Err(failure_text()) });
    let mut billing = Subscriber::new(client.clone(), "billing", config())?;
    billing.handle::<UserCreated, _>(|_: Event<UserCreated>| async { Err(failure_text()) });
    let running = [analytics.start().await?, billing.start().await?];
    let expected = if poison { 7 } else { 5 };
    eventually(
        "the dead letters are in DLQ_EVENTS",
        Duration::from_secs(30),
        || async {
            let n = all(&js).await?.len();
            if n == expected {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{n} of {expected} dead letters"))
            }
        },
    )
    .await?;
    for r in running {
        r.shutdown().await;
    }
    Ok(Fixture { server, client, js })
}

/// Runs `tidings dlq ARGS` against `server` (stdin not a terminal).
async fn dlq(server: &str, args: &[&str]) -> anyhow::Result<Output> {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("dlq")
        .arg("--server")
        .arg(server)
        .args(args)
        .env_remove("NATS_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output();
    Ok(tokio::time::timeout(Duration::from_secs(60), run).await??)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn both(o: &Output) -> String {
    format!("stdout:\n{}stderr:\n{}", stdout(o), stderr(o))
}

/// `ls --format json` rows.
async fn ls_json(server: &str, filters: &[&str]) -> anyhow::Result<Vec<Value>> {
    let mut args = vec!["ls", "--format", "json"];
    args.extend_from_slice(filters);
    let out = dlq(server, &args).await?;
    anyhow::ensure!(code(&out) == 0, "ls {filters:?}: {}", both(&out));
    match serde_json::from_slice(&out.stdout)? {
        Value::Array(rows) => Ok(rows),
        other => anyhow::bail!("not an array: {other}"),
    }
}

fn header_of(headers: &async_nats::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.as_str().to_string())
}

fn rfc3339(t: time::OffsetDateTime) -> anyhow::Result<String> {
    Ok(t.format(&time::format_description::well_known::Rfc3339)?)
}

#[tokio::test]
async fn ls_lists_one_row_per_dead_letter_in_text_and_json_with_filters() -> anyhow::Result<()> {
    let f = fixture(false).await?;
    let url = f.server.url();

    let out = dlq(&url, &["ls"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    for column in [
        "SEQ",
        "STORED",
        "GROUP",
        "TYPE",
        "ORG",
        "DELIVERIES",
        "REASON",
        "LAST ERROR",
    ] {
        assert!(lines[0].contains(column), "{text}");
    }
    let first = all(&f.js).await?[0].dlq_sequence.to_string();
    assert!(lines[1].starts_with(&first), "{text}");
    assert!(
        text.contains("analytics") && text.contains("billing"),
        "{text}"
    );
    assert!(text.contains("auth.user.deactivated"), "{text}");
    assert!(text.contains("org-2"), "{text}");
    assert!(text.contains("exhausted"), "{text}");
    // The last error is cut in text...
    assert!(text.contains("database down: xxx"), "{text}");
    assert!(text.contains('…'), "{text}");
    assert!(!text.contains(&failure_text()), "{text}");

    // ...and whole in JSON.
    let rows = ls_json(&url, &[]).await?;
    assert_eq!(rows.len(), 5);
    for row in &rows {
        assert_eq!(row["error"], failure_text().as_str(), "{row}");
        assert_eq!(row["reason"], "exhausted");
        assert_eq!(row["deliveries"], 1);
        assert!(row["dlq_sequence"].as_u64().is_some(), "{row}");
        assert!(row["stored_at"].as_str().is_some(), "{row}");
        assert!(row["event_id"].as_str().is_some(), "{row}");
        assert_eq!(row["record"]["stream"], "AUTH_EVENTS");
    }

    let count = |filters: &'static [&'static str]| {
        let url = url.clone();
        async move { ls_json(&url, filters).await.map(|rows| rows.len()) }
    };
    assert_eq!(count(&["--group", "billing"]).await?, 2);
    assert_eq!(count(&["--type", "auth.user.deactivated"]).await?, 1);
    assert_eq!(count(&["--org", "org-2"]).await?, 2);
    assert_eq!(count(&["--group", "analytics", "--org", "org-1"]).await?, 2);
    let billing = ls_json(&url, &["--group", "billing"]).await?;
    assert!(billing.iter().all(|r| r["group"] == "billing"));

    let hour_ago = rfc3339(time::OffsetDateTime::now_utc() - time::Duration::hours(1))?;
    let in_an_hour = rfc3339(time::OffsetDateTime::now_utc() + time::Duration::hours(1))?;
    assert_eq!(
        ls_json(&url, &["--from", &hour_ago, "--until", &in_an_hour])
            .await?
            .len(),
        5
    );
    assert_eq!(ls_json(&url, &["--from", &in_an_hour]).await?.len(), 0);
    assert_eq!(ls_json(&url, &["--until", &hour_ago]).await?.len(), 0);
    let out = dlq(&url, &["ls", "--from", &in_an_hour]).await?;
    assert_eq!(stdout(&out), "no dead letters\n");

    let out = dlq(&url, &["ls", "--limit", "2"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert_eq!(stdout(&out).lines().count(), 3, "{}", both(&out));
    assert!(stderr(&out).contains("raise --limit"), "{}", both(&out));
    Ok(())
}

#[tokio::test]
async fn show_prints_the_record_and_the_event_or_the_raw_body_of_a_poison_message(
) -> anyhow::Result<()> {
    let f = fixture(true).await?;
    let url = f.server.url();
    let dead = all(&f.js).await?;
    let exhausted = dead
        .iter()
        .find(|d| {
            d.record
                .as_ref()
                .is_ok_and(|r| r.kind == DeadLetterKind::Exhausted && r.group == "analytics")
                && d.event_type().as_deref() == Some("auth.user.created")
                && d.organization() == Some("org-2")
        })
        .ok_or_else(|| anyhow::anyhow!("no exhausted dead letter"))?;
    let record = exhausted.record.clone()?;
    let event = exhausted.envelope()?;
    let seq = exhausted.dlq_sequence.to_string();

    let out = dlq(&url, &["show", &seq]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let text = stdout(&out);
    for expected in [
        format!("dead letter #{seq} in DLQ_EVENTS"),
        "reason          exhausted".to_string(),
        "group           analytics".to_string(),
        "deliveries      1".to_string(),
        "stream          AUTH_EVENTS".to_string(),
        format!("sequence        {}", record.sequence),
        "subject         auth.user.created.org-2.u-2".to_string(),
        "first failure".to_string(),
        "last failure".to_string(),
        "redrive count   0".to_string(),
        format!("error           {}", failure_text()),
        format!("id              {}", event.id),
        "type            auth.user.created".to_string(),
        "organizationid  org-2".to_string(),
        "schemaversion   1".to_string(),
        "\"user_id\": \"u-2\"".to_string(),
        "\"email\": \"u-2@example.com\"".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }

    let out = dlq(&url, &["show", &seq, "--format", "json"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let json: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["dlq_sequence"], exhausted.dlq_sequence);
    assert_eq!(json["record"]["reason"], "exhausted");
    assert_eq!(json["record"]["group"], "analytics");
    assert_eq!(json["record"]["error"], failure_text().as_str());
    assert_eq!(json["record"]["sequence"], record.sequence);
    assert_eq!(json["event"]["id"], event.id.to_string().as_str());
    assert_eq!(json["event"]["organizationid"], "org-2");
    assert_eq!(json["event"]["data"]["user_id"], "u-2");

    let poison = dead
        .iter()
        .find(|d| {
            d.record
                .as_ref()
                .is_ok_and(|r| r.kind == DeadLetterKind::Poison)
        })
        .ok_or_else(|| anyhow::anyhow!("no poison dead letter"))?;
    let seq = poison.dlq_sequence.to_string();
    let out = dlq(&url, &["show", &seq]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let text = stdout(&out);
    assert!(text.contains("reason          poison"), "{text}");
    assert!(text.contains("event (cannot be decoded)"), "{text}");
    assert!(text.contains("decode error"), "{text}");
    assert!(text.contains("raw body (20 bytes, lossy UTF-8)"), "{text}");
    assert!(text.contains("    this is not an event"), "{text}");
    let out = dlq(&url, &["show", &seq, "--format", "json"]).await?;
    let json: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["record"]["reason"], "poison");
    assert_eq!(json["body"], "this is not an event");
    assert!(json["decode_error"].as_str().is_some(), "{json}");
    assert!(json.get("event").is_none(), "{json}");

    let rows = ls_json(&url, &["--org", "org-3"]).await?;
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r["reason"] == "poison" && r["event_id"].is_null()));
    Ok(())
}

#[tokio::test]
async fn redrive_republishes_to_the_original_subject_and_removes_the_dead_letter(
) -> anyhow::Result<()> {
    let f = fixture(false).await?;
    let url = f.server.url();
    let dead = ops::list(
        &f.js,
        &DlqFilter {
            group: Some("analytics".into()),
            organization: Some(tidings::OrganizationId::new("org-2")?),
            ..Default::default()
        },
        None,
    )
    .await?;
    assert_eq!(dead.len(), 1);
    let dead = &dead[0];
    let record = dead.record.clone()?;
    let event_id = dead.envelope()?.id;
    let stream = f.js.get_stream("AUTH_EVENTS").await?;
    let msg_id = |headers: &async_nats::HeaderMap| {
        headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_string())
            .ok_or_else(|| anyhow::anyhow!("no Nats-Msg-Id"))
    };
    // The original is still stored (terminated, not deleted).
    let original_msg_id = msg_id(&stream.get_raw_message(record.sequence).await?.headers)?;

    let seq = dead.dlq_sequence.to_string();
    let out = dlq(&url, &["redrive", &seq, "--yes"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(
        stdout(&out).contains(&format!(
            "#{seq} redriven to auth.user.created.org-2.u-2 (AUTH_EVENTS #"
        )),
        "{}",
        both(&out)
    );
    assert!(stderr(&out).contains("redriven 1/1"), "{}", both(&out));

    let copy = stream
        .get_last_raw_message_by_subject(&record.subject)
        .await?;
    assert!(copy.sequence > record.sequence);
    let header = |name: &str| copy.headers.get(name).map(|v| v.as_str().to_string());
    assert_eq!(header("Tidings-Redrive-Count").as_deref(), Some("1"));
    let new_msg_id = msg_id(&copy.headers)?;
    assert_ne!(new_msg_id, original_msg_id);
    assert_ne!(Some(new_msg_id), header_of(&dead.headers, "Nats-Msg-Id"));
    assert!(header("Tidings-Dlq-Group").is_none());
    assert_eq!(copy.payload, dead.body);
    assert_eq!(
        tidings::envelope::Envelope::decode(&copy.payload)?.id,
        event_id
    );
    assert!(matches!(
        ops::get(&f.js, dead.dlq_sequence).await,
        Err(DlqError::NotFound(_))
    ));
    assert_eq!(all(&f.js).await?.len(), 4);

    // A gone sequence is a usage error, and nothing is done.
    let out = dlq(&url, &["redrive", &seq, "--yes"]).await?;
    assert_eq!(code(&out), 2, "{}", both(&out));
    assert!(
        stderr(&out).contains(&format!("has no dead letter #{seq}")),
        "{}",
        both(&out)
    );

    // By filter: billing's two.
    let out = dlq(&url, &["redrive", "--all", "--group", "billing", "--yes"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert_eq!(stdout(&out).lines().count(), 2, "{}", both(&out));
    assert!(stderr(&out).contains("redriven 2/2"), "{}", both(&out));
    let left = all(&f.js).await?;
    assert_eq!(left.len(), 2);
    assert!(left
        .iter()
        .all(|d| d.record.as_ref().is_ok_and(|r| r.group == "analytics")));
    Ok(())
}

#[tokio::test]
async fn purge_asks_for_yes_and_refuses_without_it_when_stdin_is_not_a_terminal(
) -> anyhow::Result<()> {
    let f = fixture(false).await?;
    let url = f.server.url();

    let out = dlq(&url, &["purge", "--all", "--group", "billing"]).await?;
    assert_eq!(code(&out), 2, "{}", both(&out));
    assert!(
        stderr(&out).contains("refusing to purge 2 dead letters")
            && stderr(&out).contains("pass --yes"),
        "{}",
        both(&out)
    );
    assert_eq!(all(&f.js).await?.len(), 5);

    let first = all(&f.js).await?[0].dlq_sequence.to_string();
    let out = dlq(&url, &["purge", &first, "--yes"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert_eq!(stdout(&out), format!("#{first} purged\n"));
    assert!(stderr(&out).contains("purged 1/1"), "{}", both(&out));

    let out = dlq(&url, &["purge", "--all", "--yes"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(stderr(&out).contains("purged 4/4"), "{}", both(&out));
    assert!(all(&f.js).await?.is_empty());

    let out = dlq(&url, &["purge", "--all", "--yes"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(stderr(&out).contains("nothing to purge"), "{}", both(&out));
    Ok(())
}

/// A one-route HTTP server on 127.0.0.1: answers 200 to each request and
/// hands on its request line and body.
async fn webhook_server() -> anyhow::Result<(u16, mpsc::UnboundedReceiver<(String, Value)>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let body_start = loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..body_start]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while request.len() < body_start + length {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let body = serde_json::from_slice(&request[body_start..body_start + length])
                    .unwrap_or(Value::Null);
                let line = head.lines().next().unwrap_or_default().to_string();
                let _ = tx.send((line, body));
            });
        }
    });
    Ok((port, rx))
}

#[tokio::test]
async fn monitor_once_alerts_through_tracing_nats_and_a_webhook_and_exits_1() -> anyhow::Result<()>
{
    let f = fixture(false).await?;
    let url = f.server.url();
    let mut alerts = f.client.subscribe("ops.alerts.test").await?;
    f.client.flush().await?;
    let (port, mut hooks) = webhook_server().await?;
    let hook = format!("http://127.0.0.1:{port}/hooks/dlq");

    // analytics: created 2, deactivated 1; billing: created 2.
    let out = dlq(
        &url,
        &[
            "monitor",
            "--once",
            "--threshold",
            "1",
            "--nats-subject",
            "ops.alerts.test",
            "--webhook",
            &hook,
        ],
    )
    .await?;
    assert_eq!(code(&out), 1, "{}", both(&out));
    assert_eq!(
        stdout(&out),
        "analytics  auth.user.created  2\nanalytics  auth.user.deactivated  1\nbilling  auth.user.created  2\n"
    );
    let err = stderr(&out);
    assert_eq!(
        err.matches("dead letters above threshold").count(),
        2,
        "{err}"
    );
    assert!(err.contains("2 alerts raised (threshold 1)"), "{err}");

    let check = |alert: &Value| {
        assert_eq!(alert["kind"], "tidings.dlq.threshold", "{alert}");
        assert_eq!(alert["event_type"], "auth.user.created", "{alert}");
        assert_eq!(alert["count"], 2, "{alert}");
        assert_eq!(alert["threshold"], 1, "{alert}");
        assert!(alert["since"].as_str().is_some(), "{alert}");
    };
    let mut groups = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(10), alerts.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("alert subscription ended"))?;
        let alert: Value = serde_json::from_slice(&message.payload)?;
        check(&alert);
        groups.push(alert["group"].as_str().unwrap_or_default().to_string());
    }
    groups.sort();
    assert_eq!(groups, ["analytics", "billing"]);
    let mut groups = Vec::new();
    for _ in 0..2 {
        let (line, alert) = tokio::time::timeout(Duration::from_secs(10), hooks.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("webhook server stopped"))?;
        assert_eq!(line, "POST /hooks/dlq HTTP/1.1");
        check(&alert);
        groups.push(alert["group"].as_str().unwrap_or_default().to_string());
    }
    groups.sort();
    assert_eq!(groups, ["analytics", "billing"]);

    // Under the threshold: no alert, exit 0; a group filter narrows.
    let out = dlq(&url, &["monitor", "--once", "--threshold", "2"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(stderr(&out).contains("no group and event type above 2"));
    let out = dlq(
        &url,
        &[
            "monitor",
            "--once",
            "--threshold",
            "1",
            "--group",
            "billing",
        ],
    )
    .await?;
    assert_eq!(code(&out), 1, "{}", both(&out));
    assert_eq!(stdout(&out), "billing  auth.user.created  2\n");
    Ok(())
}

#[tokio::test]
async fn monitor_without_once_watches_until_interrupted() -> anyhow::Result<()> {
    let f = fixture(false).await?;
    let mut alerts = f.client.subscribe("ops.alerts.watch").await?;
    f.client.flush().await?;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["dlq", "--server", &f.server.url(), "monitor"])
        .args([
            "--threshold",
            "1",
            "--interval",
            "200ms",
            "--repeat-after",
            "1h",
        ])
        .args(["--group", "billing", "--nats-subject", "ops.alerts.watch"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let message = tokio::time::timeout(Duration::from_secs(20), alerts.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("alert subscription ended"))?;
    let alert: Value = serde_json::from_slice(&message.payload)?;
    assert_eq!(alert["group"], "billing");
    assert_eq!(alert["count"], 2);

    // Ctrl-C stops it cleanly.
    let pid = child
        .id()
        .ok_or_else(|| anyhow::anyhow!("the monitor already exited"))?;
    let sent = tokio::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .await?;
    assert!(sent.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await??;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("watching DLQ_EVENTS on nats://"), "{err}");
    assert!(
        err.contains("alerts to tracing, nats subject ops.alerts.watch"),
        "{err}"
    );
    assert_eq!(
        err.matches("dead letters above threshold").count(),
        1,
        "{err}"
    );
    assert!(!err.contains("connected successfully"), "{err}");
    assert!(err.trim_end().ends_with("stopped"), "{err}");
    Ok(())
}

/// Publishes `n` forged dead letters of group `ops` (a valid failure record
/// for a `auth.user.created` event of org-1), then one without a record.
async fn forge(js: &jetstream::Context, n: u64) -> anyhow::Result<()> {
    for i in 0..n {
        let mut headers = async_nats::HeaderMap::new();
        tidings::dlq::FailureRecord {
            stream: "AUTH_EVENTS".into(),
            sequence: 1_000 + i,
            subject: format!("auth.user.created.org-1.u-{i}"),
            group: "ops".into(),
            deliveries: 5,
            kind: DeadLetterKind::Exhausted,
            error: "forged".into(),
            first_failure: None,
            last_failure: time::OffsetDateTime::now_utc(),
            redrive_count: 0,
        }
        .write(&mut headers);
        js.publish_with_headers(
            format!("dlq.ops.auth.user.created.org-1.{}", 1_000 + i),
            headers,
            format!("{{\"n\": {i}}}").into(),
        )
        .await?
        .await?;
    }
    js.publish("dlq.ops.auth.user.created.org-1.999999", "no record".into())
        .await?
        .await?;
    Ok(())
}

#[tokio::test]
async fn long_operations_report_progress_and_one_failure_does_not_stop_the_rest(
) -> anyhow::Result<()> {
    let (server, _client, js) = provisioned().await?;
    let url = server.url();
    forge(&js, 250).await?;

    let out = dlq(&url, &["ls", "--format", "json", "--org", "org-1"]).await?;
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout)?;
    assert_eq!(rows.len(), 251);
    let last = &rows[250];
    assert!(
        last["record_error"]
            .as_str()
            .is_some_and(|e| e.contains("not a Tidings dead letter")),
        "{last}"
    );
    assert_eq!(last["group"], "ops");

    let out = dlq(&url, &["redrive", "--all", "--group", "ops", "--yes"]).await?;
    assert_eq!(code(&out), 1, "{}", both(&out));
    assert_eq!(stdout(&out).lines().count(), 250);
    let err = stderr(&out);
    let progress: Vec<&str> = err.lines().filter(|l| l.starts_with("redriven")).collect();
    assert_eq!(
        progress,
        [
            "redriven 100/251",
            "redriven 200/251",
            "redriven 250/251, 1 failed"
        ],
        "{}",
        both(&out)
    );
    assert!(
        stderr(&out).contains("error: DLQ_EVENTS #251: not a Tidings dead letter"),
        "{}",
        both(&out)
    );
    let left = all(&js).await?;
    assert_eq!(left.len(), 1);
    assert_eq!(
        js.get_stream("AUTH_EVENTS")
            .await?
            .info()
            .await?
            .state
            .messages,
        250
    );

    // Purge takes what redrive could not.
    let out = dlq(&url, &["purge", "--all", "--yes"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(stderr(&out).contains("purged 1/1"), "{}", both(&out));
    Ok(())
}

#[tokio::test]
async fn bad_input_exits_2_with_a_message_that_names_it() -> anyhow::Result<()> {
    // Before the streams exist.
    let server = NatsServer::launch().await?;
    let url = server.url();
    let out = dlq(&url, &["ls"]).await?;
    assert_eq!(code(&out), 2, "{}", both(&out));
    assert!(
        stderr(&out).contains("DLQ_EVENTS does not exist"),
        "{}",
        both(&out)
    );
    drop(server);

    let (server, _client, _js) = provisioned().await?;
    let url = server.url();
    let cases: [(&[&str], &str); 9] = [
        (
            &["ls", "--from", "yesterday"],
            "--from \"yesterday\" is not an RFC 3339 time",
        ),
        (
            &["ls", "--until", "2025-13-01T00:00:00Z"],
            "--until \"2025-13-01T00:00:00Z\" is not an RFC 3339 time",
        ),
        (
            &["ls", "--type", "auth.user"],
            "--type: event type \"auth.user\"",
        ),
        (
            &["ls", "--group", "a.b"],
            "--group: invalid consumer group \"a.b\"",
        ),
        (&["ls", "--org", "org 1"], "--org: invalid organization id"),
        (&["show", "999"], "has no dead letter #999"),
        (&["purge", "999", "--yes"], "has no dead letter #999"),
        (
            &["purge", "3", "--group", "billing"],
            "with sequences, name exactly",
        ),
        (
            &["monitor", "--once", "--webhook", "ftp://x"],
            "a webhook URL starts with https://",
        ),
    ];
    for (args, expected) in cases {
        let out = dlq(&url, args).await?;
        assert_eq!(code(&out), 2, "{args:?}: {}", both(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: expected {expected:?} in {}",
            both(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", both(&out));
    }

    let out = dlq("htp://127.0.0.1:4222", &["ls"]).await?;
    assert_eq!(code(&out), 2, "{}", both(&out));
    assert!(
        stderr(&out).contains("\"htp://127.0.0.1:4222\" is not a NATS server URL"),
        "{}",
        both(&out)
    );
    // Nothing listens on port 1.
    let out = dlq("nats://127.0.0.1:1", &["ls"]).await?;
    assert_eq!(code(&out), 2, "{}", both(&out));
    assert!(
        stderr(&out).contains("cannot reach NATS at nats://127.0.0.1:1"),
        "{}",
        both(&out)
    );
    Ok(())
}

#[tokio::test]
async fn redrive_group_only_names_the_failing_group_and_purge_refuses_the_flag(
) -> anyhow::Result<()> {
    let f = fixture(false).await?;
    let url = f.server.url();
    let dead = ops::list(
        &f.js,
        &DlqFilter {
            group: Some("analytics".into()),
            organization: Some(tidings::OrganizationId::new("org-2")?),
            ..Default::default()
        },
        None,
    )
    .await?;
    assert_eq!(dead.len(), 1);
    let record = dead[0].record.clone()?;
    let seq = dead[0].dlq_sequence.to_string();

    let out = dlq(&url, &["purge", &seq, "--group-only", "--yes"]).await?;
    assert_eq!(code(&out), 2, "{}", both(&out));
    assert!(
        stderr(&out).contains("--group-only applies to redrive"),
        "{}",
        both(&out)
    );
    assert!(ops::get(&f.js, dead[0].dlq_sequence).await.is_ok());

    let out = dlq(&url, &["redrive", &seq, "--group-only", "--yes"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert!(
        stdout(&out).contains(", for group analytics only)"),
        "{}",
        both(&out)
    );
    let copy =
        f.js.get_stream("AUTH_EVENTS")
            .await?
            .get_last_raw_message_by_subject(&record.subject)
            .await?;
    assert_eq!(
        header_of(&copy.headers, "Tidings-Redrive-Group").as_deref(),
        Some("analytics")
    );
    assert_eq!(
        header_of(&copy.headers, "Nats-Msg-Id"),
        Some(tidings::envelope::redrive_msg_id(
            dead[0].envelope()?.id,
            dead[0].dlq_sequence
        ))
    );
    Ok(())
}

/// Runs `tidings stats ARGS` against `server` with the repository's registry.
async fn stats(server: &str, args: &[&str]) -> anyhow::Result<Output> {
    let registry = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["stats", "--server", server, "--schemas", registry])
        .args(args)
        .env_remove("NATS_URL")
        .stdin(Stdio::null())
        .output();
    Ok(tokio::time::timeout(Duration::from_secs(60), run).await??)
}

/// `tidings stats`: a stream's contents, each group's lag in events and as
/// the age of its oldest unhandled event (the first event published after
/// the groups stopped, read back by sequence), the time left before
/// `max_age` evicts it, and the dead letters per group and type.
#[tokio::test]
async fn stats_shows_each_groups_lag_its_oldest_unhandled_event_and_the_dead_letters(
) -> anyhow::Result<()> {
    let f = fixture(false).await?;
    let url = f.server.url();
    let publisher = Publisher::new(f.client.clone(), PublisherConfig::default())?;
    let ctx = PublishContext::new("org-1")?;
    let behind = publisher
        .publish(
            &ctx,
            &UserCreated {
                user_id: "u-7".into(),
                email: "u-7@example.com".into(),
            },
        )
        .await?;
    publisher
        .publish(
            &ctx,
            &UserDeactivated {
                user_id: "u-7".into(),
                reason: "left".into(),
            },
        )
        .await?;

    let out = stats(&url, &["--profile", "dev", "--format", "json"]).await?;
    assert_eq!(code(&out), 0, "{}", both(&out));
    let report: Value = serde_json::from_str(&stdout(&out))?;
    let auth = report["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["stream"] == "AUTH_EVENTS"))
        .expect("AUTH_EVENTS in the report");
    assert_eq!(auth["messages"], 5, "{auth:#}");
    let max_age = auth["max_age_seconds"]
        .as_f64()
        .expect("dev streams have a max_age");
    let group = |name: &str| {
        auth["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["group"] == name))
            .unwrap_or_else(|| panic!("group {name} in {auth:#}"))
            .clone()
    };
    // analytics handles both types: both new events wait for it; billing
    // only user.created.
    let analytics = group("analytics");
    assert_eq!(analytics["lag"], 2, "{analytics:#}");
    assert_eq!(analytics["pending"], 2, "{analytics:#}");
    assert_eq!(analytics["oldest_unhandled"]["sequence"], behind.sequence);
    let age = analytics["oldest_unhandled"]["age_seconds"]
        .as_f64()
        .expect("an age");
    let left = analytics["oldest_unhandled"]["evicted_in_seconds"]
        .as_f64()
        .expect("a time to eviction");
    assert!(age < 60.0, "published just now: {age}");
    assert!(
        (max_age - age - left).abs() < 1.0,
        "age {age} + time left {left} = max_age {max_age}"
    );
    // The bytes from it on: the two events of five, at the mean size, of
    // the 1 GiB that `discard: old` evicts at.
    let bytes = auth["bytes"].as_u64().expect("bytes");
    let from = analytics["oldest_unhandled"]["bytes_from"]
        .as_u64()
        .expect("bytes from it on");
    assert_eq!(from, bytes * 2 / 5, "{analytics:#}");
    assert_eq!(
        analytics["oldest_unhandled"]["byte_headroom"].as_u64(),
        Some((1u64 << 30) - from),
        "{analytics:#}"
    );
    let billing = group("billing");
    assert_eq!(billing["lag"], 1, "{billing:#}");
    assert_eq!(billing["oldest_unhandled"]["sequence"], behind.sequence);

    let mut dead: Vec<(String, String, u64)> = report["dead_letters"]
        .as_array()
        .expect("dead letters")
        .iter()
        .map(|d| {
            (
                d["group"].as_str().unwrap_or_default().to_string(),
                d["event_type"].as_str().unwrap_or_default().to_string(),
                d["count"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    dead.sort();
    assert_eq!(
        dead,
        [
            ("analytics".into(), "auth.user.created".into(), 2),
            ("analytics".into(), "auth.user.deactivated".into(), 1),
            ("billing".into(), "auth.user.created".into(), 2),
        ]
    );

    let text = stats(&url, &["--profile", "dev"]).await?;
    assert_eq!(code(&text), 0, "{}", both(&text));
    let text = stdout(&text);
    let analytics_row = text
        .lines()
        .find(|l| l.starts_with("analytics ") && l.contains("AUTH_EVENTS"))
        .unwrap_or_else(|| panic!("no analytics row in:\n{text}"));
    let cells: Vec<&str> = analytics_row.split_whitespace().collect();
    assert_eq!(cells[2], "2", "lag column of {analytics_row:?}");
    assert!(text.contains("DLQ GROUP"), "{text}");

    let missing = stats(&url, &["--profile", "no-such-profile"]).await?;
    assert_eq!(code(&missing), 2, "{}", both(&missing));
    assert!(
        stderr(&missing).contains("no-such-profile"),
        "{}",
        both(&missing)
    );
    Ok(())
}
