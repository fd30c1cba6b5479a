//! The wire contract of docs/wire-format.md, proven with a client that is
//! not Tidings: `tests/interop/tidings_client.py` (Python, nats-py, written
//! from the document alone) publishes events a Tidings consumer group
//! handles, and reads events Tidings published, through a real nats-server.
//! The interpreter comes from `scripts/python-nats` (which `scripts/test`
//! runs), or `TIDINGS_PYTHON`.
mod support;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use support::{
    dead_letters, fast_config, publisher_with_ce_headers, settled, setup, take, UserCreated,
};
use tidings::{Event, PublishContext, Subscriber};
use tokio::sync::mpsc;

/// The Python with nats-py: `TIDINGS_PYTHON`, else the one
/// `scripts/python-nats` installed under `.tools/`.
fn python() -> anyhow::Result<PathBuf> {
    if let Some(python) = std::env::var_os("TIDINGS_PYTHON") {
        return Ok(python.into());
    }
    let installed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/python-nats-2.16.0/bin/python");
    anyhow::ensure!(
        installed.exists(),
        "no Python with nats-py: run scripts/python-nats (scripts/test does) or set TIDINGS_PYTHON"
    );
    Ok(installed)
}

/// Runs the Python client with `args` and returns the JSON line it prints.
async fn client(args: &[&str]) -> anyhow::Result<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/tidings_client.py");
    let mut command = tokio::process::Command::new(python()?);
    command.arg(script).args(args).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .map_err(|_| anyhow::anyhow!("the Python client did not finish within 60 s: {args:?}"))??;
    anyhow::ensure!(
        output.status.success(),
        "the Python client failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// A group that reports each `UserCreated` it handles.
async fn reporting_group(
    client: async_nats::Client,
    group: &str,
) -> anyhow::Result<(
    tidings::subscribe::Running,
    mpsc::UnboundedReceiver<Event<UserCreated>>,
)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(client, group, fast_config())?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event);
            Ok::<(), Infallible>(())
        }
    });
    Ok((subscriber.start().await?, rx))
}

#[tokio::test]
async fn an_event_published_by_a_python_client_is_handled_by_a_tidings_group_once(
) -> anyhow::Result<()> {
    let (server, client_conn, js, _publisher) = setup().await?;
    let (running, mut rx) = reporting_group(client_conn, "interop").await?;
    let url = server.url();
    let data = json!({"user_id": "u-py", "email": "py@example.com", "display_name": "From Python"});
    let data = data.to_string();
    let args = [
        "publish",
        "--url",
        &url,
        "--type",
        "auth.user.created",
        "--org",
        "org-py",
        "--key",
        "u-py",
        "--version",
        "1",
        "--data",
        &data,
    ];
    let published = client(&args).await?;
    assert_eq!(published["stream"], "AUTH_EVENTS", "{published}");
    assert_eq!(published["subject"], "auth.user.created.org-py.u-py");
    assert_eq!(published["duplicate"], false);
    let id = published["id"].as_str().unwrap_or_default().to_string();

    // The caller's retry under the same id: answered duplicate, not stored.
    let mut retry = args.to_vec();
    retry.extend(["--id", &id]);
    let retried = client(&retry).await?;
    assert_eq!(retried["duplicate"], true, "{retried}");
    assert_eq!(retried["seq"], published["seq"]);

    let handled = take(&mut rx, 1).await?;
    let event = &handled[0];
    assert_eq!(event.meta.event_id.to_string(), id);
    assert_eq!(event.meta.organization_id.as_str(), "org-py");
    assert_eq!(event.meta.entity_key.as_deref(), Some("u-py"));
    assert_eq!(event.meta.schema_version, 1);
    assert_eq!(event.meta.source, "/python/interop");
    assert_eq!(event.payload.email, "py@example.com");
    assert_eq!(event.payload.display_name, "From Python");
    settled(&js, "AUTH_EVENTS", "interop").await?;
    assert!(rx.try_recv().is_err(), "handled once");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_python_event_breaking_the_contract_is_dead_lettered_not_handled() -> anyhow::Result<()> {
    let (server, client_conn, js, _publisher) = setup().await?;
    let (running, mut rx) = reporting_group(client_conn, "interop").await?;
    let url = server.url();
    // A producer that skipped validation: `email` is required by
    // auth.user.created v1.
    let data = json!({"user_id": "u-1", "display_name": "No email"}).to_string();
    client(&[
        "publish",
        "--url",
        &url,
        "--type",
        "auth.user.created",
        "--org",
        "org-a",
        "--key",
        "u-1",
        "--version",
        "1",
        "--data",
        &data,
    ])
    .await?;
    let dead = dead_letters(&js, 1).await?;
    let record = dead[0]
        .record
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(record.group, "interop");
    assert!(
        record.error.contains("email"),
        "the reason names the missing property: {}",
        record.error
    );
    settled(&js, "AUTH_EVENTS", "interop").await?;
    assert!(
        rx.try_recv().is_err(),
        "an invalid payload is never handled"
    );
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_event_published_by_tidings_reads_as_the_document_says_in_python() -> anyhow::Result<()>
{
    let (server, client_conn, _js, _) = setup().await?;
    // With the optional `ce-` headers, so that the page's account of them
    // is checked too.
    let publisher = publisher_with_ce_headers(&client_conn)?;
    let event = UserCreated::numbered(7);
    let published = publisher
        .publish(&PublishContext::new("org-1")?, &event)
        .await?;
    let read = client(&[
        "read",
        "--url",
        &server.url(),
        "--filter",
        "auth.user.created.org-1.>",
    ])
    .await?;
    let id = published.event_id.to_string();
    assert_eq!(read["subject"], "auth.user.created.org-1.u-7");
    let headers = &read["headers"];
    assert_eq!(headers["Nats-Msg-Id"], id.as_str(), "{headers}");
    assert_eq!(headers["content-type"], "application/cloudevents+json");
    assert_eq!(headers["ce-type"], "auth.user.created");
    assert_eq!(headers["ce-id"], id.as_str());
    assert_eq!(headers["ce-organizationid"], "org-1");
    let body = &read["event"];
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["type"], "auth.user.created");
    assert_eq!(body["source"], "/tidings/auth");
    assert_eq!(body["datacontenttype"], "application/json");
    assert_eq!(body["subject"], "u-7");
    assert_eq!(body["organizationid"], "org-1");
    assert_eq!(body["schemaversion"], 1);
    assert!(
        body["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    assert_eq!(body["data"], serde_json::to_value(&event)?);
    Ok(())
}
