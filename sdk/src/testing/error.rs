use std::path::PathBuf;
use std::time::Duration;

/// Why the test harness could not provide a server.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No usable nats-server binary was found.
    #[error(
        "no nats-server found: {detail}. Set NATS_SERVER_BIN=/path/to/nats-server or put \
         nats-server >= {min} on PATH (in the Tidings repository, `scripts/nats-server` \
         installs the pinned version and prints its path)"
    )]
    BinaryNotFound {
        /// What was tried.
        detail: String,
        /// The minimum version required.
        min: &'static str,
    },
    /// The nats-server binary found is older than the harness supports.
    #[error(
        "{path} is nats-server {version}, older than the required {min}; \
         point NATS_SERVER_BIN at a newer binary"
    )]
    BinaryTooOld {
        /// The binary that was found.
        path: PathBuf,
        /// The version it reported.
        version: String,
        /// The minimum version required.
        min: &'static str,
    },
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server process exited while starting.
    #[error("nats-server {name} exited while starting ({status}); last log lines:\n{log_tail}")]
    Exited {
        /// The server's name.
        name: String,
        /// The exit status.
        status: String,
        /// The end of the server's log.
        log_tail: String,
    },
    /// The server did not become healthy in time.
    #[error(
        "nats-server {name} was not healthy after {waited:?} (last health answer: {last}); \
         last log lines:\n{log_tail}"
    )]
    NotReady {
        /// The server's name.
        name: String,
        /// How long the harness waited.
        waited: Duration,
        /// The last answer of the health endpoint, or the error reaching it.
        last: String,
        /// The end of the server's log.
        log_tail: String,
    },
    /// The operation needs a running server, and this one is stopped.
    #[error("nats-server {name} is not running; call start() first")]
    NotRunning {
        /// The server's name.
        name: String,
    },
    /// The operation needs a stopped server, and this one is running.
    #[error("nats-server {name} is already running")]
    AlreadyRunning {
        /// The server's name.
        name: String,
    },
    /// A node index outside the cluster was named.
    #[error("the cluster has {len} nodes; there is no node {index}")]
    NoSuchNode {
        /// The index asked for.
        index: usize,
        /// How many nodes there are.
        len: usize,
    },
    /// The monitoring endpoint answered something unexpected.
    #[error("monitoring endpoint {path} of nats-server {name}: {detail}")]
    Monitor {
        /// The server's name.
        name: String,
        /// The endpoint path.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// A condition polled with [`eventually`](super::eventually) never held.
    #[error("timed out after {waited:?} waiting for {what}; last answer: {last}")]
    TimedOut {
        /// The condition.
        what: String,
        /// How long it was polled.
        waited: Duration,
        /// The probe's last error.
        last: String,
    },
    /// No usable PostgreSQL bin directory was found.
    #[error(
        "no PostgreSQL server found: {detail}. Set POSTGRES_BIN_DIR to a PostgreSQL bin \
         directory (postgres, initdb, pg_isready), or put postgres on PATH (in the Tidings \
         repository, `scripts/postgres` finds or installs PostgreSQL 15 and prints its bin dir)"
    )]
    PostgresNotFound {
        /// What was tried.
        detail: String,
    },
    /// A PostgreSQL step (initdb, start, readiness) failed.
    #[error("PostgreSQL test server: {what} failed ({detail}); last log lines:\n{log_tail}")]
    Postgres {
        /// What the harness was doing.
        what: String,
        /// The exit status or error.
        detail: String,
        /// The end of the server's log (or initdb's output).
        log_tail: String,
    },
    /// Connecting a client to the server failed.
    #[error("connecting to {url}: {source}")]
    Connect {
        /// The URL dialled.
        url: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
