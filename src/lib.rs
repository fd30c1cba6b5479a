//! This organisation's event catalog.
//!
//! Typed events are generated here from `schemas/` by `build.rs`, so services
//! write `events::auth::UserCreated`. Until the generator lands the crate only
//! re-exports the runtime.
pub use tidings;

/// The README's Rust examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
