//! Shared by the end-to-end tests: a test event type and stream set-up.
#![allow(dead_code)]

use std::borrow::Cow;
use std::path::Path;

use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use tidings::streams::{self, ApplyOptions, StreamPlan};
use tidings::DomainEvent;

/// A hand-written event type with an inline schema, so these tests do not
/// depend on the generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCreated {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
}

impl DomainEvent for UserCreated {
    const EVENT_TYPE: &'static str = "auth.user.created";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://schemas.tidings.dev/test/user.created.v1.json",
        "type": "object",
        "properties": {
            "user_id": {"type": "string", "minLength": 1},
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "display_name": {"type": "string", "minLength": 1, "maxLength": 120}
        },
        "required": ["user_id", "email", "display_name"]
    }"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/test/user.created.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("user_id");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.user_id))
    }
}

impl tidings::upcast::ReadAnyVersion for UserCreated {}

impl UserCreated {
    pub fn numbered(n: usize) -> Self {
        Self {
            user_id: format!("u-{n}"),
            email: format!("user{n}@example.com"),
            display_name: format!("User {n}"),
        }
    }
}

/// The repository's registry directory.
pub fn registry_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))
}

/// The first example of `E`'s schema, read into the generated type.
pub fn example<E: DomainEvent + serde::de::DeserializeOwned>() -> anyhow::Result<E> {
    let (service, name) = E::EVENT_TYPE
        .split_once('.')
        .ok_or_else(|| anyhow::anyhow!("{} has no service", E::EVENT_TYPE))?;
    let path = registry_dir()
        .join(service)
        .join(format!("{name}.v{}.json", E::SCHEMA_VERSION));
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let example = schema["examples"][0].clone();
    anyhow::ensure!(!example.is_null(), "{} has no example", path.display());
    Ok(serde_json::from_value(example)?)
}

/// Calls `$each!(Type)` for the latest generated type of every event type
/// of the repository's registry, service by service.
#[allow(unused_macros)]
macro_rules! every_latest_type {
    ($each:ident) => {
        $each!(events::auth::UserCreated);
        $each!(events::auth::UserUpdated);
        $each!(events::auth::OrganizationCreated);
        $each!(events::catalog::ProductCreated);
        $each!(events::catalog::ProductUpdated);
        $each!(events::ddmrp::BufferUpdated);
        $each!(events::ddmrp::BufferZoneChanged);
        $each!(events::execution::OrderReleased);
        $each!(events::execution::OrderCompleted);
        $each!(events::analytics::ReportGenerated);
        $each!(events::ai_agent::RecommendationCreated);
        $each!(events::ai_agent::RecommendationAccepted);
    };
}

/// Provisions every stream of the repository's registry for a profile.
pub async fn provision(js: &jetstream::Context, profile: &str) -> anyhow::Result<Vec<StreamPlan>> {
    let specs = streams::load_streams(registry_dir(), profile)?;
    Ok(streams::apply(js, &specs, ApplyOptions::default()).await?)
}

/// A second hand-written type in the same stream, keyed by the same user,
/// for groups that handle several types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDeactivated {
    pub user_id: String,
    pub reason: String,
}

impl DomainEvent for UserDeactivated {
    const EVENT_TYPE: &'static str = "auth.user.deactivated";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "user_id": {"type": "string", "minLength": 1},
            "reason": {"type": "string"}
        },
        "required": ["user_id", "reason"]
    }"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/test/user.deactivated.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("user_id");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.user_id))
    }
}

impl tidings::upcast::ReadAnyVersion for UserDeactivated {}

/// Subscriber settings for tests: short ack wait and backoff, so that
/// redeliveries happen within a test's time.
pub fn fast_config() -> tidings::SubscriberConfig {
    tidings::SubscriberConfig {
        ack_wait: std::time::Duration::from_secs(2),
        backoff: tidings::subscribe::Backoff {
            initial: std::time::Duration::from_millis(50),
            factor: 2.0,
            max: std::time::Duration::from_millis(400),
            jitter: false,
        },
        pull_expires: std::time::Duration::from_millis(300),
        shutdown_deadline: std::time::Duration::from_secs(10),
        start_at: tidings::subscribe::StartAt::All,
        ..Default::default()
    }
}

/// The state of a group's consumer on a stream.
pub async fn consumer_info(
    js: &jetstream::Context,
    stream: &str,
    group: &str,
) -> anyhow::Result<jetstream::consumer::Info> {
    Ok(js.get_stream(stream).await?.consumer_info(group).await?)
}

