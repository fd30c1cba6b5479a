//! `#[derive(DomainEvent)]` for Tidings.
//!
//! The macro arrives with the code-generation work; this crate holds its place
//! in the workspace so that the layout does not change when it lands.
