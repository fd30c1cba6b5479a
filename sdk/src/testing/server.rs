use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::monitor::http_get;
use super::ports::free_port;
use super::{nats_server_binary, HarnessError};

/// How long a server may take to become healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take before the harness kills the server.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often readiness and exit are polled.
const POLL: Duration = Duration::from_millis(20);
/// How many times a first start retries with fresh ports after losing a port race.
const PORT_ATTEMPTS: usize = 5;

/// The cluster part of a node's configuration.
#[derive(Debug, Clone)]
pub(crate) struct ClusterConfig {
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) routes: Vec<u16>,
}

/// Configures a [`NatsServer`] before it starts.
#[derive(Debug, Default, Clone)]
pub struct NatsServerBuilder {
    name: Option<String>,
    max_payload: Option<u32>,
    sync_always: bool,
    extra_config: Vec<String>,
    config_files: Vec<PathBuf>,
}

impl NatsServerBuilder {
    /// Sets the server name (default `tidings-test`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the server's `max_payload` in bytes (nats-server's default is 1 MiB).
    pub fn max_payload(mut self, bytes: u32) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Makes JetStream write and fsync every message before acknowledging it
    /// (`sync_interval: always`). Off by default, as in nats-server, where a
    /// PubAck can precede the write by a few milliseconds: a SIGKILL in that
    /// window loses the message. Turn it on in tests that kill the server and
    /// count what survived, as production should (see the README).
    pub fn sync_always(mut self, on: bool) -> Self {
        self.sync_always = on;
        self
    }

    /// Appends raw lines to the generated nats-server configuration file, for
    /// settings the builder has no method for (accounts, authorization, ...).
    pub fn extra_config(mut self, lines: impl Into<String>) -> Self {
        self.extra_config.push(lines.into());
        self
    }

    /// Appends the contents of a nats-server configuration file (for
    /// example the `authorization` block `tidings permissions` writes, or a
    /// `tls` block) to the generated configuration. Paths inside it must be
    /// absolute. The file is read when the server is laid out.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_files.push(path.into());
        self
    }

    /// Starts the server and waits until it reports healthy.
    pub async fn launch(self) -> Result<NatsServer, HarnessError> {
        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            let mut server = self.clone().prepare(None)?;
            match server.start().await {
                Ok(()) => return Ok(server),
                Err(err) if server.lost_port_race() => last_err = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_err.unwrap_or_else(|| HarnessError::NotRunning {
            name: "tidings-test".into(),
        }))
    }

    /// Lays out a stopped server: ports chosen, directory created, nothing started.
    pub(crate) fn prepare(
        self,
        cluster: Option<ClusterConfig>,
    ) -> Result<NatsServer, HarnessError> {
        let binary = nats_server_binary()?;
        let mut extra_config = self.extra_config;
        for path in &self.config_files {
            let text = fs::read_to_string(path).map_err(|e| {
                HarnessError::io(
                    format!("reading the configuration file {}", path.display()),
                    e,
                )
            })?;
            extra_config.push(text);
        }
        let dir = tempfile::Builder::new()
            .prefix("tidings-nats-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating the server's temp dir", e))?;
        Ok(NatsServer {
            name: self.name.unwrap_or_else(|| "tidings-test".into()),
            binary,
            client_port: free_port()?,
            http_port: free_port()?,
            max_payload: self.max_payload,
            sync_always: self.sync_always,
            extra_config,
            cluster,
            dir,
            child: None,
            paused: false,
        })
    }
}

/// One nats-server process with JetStream and file storage on 127.0.0.1.
///
/// The store directory and port stay the same across [`restart`](Self::restart),
/// [`kill`](Self::kill) and [`start`](Self::start), so a restarted server sees
/// the data of its previous life. Dropping the handle kills the process and
/// deletes the directory.
#[derive(Debug)]
pub struct NatsServer {
    name: String,
    binary: PathBuf,
    client_port: u16,
    http_port: u16,
    max_payload: Option<u32>,
    sync_always: bool,
    extra_config: Vec<String>,
    cluster: Option<ClusterConfig>,
    dir: TempDir,
    child: Option<Child>,
    paused: bool,
}

impl NatsServer {
    /// Starts a fresh server with default settings and waits until it is healthy.
    pub async fn launch() -> Result<Self, HarnessError> {
        Self::builder().launch().await
    }

