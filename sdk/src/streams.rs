//! Stream provisioning from the registry's `tidings.toml` (FR-001 to FR-005).
//!
//! [`plan`] compares each configured stream with the server; [`apply`]
//! creates missing streams and updates drifted ones, idempotently, and
//! creates the dead-letter mover's failures bucket
//! ([`FAILURES_BUCKET`](crate::dlq::FAILURES_BUCKET)) beside DLQ_EVENTS:
//! services may not create streams or buckets, so provisioning makes both
//! (`tidings streams apply`). A change
//! that could delete stored events (a shorter `max_age`, a smaller
//! `max_bytes`, a removed subject, fewer replicas, a change from the
//! limits retention kind to interest) is never applied unless
//! [`ApplyOptions::allow_data_loss`] says so; a storage change, and a
//! change of retention to or from a work queue, cannot be applied at all
//! (JetStream does not allow them) and are reported.
use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use tidings_codegen::registry::config::{
    Config, ConfigError as RegistryConfigError, Discard, ResolvedStream, Retention, Storage,
    CONFIG_FILE,
};

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The registry configuration could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The registry configuration is invalid.
    #[error(transparent)]
    Config(#[from] RegistryConfigError),
    /// A stream request failed: the server answered with an error, or the
    /// client got no answer.
    #[error("stream {stream}: {action} failed")]
    Server {
        /// The stream.
        stream: String,
        /// What was being done.
        action: &'static str,
        /// The server's or the client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Changes that would delete data, or cannot be made, were not applied.
    #[error(
        "not applied, to keep stored events: {}. Re-run with allow_data_loss (CLI: --allow-data-loss) if that is intended",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Blocked(Vec<StreamPlan>),
}

/// One setting on which server and configuration differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The setting (`max_age`, `subjects`, ...).
    pub field: &'static str,
    /// The server's value.
    pub server: String,
    /// The configured value.
    pub config: String,
    /// Whether applying it can delete stored events.
    pub loses_data: bool,
    /// Whether JetStream can change it in place at all.
    pub updatable: bool,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: server {} -> config {}",
            self.field, self.server, self.config
        )?;
        if !self.updatable {
            f.write_str(
                " (cannot be changed in place, not even with consent: move the events to a new stream, \
                 or delete this one and apply again)",
            )?;
        } else if self.loses_data {
            f.write_str(" (may delete stored events)")?;
        }
        Ok(())
    }
}

/// What provisioning does, or did, with one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The stream does not exist and is created.
    Create,
    /// The stream matches its configuration.
    Unchanged,
    /// The stream differs in settings that are safe to change.
    Update(Vec<Drift>),
    /// The stream differs in settings that are not applied without consent
    /// (or cannot be applied).
    Blocked(Vec<Drift>),
}

/// The plan for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPlan {
    /// The stream name.
    pub stream: String,
    /// What happens to it.
    pub action: Action,
}

