//! A real PostgreSQL server for tests (the outbox's PostgreSQL backend).
//!
//! [`PostgresServer::launch`] runs `initdb` in a fresh temp dir and starts
//! `postgres` on a free `127.0.0.1` port, trusting local connections as user
//! `postgres`. PostgreSQL refuses to run as root: under root (as CI runs)
//! the harness runs initdb and the server as an unprivileged user (the
//! `postgres` user if it exists, else `nobody`) through `setpriv`, with the
//! temp dir handed to that user. The server stops (fast shutdown, then
//! SIGKILL) when the handle is dropped.
//!
//! The binaries are found by [`postgres_bin_dir`]: `POSTGRES_BIN_DIR`, then
//! the directory `postgres` on `PATH` resolves to, then
//! `/usr/lib/postgresql/15/bin`; `scripts/postgres` finds or installs them.
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::ports::free_port;
use super::HarnessError;

/// How long a start (after initdb) may take.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How many times a start retries with a fresh port after losing a port race.
const PORT_ATTEMPTS: usize = 5;

/// Finds the PostgreSQL bin directory: `POSTGRES_BIN_DIR`, then the directory
/// `postgres` on `PATH` resolves to, then `/usr/lib/postgresql/15/bin`.
pub fn postgres_bin_dir() -> Result<PathBuf, HarnessError> {
    let has_tools = |dir: &Path| {
        ["postgres", "initdb", "pg_isready"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    };
    if let Some(dir) = std::env::var_os("POSTGRES_BIN_DIR") {
        let dir = PathBuf::from(dir);
        return if has_tools(&dir) {
            Ok(dir)
        } else {
            Err(HarnessError::PostgresNotFound {
                detail: format!(
                    "POSTGRES_BIN_DIR={} lacks postgres, initdb or pg_isready",
                    dir.display()
                ),
            })
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path_var)
        .map(|dir| dir.join("postgres"))
        .find(|p| p.is_file())
        .and_then(|p| fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf));
    for dir in on_path
        .into_iter()
        .chain([PathBuf::from("/usr/lib/postgresql/15/bin")])
    {
        if has_tools(&dir) {
            return Ok(dir);
        }
    }
    Err(HarnessError::PostgresNotFound {
        detail: "POSTGRES_BIN_DIR is unset, no postgres on PATH has initdb and pg_isready \
                 beside it, and /usr/lib/postgresql/15/bin does not exist"
            .into(),
    })
}

/// The user the server runs as: `None` for the current one, or the uid and
/// gid of an unprivileged user when running as root.
fn run_as() -> Result<Option<(u32, u32)>, HarnessError> {
    // /proc/self belongs to the process's effective user.
    let euid = std::os::unix::fs::MetadataExt::uid(
        &fs::metadata("/proc/self")
            .map_err(|e| HarnessError::io("reading the effective user from /proc/self", e))?,
    );
    if euid != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd")
        .map_err(|e| HarnessError::io("reading /etc/passwd for an unprivileged user", e))?;
    let find = |name: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [user, _, uid, gid, ..] if *user == name => {
                    Some((uid.parse().ok()?, gid.parse().ok()?))
                }
                _ => None,
            }
        })
    };
    find("postgres")
        .or_else(|| find("nobody"))
        .map(Some)
        .ok_or_else(|| HarnessError::PostgresNotFound {
            detail: "running as root, and neither a `postgres` nor a `nobody` user exists to \
                     run PostgreSQL as (it refuses to run as root)"
                .into(),
        })
}

/// One PostgreSQL server on 127.0.0.1, its data in a temp dir.
///
/// [`stop`](Self::stop) and [`start`](Self::start) keep the port and the
/// data. Dropping the handle stops the process and deletes the directory.
#[derive(Debug)]
pub struct PostgresServer {
    bin: PathBuf,
    port: u16,
    user: Option<(u32, u32)>,
    dir: TempDir,
    child: Option<Child>,
}

