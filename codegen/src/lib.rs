//! The Tidings schema registry toolchain: loading and linting `schemas/`, the
//! compatibility engine, and Rust code generation. It has no runtime
//! dependencies, so the CLI, the root `build.rs` and the derive macro can all
//! use it.
pub mod asyncapi;
pub mod bundle;
pub mod catalog;
pub mod compat;
#[cfg(feature = "generate")]
pub mod generate;
pub mod registry;
pub mod rust_text;
pub mod schema_keywords;
pub mod schema_walk;