impl std::fmt::Display for StreamPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.action {
            Action::Create => write!(f, "{}: create", self.stream),
            Action::Unchanged => write!(f, "{}: unchanged", self.stream),
            Action::Update(d) | Action::Blocked(d) => write!(
                f,
                "{}: {}",
                self.stream,
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Options of [`apply`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Apply changes that may delete stored events.
    pub allow_data_loss: bool,
}

/// Reads `tidings.toml` in the registry directory and resolves its streams
/// for a profile (`production`, `dev`).
pub fn load_streams(
    registry_dir: &Path,
    profile: &str,
) -> Result<Vec<ResolvedStream>, ProvisionError> {
    let path = registry_dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ProvisionError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Config::parse(&text)?.resolve_streams(profile)?)
}

/// The JetStream configuration of a configured stream.
pub fn stream_config(spec: &ResolvedStream) -> stream::Config {
    stream::Config {
        name: spec.name.clone(),
        subjects: spec.subjects.clone(),
        max_age: spec.max_age,
        max_bytes: i64::try_from(spec.max_bytes).unwrap_or(i64::MAX),
        discard: match spec.discard {
            Discard::Old => stream::DiscardPolicy::Old,
            Discard::New => stream::DiscardPolicy::New,
        },
        duplicate_window: spec.duplicate_window,
        storage: match spec.storage {
            Storage::File => stream::StorageType::File,
            Storage::Memory => stream::StorageType::Memory,
        },
        num_replicas: usize::from(spec.replicas),
        retention: match spec.retention {
            Retention::Limits => stream::RetentionPolicy::Limits,
            Retention::Interest => stream::RetentionPolicy::Interest,
            Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
        },
        // Direct gets name the subject in the request subject, so
        // permissions can allow a reader one subject (the dead-letter mover
        // checks for its own earlier copy this way).
        allow_direct: true,
        ..Default::default()
    }
}

fn drifts(server: &stream::Config, wanted: &stream::Config) -> Vec<Drift> {
    let mut out = Vec::new();
    let mut push = |field, server: String, config: String, loses_data, updatable| {
        if server != config {
            out.push(Drift {
                field,
                server,
                config,
                loses_data,
                updatable,
            });
        }
    };
    let mut server_subjects = server.subjects.clone();
    server_subjects.sort();
    let mut wanted_subjects = wanted.subjects.clone();
    wanted_subjects.sort();
    let removes_subject = server_subjects.iter().any(|s| !wanted_subjects.contains(s));
    push(
        "subjects",
        format!("{server_subjects:?}"),
        format!("{wanted_subjects:?}"),
        removes_subject,
        true,
    );
    let shorter = |a: Duration, b: Duration| b != Duration::ZERO && (a == Duration::ZERO || b < a);
    push(
        "max_age",
        format!("{:?}", server.max_age),
        format!("{:?}", wanted.max_age),
        shorter(server.max_age, wanted.max_age),
        true,
    );
    let smaller = |a: i64, b: i64| b > 0 && (a <= 0 || b < a);
    push(
        "max_bytes",
        server.max_bytes.to_string(),
        wanted.max_bytes.to_string(),
        smaller(server.max_bytes, wanted.max_bytes),
        true,
    );
    push(
        "discard",
        format!("{:?}", server.discard),
        format!("{:?}", wanted.discard),
        false,
        true,
    );
    push(
        "duplicate_window",
        format!("{:?}", server.duplicate_window),
        format!("{:?}", wanted.duplicate_window),
        false,
        true,
    );
    push(
        "num_replicas",
        server.num_replicas.max(1).to_string(),
        wanted.num_replicas.max(1).to_string(),
        wanted.num_replicas.max(1) < server.num_replicas.max(1),
        true,
    );
    push(
        "storage",
        format!("{:?}", server.storage),
        format!("{:?}", wanted.storage),
        true,
        false,
    );
    // Limits to interest deletes at once every event all groups have acked
    // (and, with no group, every event); interest to limits only keeps
    // more. JetStream refuses any change to or from a work queue.
    let (from, to) = (server.retention, wanted.retention);
    let work_queue = stream::RetentionPolicy::WorkQueue;
    push(
        "retention",
        format!("{from:?}"),
        format!("{to:?}"),
        to != stream::RetentionPolicy::Limits,
        from != work_queue && to != work_queue,
    );
    out
}

/// The server's configuration with the settings `tidings.toml` manages
/// taken from `wanted`: an update with it changes only those, and keeps
/// what an operator set beside them (a message size limit, compression,
/// `deny_delete`, ...).
fn patched(server: &stream::Config, wanted: &stream::Config) -> stream::Config {
    stream::Config {
        subjects: wanted.subjects.clone(),
        max_age: wanted.max_age,
        max_bytes: wanted.max_bytes,
        discard: wanted.discard,
        duplicate_window: wanted.duplicate_window,
        num_replicas: wanted.num_replicas,
        retention: wanted.retention,
        ..server.clone()
    }
}

/// Compares every configured stream with the server.
pub async fn plan(
    js: &jetstream::Context,
    streams: &[ResolvedStream],
) -> Result<Vec<StreamPlan>, ProvisionError> {
    Ok(plan_with_server(js, streams)
        .await?
        .into_iter()
        .map(|(plan, _)| plan)
        .collect())
}

/// [`plan`], with each existing stream's configuration on the server.
async fn plan_with_server(
    js: &jetstream::Context,
    streams: &[ResolvedStream],
) -> Result<Vec<(StreamPlan, Option<stream::Config>)>, ProvisionError> {
    let mut plans = Vec::with_capacity(streams.len());
    for spec in streams {
        let wanted = stream_config(spec);
        let mut server = None;
        let action = match server_config(js, &spec.name).await? {
            Some(config) => {
                let drift = drifts(&config, &wanted);
                server = Some(config);
                if drift.is_empty() {
                    Action::Unchanged
                } else if drift.iter().any(|d| d.loses_data || !d.updatable) {
                    Action::Blocked(drift)
                } else {
                    Action::Update(drift)
                }
            }
            None => Action::Create,
        };
        plans.push((
            StreamPlan {
                stream: spec.name.clone(),
                action,
            },
            server,
        ));
    }
    Ok(plans)
}

/// The configuration the server has for stream `name`, or `None` if there
/// is no such stream.
async fn server_config(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<stream::Config>, ProvisionError> {
    // The lookup is a stream info request: its answer is the current one.
    match js.get_stream(name).await {
        Ok(existing) => Ok(Some(existing.cached_info().config.clone())),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(ProvisionError::Server {
            stream: name.to_string(),
            action: "looking the stream up",
            source: Box::new(e),
        }),
    }
}

/// Whether JetStream answered a stream lookup with 404: no such stream.
pub fn is_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(api) if api.code() == 404
    )
}

