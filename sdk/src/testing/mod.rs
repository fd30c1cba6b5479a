//! A real nats-server for tests: never a mock.
//!
//! [`NatsServer`] starts one JetStream server with file storage on a free
//! `127.0.0.1` port and a fresh store directory; [`NatsCluster`] starts three
//! such servers clustered over loopback. Both can be restarted, killed with
//! SIGKILL and paused (SIGSTOP/SIGCONT), and both stop every process they
//! started when dropped, also while a test unwinds from a panic.
//!
//! The binary is found by [`nats_server_binary`]: `NATS_SERVER_BIN`, then
//! `nats-server` on `PATH`; it must be version 2.10 or newer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tidings::testing::NatsServer;
//!
//! let server = NatsServer::launch().await?;
//! let client = server.connect().await?;
//! let js = async_nats::jetstream::new(client);
//! # let _ = js;
//! # Ok(()) }
//! ```
//!
//! [`FaultProxy`] sits between a client and a server on loopback and loses,
//! delays, throttles or cuts exactly the protocol frames a test names (a
//! PubAck, an ack, a terminate), or blackholes and resets whole connections.
//!
//! [`PostgresServer`] starts a real PostgreSQL (initdb in a temp dir, a free
//! loopback port) for the outbox's PostgreSQL backend.
//!
//! [`RecordingPublisher`] and [`SyntheticEvent`] with [`call_handler`] are
//! for a service's unit tests without a server: the code that publishes,
//! through the [`Publish`](crate::publish::Publish) trait, and its handlers.
//!
//! [`assert_matches_registry`] checks a hand-written `#[derive(DomainEvent,
//! JsonSchema)]` type against its registry schema with the compatibility
//! engine, in both directions (see [`registry`]).
mod binary;
mod cluster;
mod error;
mod eventually;
pub mod failpoint;
mod monitor;
mod ports;
mod postgres;
mod proxy;
mod recording_publisher;
pub mod registry;
mod server;
mod synthetic_event;

pub use binary::{nats_server_binary, MIN_SERVER_VERSION};
pub use cluster::NatsCluster;
pub use error::HarnessError;
pub use eventually::eventually;
pub use postgres::{postgres_bin_dir, PostgresServer};
pub use proxy::{FaultProxy, Flow, Frame, Rule};
pub use recording_publisher::{RecordedEvent, RecordingPublisher, DEFAULT_MAX_PAYLOAD};
pub use registry::{
    assert_matches_registry, assert_matches_registry_file, matches_registry, matches_registry_file,
    Direction, Incompatibility, KeyMismatch, Mismatch, RegistryMismatch,
};
pub use server::{NatsServer, NatsServerBuilder};
pub use synthetic_event::{call_handler, SyntheticEvent, DEFAULT_GROUP, DEFAULT_ORGANIZATION};