/// Waits until the group has settled every message of the stream: nothing
/// pending, nothing awaiting an ack.
pub async fn settled(js: &jetstream::Context, stream: &str, group: &str) -> anyhow::Result<()> {
    let last = js
        .get_stream(stream)
        .await?
        .info()
        .await?
        .state
        .last_sequence;
    tidings::testing::eventually(
        "the consumer group settles every message",
        std::time::Duration::from_secs(20),
        || async {
            let info = consumer_info(js, stream, group).await?;
            if info.num_pending == 0
                && info.num_ack_pending == 0
                && info.ack_floor.stream_sequence >= last
            {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "pending {}, awaiting ack {}, ack floor {} of {last}",
                    info.num_pending,
                    info.num_ack_pending,
                    info.ack_floor.stream_sequence
                ))
            }
        },
    )
    .await?;
    Ok(())
}

/// A server with the registry's dev streams, a client, its JetStream
/// context and a publisher.
pub async fn setup() -> anyhow::Result<(
    tidings::testing::NatsServer,
    async_nats::Client,
    jetstream::Context,
    tidings::Publisher,
)> {
    let server = tidings::testing::NatsServer::launch().await?;
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    provision(&js, "dev").await?;
    let publisher = tidings::Publisher::new(client.clone(), tidings::PublisherConfig::default())?;
    Ok((server, client, js, publisher))
}

/// A publisher that also sends the binary-mode `ce-` headers (off by
/// default), for tests of what happens to them.
pub fn publisher_with_ce_headers(
    client: &async_nats::Client,
) -> anyhow::Result<tidings::Publisher> {
    Ok(tidings::Publisher::new(
        client.clone(),
        tidings::PublisherConfig {
            ce_headers: true,
            ..tidings::PublisherConfig::default()
        },
    )?)
}

/// Receives `n` items, or fails naming how many came within 20 s.
pub async fn take<T>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>,
    n: usize,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv()).await {
            Ok(Some(item)) => out.push(item),
            Ok(None) => anyhow::bail!("channel closed after {} of {n}", out.len()),
            Err(_) => anyhow::bail!("only {} of {n} items within 20 s", out.len()),
        }
    }
    Ok(out)
}

/// This test binary run again as a child process, for one `#[ignore]`d
/// test that acts as the child when `TIDINGS_CHILD_NATS_URL` is set. Killed
/// (SIGKILL) and reaped when dropped.
pub struct ChildTest {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl ChildTest {
    /// Starts test `name` of this binary against `url`, with extra `env`.
    pub fn spawn(name: &str, url: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                name,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TIDINGS_CHILD_NATS_URL", url)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        Ok(Self {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
        })
    }

    /// The rest of the child's next stdout line from `want` on (libtest may
    /// print its "test ... " prefix on the same line).
    pub async fn next_line(&mut self, want: &str) -> anyhow::Result<String> {
        loop {
            let line =
                tokio::time::timeout(std::time::Duration::from_secs(30), self.lines.next_line())
                    .await
                    .map_err(|_| anyhow::anyhow!("the child did not say {want:?} within 30 s"))??
                    .ok_or_else(|| anyhow::anyhow!("the child exited before saying {want:?}"))?;
            if let Some(at) = line.find(want) {
                return Ok(line[at..].to_string());
            }
        }
    }

    /// Sends SIGTERM (what an orchestrator sends to stop a service).
    pub fn terminate(&self) -> anyhow::Result<()> {
        use nix::sys::signal::{kill, Signal};
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow::anyhow!("the child has already exited"))?;
        kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid)?),
            Signal::SIGTERM,
        )?;
        Ok(())
    }

    /// The child's remaining stdout lines and its exit status, once it
    /// exits; fails (and the drop kills it) if that takes over 30 s.
    pub async fn finish(mut self) -> anyhow::Result<(std::process::ExitStatus, Vec<String>)> {
        let rest = async {
            let mut lines = Vec::new();
            while let Some(line) = self.lines.next_line().await? {
                lines.push(line);
            }
            let status = self.child.wait().await?;
            Ok::<_, anyhow::Error>((status, lines))
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), rest)
            .await
            .map_err(|_| anyhow::anyhow!("the child did not exit within 30 s"))?
    }

    /// SIGKILL, then reaps it.
    pub async fn kill(mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.child.kill().await?;
        Ok(self.child.wait().await?)
    }
}

/// For a child test: one line on stdout, flushed, for [`ChildTest::next_line`].
pub fn say(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Waits until the DLQ holds `n` messages and returns them.
pub async fn dead_letters(
    js: &jetstream::Context,
    n: usize,
) -> anyhow::Result<Vec<tidings::dlq::ops::DeadLetter>> {
    Ok(tidings::testing::eventually(
        "the dead letters arrive",
        std::time::Duration::from_secs(20),
        || async {
            let found =
                tidings::dlq::ops::list(js, &tidings::dlq::DlqFilter::default(), None).await?;
            if found.len() == n {
                Ok(found)
            } else {
                Err(anyhow::anyhow!("{} of {n} dead letters", found.len()))
            }
        },
    )
    .await?)
}
