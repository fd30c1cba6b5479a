//! The schema registry: the `schemas/` directory format, its config, the
//! lock of published versions, and `tidings check` / `tidings new`.
//!
//! Layout (see `docs/registry.md`):
//!
//! ```text
//! schemas/
//!   tidings.toml                      streams, profiles, default mode/policy ([`Config`])
//!   registry.lock                     published versions and fingerprints ([`Lock`])
//!   common/ids.json                   shared definitions, used via "../common/ids.json#/$defs/UserId"
//!   auth/user.created.v1.json         one file per event type and version
//! ```
//!
//! An event schema declares `x-event-type` (`service.entity.action`),
//! `x-schema-version` (1, 2, ...), `x-stream` (a stream of the config), and
//! optionally `x-compatibility` (a mode overriding the default),
//! `x-entity-key` (the property keying the subject) and `x-deprecated`.
pub mod access;
pub mod check;
pub(crate) mod compat_bridge;
pub mod config;
mod declared;
mod entity_key;
pub mod event_type;
pub mod finding;
mod ignore;
pub mod keywords;
pub mod load;
pub mod lock;
mod parallel;
mod patterns;
mod payload_shape;
pub mod position;
pub mod retention;
pub mod rust_names;
pub mod scaffold;
pub mod source;

pub use check::{check, updated_lock, Against, InvalidLock};
pub use config::{Config, ResolvedStream};
pub use event_type::EventType;
pub use finding::{CheckedFile, Finding, Report, Severity, Summary};
pub use lock::Lock;
pub use scaffold::{scaffold, Scaffold, ScaffoldError};
pub use source::{GitError, Source};