/// Creates missing streams and updates drifted ones, and creates the
/// failures bucket if DLQ_EVENTS is among `streams` and the bucket is
/// missing (with DLQ_EVENTS' `max_age`, replicas and storage). Blocked
/// changes are not applied (unless allowed); they are returned as
/// [`ProvisionError::Blocked`] after every other stream has been handled.
/// Returns the plan carried out (streams only).
pub async fn apply(
    js: &jetstream::Context,
    streams: &[ResolvedStream],
    options: ApplyOptions,
) -> Result<Vec<StreamPlan>, ProvisionError> {
    let plans = plan_with_server(js, streams).await?;
    let mut blocked = Vec::new();
    for (spec, (planned, server)) in streams.iter().zip(&plans) {
        let wanted = stream_config(spec);
        // An update patches what the server has, never a config from defaults.
        let update = || patched(server.as_ref().unwrap_or(&wanted), &wanted);
        match &planned.action {
            Action::Unchanged => {}
            Action::Create => {
                change(js, &wanted, None).await?;
                tracing::info!(stream = %spec.name, "stream created");
            }
            Action::Update(drift) => {
                change(js, &wanted, Some(&update())).await?;
                tracing::info!(stream = %spec.name, changes = ?drift, "stream updated");
            }
            Action::Blocked(drift) => {
                let applicable = drift.iter().all(|d| d.updatable);
                if options.allow_data_loss && applicable {
                    change(js, &wanted, Some(&update())).await?;
                    tracing::warn!(stream = %spec.name, changes = ?drift, "stream updated with data-losing changes, as allowed");
                } else {
                    tracing::warn!(stream = %spec.name, changes = ?drift, "stream changes not applied");
                    blocked.push(planned.clone());
                }
            }
        }
    }
    if let Some(dlq) = streams.iter().find(|s| s.name == crate::dlq::DLQ_STREAM) {
        ensure_failures_bucket(js, &stream_config(dlq)).await?;
    }
    if blocked.is_empty() {
        Ok(plans.into_iter().map(|(plan, _)| plan).collect())
    } else {
        Err(ProvisionError::Blocked(blocked))
    }
}

