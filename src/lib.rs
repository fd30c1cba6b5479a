//! This organisation's event catalog: typed payloads generated from
//! `schemas/` by `build.rs` (see `docs/generate.md`).
//!
//! One module per service, one type per event type and version, the latest
//! aliased: `events::auth::UserCreated` is `events::auth::UserCreatedV2`.
//! Every payload type implements `tidings::DomainEvent` (event type,
//! version, stream, embedded schema) and
//! [`upcast::ReadAnyVersion`], which reads a payload written as any version
//! of its event type, and has a builder (`UserCreated::builder()`, see
//! `tidings::builder`) that checks each field as it is set.
//!
//! ```
//! use events::auth::UserCreated;
//!
//! let user = UserCreated::builder()
//!     .user_id("0190f3a5-1111-7abc-8def-000000000001")
//!     .email("ana.garcia@example.com")
//!     .display_name("Ana García")
//!     .role("planner")
//!     .created_at("2025-12-09T10:15:00Z")
//!     .build()?;
//! assert_eq!(user.locale, None);
//! # Ok::<(), tidings::builder::BuildError>(())
//! ```
//!
//! A misspelt field does not compile:
//!
//! ```compile_fail,E0599
//! let user = events::auth::UserCreated::builder().emial("ana.garcia@example.com");
//! ```
//!
//! ```
//! use events::auth::UserCreated;
//! use events::upcast::ReadAnyVersion;
//! use tidings::DomainEvent;
//!
//! assert_eq!(UserCreated::EVENT_TYPE, "auth.user.created");
//! assert_eq!(UserCreated::SCHEMA_VERSION, 2);
//! // A v1 payload, read by a v2 consumer.
//! let v1 = serde_json::json!({
//!     "user_id": "0190f3a5-1111-7abc-8def-000000000001",
//!     "email": "ana.garcia@example.com",
//!     "display_name": "Ana García",
//!     "role": "planner",
//!     "created_at": "2025-12-09T10:15:00Z"
//! });
//! let user = UserCreated::read_any_version(1, v1)?;
//! assert_eq!(user.locale, None);
//! # Ok::<(), events::upcast::ReadError>(())
//! ```
pub use tidings;

include!(concat!(env!("OUT_DIR"), "/events.rs"));

/// The README's Rust examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The Rust examples of `docs/generate.md` (building and reading payloads),
/// compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/generate.md")]
pub struct GenerateDocDoctests;