impl PostgresServer {
    /// Creates a database cluster and starts the server; returns once it
    /// accepts connections.
    pub async fn launch() -> Result<Self, HarnessError> {
        let bin = postgres_bin_dir()?;
        let user = run_as()?;
        let dir = tempfile::Builder::new()
            .prefix("tidings-postgres-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating the PostgreSQL temp dir", e))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| HarnessError::io("handing the temp dir to the postgres user", e))?;
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .map_err(|e| HarnessError::io("restricting the temp dir", e))?;
        let mut server = Self {
            bin,
            port: 0,
            user,
            dir,
            child: None,
        };
        server.initdb()?;
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            match server.start().await {
                Ok(()) => return Ok(server),
                Err(err) if server.log_tail().contains("could not bind") => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::Postgres {
            what: "starting".into(),
            detail: "no free port".into(),
            log_tail: String::new(),
        }))
    }

    /// The connection URL: user `postgres`, database `postgres`, no password.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log file (every life, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command for one of the bin dir's tools, as the unprivileged user
    /// when running as root.
    fn command(&self, tool: &str) -> Command {
        let tool = self.bin.join(tool);
        match self.user {
            Some((uid, gid)) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(tool);
                command
            }
            None => Command::new(tool),
        }
    }

    fn initdb(&self) -> Result<(), HarnessError> {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HarnessError::io(format!("running {}/initdb", self.bin.display()), e))?;
        if output.status.success() {
            return Ok(());
        }
        Err(HarnessError::Postgres {
            what: "initdb".into(),
            detail: output.status.to_string(),
            log_tail: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }

    /// Starts the server (again) on the same port and data; returns once it
    /// accepts connections. Fails if it is already running.
    pub async fn start(&mut self) -> Result<(), HarnessError> {
        if self.child.is_some() {
            return Err(HarnessError::AlreadyRunning {
                name: "postgres".into(),
            });
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| HarnessError::io("opening the PostgreSQL log", e))?;
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(self.log_path(), Some(uid), Some(gid))
                .map_err(|e| HarnessError::io("handing the log to the postgres user", e))?;
        }
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::io("opening the PostgreSQL log", e))?;
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg(format!("port={}", self.port))
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "max_connections=100", "-c", "shared_buffers=32MB"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                HarnessError::io(format!("starting {}/postgres", self.bin.display()), e)
            })?;
        tracing::debug!(pid = child.id(), port = self.port, "postgres started");
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(HarnessError::Postgres {
                        what: "starting".into(),
                        detail: format!("the server exited: {status}"),
                        log_tail: self.log_tail(),
                    });
                }
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .map_err(|e| HarnessError::io("running pg_isready", e))?;
            if ready.success() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(HarnessError::Postgres {
                    what: "waiting for readiness".into(),
                    detail: format!("not accepting connections after {READY_TIMEOUT:?}"),
                    log_tail: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (fast shutdown: SIGINT, then SIGKILL after 15 s).
    pub async fn stop(&mut self) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        signal(&child, Signal::SIGINT)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(None) => return reap(&mut child),
                Err(e) => return Err(HarnessError::io("waiting for postgres", e)),
            }
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

fn signal(child: &Child, signal: Signal) -> Result<(), HarnessError> {
    let pid = i32::try_from(child.id())
        .map_err(|_| HarnessError::io("signalling postgres", std::io::Error::other("pid")))?;
    kill(Pid::from_raw(pid), signal).map_err(|errno| {
        HarnessError::io(
            format!("sending {signal} to postgres (pid {pid})"),
            std::io::Error::from(errno),
        )
    })
}

fn reap(child: &mut Child) -> Result<(), HarnessError> {
    if let Err(e) = child.kill() {
        if e.kind() != std::io::ErrorKind::InvalidInput {
            return Err(HarnessError::io("killing postgres", e));
        }
    }
    child
        .wait()
        .map(|_| ())
        .map_err(|e| HarnessError::io("reaping postgres", e))
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Immediate shutdown: the postmaster stops its backends and exits,
        // where a SIGKILL would leave them running.
        let _ = signal(&child, Signal::SIGQUIT);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(err) = reap(&mut child) {
            tracing::error!(error = %err, "could not stop postgres");
        }
    }
}