/// How many times [`apply`] sends a create or update whose answer did not
/// arrive in time.
const UNANSWERED_ATTEMPTS: u32 = 3;

/// Creates stream `wanted` (`update` is `None`) or sets its whole
/// configuration to `update`, checked as [`until_answered`] says.
async fn change(
    js: &jetstream::Context,
    wanted: &stream::Config,
    update: Option<&stream::Config>,
) -> Result<(), ProvisionError> {
    let action = match update {
        None => "creating",
        Some(_) => "updating",
    };
    let send = || async {
        match update {
            None => js.create_stream(wanted.clone()).await.map(drop),
            Some(config) => js.update_stream(config).await.map(drop),
        }
    };
    let done = || async {
        let config = server_config(js, &wanted.name).await?;
        Ok(config.is_some_and(|config| drifts(&config, wanted).is_empty()))
    };
    let timed_out = |e: &jetstream::context::CreateStreamError| {
        e.kind() == jetstream::context::CreateStreamErrorKind::TimedOut
    };
    until_answered(&wanted.name, action, send, timed_out, done).await
}

/// Sends a change (`send`) to stream `stream`. A request that times out
/// may still have been carried out (its answer lost, or the server slow to
/// finish an R3 change), so `done` checks whether it was: if so, the change
/// is done; otherwise the request is sent again, at most
/// [`UNANSWERED_ATTEMPTS`] times in all. `action` names the change in
/// errors ("creating").
async fn until_answered<E, S, SF, D, DF>(
    stream: &str,
    action: &'static str,
    send: S,
    timed_out: impl Fn(&E) -> bool,
    done: D,
) -> Result<(), ProvisionError>
where
    E: std::error::Error + Send + Sync + 'static,
    S: Fn() -> SF,
    SF: std::future::Future<Output = Result<(), E>>,
    D: Fn() -> DF,
    DF: std::future::Future<Output = Result<bool, ProvisionError>>,
{
    let mut attempt = 1;
    loop {
        let error = match send().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if !timed_out(&error) || attempt == UNANSWERED_ATTEMPTS {
            return Err(ProvisionError::Server {
                stream: stream.to_string(),
                action,
                source: Box::new(error),
            });
        }
        tracing::warn!(
            stream,
            action,
            attempt,
            "no answer in time; checking whether the change was made"
        );
        if done().await? {
            return Ok(());
        }
        attempt += 1;
    }
}

/// The failures bucket's configuration, from DLQ_EVENTS': its records live
/// as long as the dead letters they describe.
pub(crate) fn failures_bucket_config(dlq: &stream::Config) -> kv::Config {
    kv::Config {
        bucket: crate::dlq::FAILURES_BUCKET.into(),
        description: "Tidings: when each failing event first failed, per group".into(),
        max_age: dlq.max_age,
        history: 1,
        storage: dlq.storage,
        num_replicas: dlq.num_replicas.max(1),
        ..Default::default()
    }
}

/// Creates the failures bucket unless it exists (an existing one is left
/// as it is); a create that times out is checked as [`until_answered`]
/// says.
async fn ensure_failures_bucket(
    js: &jetstream::Context,
    dlq: &stream::Config,
) -> Result<(), ProvisionError> {
    let name = format!("KV_{}", crate::dlq::FAILURES_BUCKET);
    let exists = || async {
        match js.get_stream(&name).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(ProvisionError::Server {
                stream: name.clone(),
                action: "looking the bucket up",
                source: Box::new(e),
            }),
        }
    };
    if exists().await? {
        return Ok(());
    }
    let send = || async {
        js.create_key_value(failures_bucket_config(dlq))
            .await
            .map(drop)
    };
    let timed_out = |e: &jetstream::context::CreateKeyValueError| {
        e.kind() == jetstream::context::CreateKeyValueErrorKind::TimedOut
    };
    until_answered(&name, "creating the bucket", send, timed_out, exists).await?;
    tracing::info!(
        bucket = crate::dlq::FAILURES_BUCKET,
        "failures bucket created"
    );
    Ok(())
}