    /// A builder for a server with non-default settings.
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::default()
    }

    /// The server's name (`server_name` in its configuration).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.client_port
    }

    /// The HTTP monitoring port.
    pub fn monitor_port(&self) -> u16 {
        self.http_port
    }

    /// The JetStream store directory, kept across restarts.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The server's log file (stdout and stderr of every life, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// The process id while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running (paused counts as running).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Connects a client to this server.
    pub async fn connect(&self) -> Result<async_nats::Client, HarnessError> {
        let url = self.url();
        async_nats::connect(&url)
            .await
            .map_err(|source| HarnessError::Connect { url, source })
    }

    /// Starts the process (again) on the same port and store and waits until
    /// it is healthy. Fails if it is already running.
    pub async fn start(&mut self) -> Result<(), HarnessError> {
        self.spawn()?;
        self.wait_ready().await
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after 15 s) and
    /// starts it again on the same port and store.
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop().await?;
        self.start().await
    }

    /// Stops the server gracefully: SIGTERM, wait for exit, SIGKILL if it has
    /// not exited within 15 s. A stopped server stays stopped.
    pub async fn stop(&mut self) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if self.paused {
            self.signal_child(&child, Signal::SIGCONT)?;
            self.paused = false;
        }
        self.signal_child(&child, Signal::SIGTERM)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Ok(None) => {
                    tracing::warn!(server = %self.name, "nats-server ignored SIGTERM for 15 s; killing it");
                    return reap(&mut child, &self.name);
                }
                Err(e) => return Err(HarnessError::io(format!("waiting for {}", self.name), e)),
            }
        }
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it. Its store
    /// is left as the crash left it; [`start`](Self::start) brings it back.
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        self.paused = false;
        match self.child.take() {
            Some(mut child) => reap(&mut child, &self.name),
            None => Ok(()),
        }
    }

    /// Freezes the process with SIGSTOP: it keeps its sockets but answers
    /// nothing. Returns once every thread of the process has stopped (a
    /// signal is delivered asynchronously; a server still running for a few
    /// more microseconds could answer one more request).
    pub async fn pause(&mut self) -> Result<(), HarnessError> {
        let pid = self.running_child()?.id();
        self.signal_child(self.running_child()?, Signal::SIGSTOP)?;
        self.paused = true;
        self.wait_for_state(pid, true).await
    }

    /// Resumes a paused process with SIGCONT and returns once it runs again.
    pub async fn resume(&mut self) -> Result<(), HarnessError> {
        let pid = self.running_child()?.id();
        self.signal_child(self.running_child()?, Signal::SIGCONT)?;
        self.paused = false;
        self.wait_for_state(pid, false).await
    }

    /// Waits until every thread of `pid` is stopped (or none is).
    async fn wait_for_state(&self, pid: u32, stopped: bool) -> Result<(), HarnessError> {
        let what = format!(
            "nats-server {} (pid {pid}) to {}",
            self.name,
            if stopped { "stop" } else { "continue" }
        );
        super::eventually(&what, STOP_TIMEOUT, || async move {
            let states = thread_states(pid)?;
            let all_match = states.iter().all(|&state| (state == 'T') == stopped);
            if all_match && !states.is_empty() {
                Ok(())
            } else {
                Err(std::io::Error::other(format!("thread states {states:?}")))
            }
        })
        .await
    }

    /// GETs a monitoring endpoint (for example `/jsz?streams=true`) and parses
    /// its JSON body.
    pub async fn monitor(&self, path: &str) -> Result<serde_json::Value, HarnessError> {
        let monitor_err = |detail: String| HarnessError::Monitor {
            name: self.name.clone(),
            path: path.to_string(),
            detail,
        };
        let (status, body) = http_get(self.http_port, path)
            .await
            .map_err(|e| monitor_err(e.to_string()))?;
        if status != 200 {
            return Err(monitor_err(format!("HTTP {status}: {}", body.trim())));
        }
        serde_json::from_str(&body).map_err(|e| monitor_err(format!("invalid JSON: {e}")))
    }

    /// Waits until the health endpoint answers 200 (JetStream enabled and, in
    /// a cluster, its meta group and assets current).
    pub async fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(HarnessError::Exited {
                        name: self.name.clone(),
                        status: status.to_string(),
                        log_tail: self.log_tail(),
                    });
                }
            } else {
                return Err(HarnessError::NotRunning {
                    name: self.name.clone(),
                });
            }
            let last = match http_get(self.http_port, "/healthz").await {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => format!("HTTP {status}: {}", body.trim()),
                Err(e) => e.to_string(),
            };
            if started.elapsed() > READY_TIMEOUT {
                return Err(HarnessError::NotReady {
                    name: self.name.clone(),
                    waited: started.elapsed(),
                    last,
                    log_tail: self.log_tail(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts the process without waiting for readiness.
    pub(crate) fn spawn(&mut self) -> Result<(), HarnessError> {
        if self.is_running() {
            return Err(HarnessError::AlreadyRunning {
                name: self.name.clone(),
            });
        }
        let config_path = self.dir.path().join("nats-server.conf");
        fs::write(&config_path, self.config_text())
            .map_err(|e| HarnessError::io(format!("writing {}", config_path.display()), e))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| HarnessError::io("opening the server log", e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::io("opening the server log", e))?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| HarnessError::io(format!("starting {}", self.binary.display()), e))?;
        tracing::debug!(server = %self.name, pid = child.id(), url = %self.url(), "nats-server started");
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    fn config_text(&self) -> String {
        let store = self.store_dir();
        let mut text = format!(
            "server_name: \"{name}\"\nlisten: \"127.0.0.1:{port}\"\nhttp: \"127.0.0.1:{http}\"\n\
             jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 256MB\n  max_file_store: 8GB\n{sync}}}\n",
            name = self.name,
            port = self.client_port,
            http = self.http_port,
            store = store.display(),
            sync = if self.sync_always { "  sync_interval: always\n" } else { "" },
        );
        if let Some(bytes) = self.max_payload {
            text.push_str(&format!("max_payload: {bytes}\n"));
        }
        if let Some(cluster) = &self.cluster {
            let routes: Vec<String> = cluster
                .routes
                .iter()
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            text.push_str(&format!(
                "cluster {{\n  name: \"{}\"\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                cluster.name,
                cluster.port,
                routes.join(", ")
            ));
        }
        for extra in &self.extra_config {
            text.push_str(extra);
            text.push('\n');
        }
        text
    }

    /// True when the last start failed because a chosen port was taken.
    pub(crate) fn lost_port_race(&self) -> bool {
        self.log_tail().contains("address already in use")
    }

    /// The last lines of the server's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        read_tail(&self.log_path(), 4096)
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn running_child(&self) -> Result<&Child, HarnessError> {
        self.child.as_ref().ok_or_else(|| HarnessError::NotRunning {
            name: self.name.clone(),
        })
    }

    fn signal_child(&self, child: &Child, signal: Signal) -> Result<(), HarnessError> {
        let pid = i32::try_from(child.id()).map_err(|_| {
            HarnessError::io(
                format!("signalling {}", self.name),
                std::io::Error::other("pid out of range"),
            )
        })?;
        kill(Pid::from_raw(pid), signal).map_err(|errno| {
            HarnessError::io(
                format!("sending {signal} to {} (pid {pid})", self.name),
                std::io::Error::from(errno),
            )
        })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(err) = reap(&mut child, &self.name) {
                tracing::error!(server = %self.name, error = %err, "could not stop nats-server");
            }
        }
    }
}

/// SIGKILLs the child (a no-op if it already exited) and waits for it.
fn reap(child: &mut Child, name: &str) -> Result<(), HarnessError> {
    if let Err(e) = child.kill() {
        // InvalidInput means it has already exited; wait() still reaps it.
        if e.kind() != std::io::ErrorKind::InvalidInput {
            return Err(HarnessError::io(format!("killing {name}"), e));
        }
    }
    child
        .wait()
        .map(|_| ())
        .map_err(|e| HarnessError::io(format!("reaping {name}"), e))
}

/// The scheduler state letter (`R`, `S`, `T`, ...) of every thread of `pid`,
/// read from `/proc/PID/task/*/stat`.
fn thread_states(pid: u32) -> std::io::Result<Vec<char>> {
    let mut states = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = match fs::read_to_string(task?.path().join("stat")) {
            Ok(stat) => stat,
            // A thread that exited between listing and reading.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        // The command name is in parentheses and may contain spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .ok_or_else(|| std::io::Error::other(format!("unreadable stat line {stat:?}")))?;
        states.push(state);
    }
    Ok(states)
}

fn read_tail(path: &Path, max: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::from("(no log)");
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
