//! `#[derive(DomainEvent)]` for Tidings: implements `tidings::DomainEvent`
//! for a payload struct and checks the struct against its JSON Schema at
//! compile time.
//!
//! Use it through the `tidings` crate, which re-exports it beside the trait
//! of the same name (like serde does):
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tidings::DomainEvent;
//!
//! #[derive(Serialize, Deserialize, DomainEvent)]
//! #[domain_event(schema = "../schemas/auth/user.created.v1.json", key = "user_id")]
//! struct UserCreated {
//!     user_id: uuid::Uuid,
//!     email: String,
//!     display_name: String,
//!     role: String,
//!     #[serde(skip_serializing_if = "Option::is_none")]
//!     invited_by: Option<uuid::Uuid>,
//!     created_at: String,
//! }
//!
//! assert_eq!(UserCreated::EVENT_TYPE, "auth.user.created");
//! assert_eq!(UserCreated::STREAM, "AUTH_EVENTS");
//! assert_eq!(UserCreated::KEY_FIELD, Some("user_id"));
//! ```
//!
//! The attribute takes `schema` (required; a path relative to
//! `CARGO_MANIFEST_DIR`), `event_type`, `version` and `stream` (each optional
//! when the schema declares `x-event-type`, `x-schema-version`, `x-stream`;
//! when given in both places they must agree) and `key` (optional; the field
//! the entity key comes from). The schema file and every file it references
//! are bundled into one document at compile time and embedded as
//! `DomainEvent::SCHEMA`; editing any of them rebuilds the crate.
//!
//! Every problem is a compile error pointing at the attribute value or field
//! it is about; see `docs/derive.md` for the full list of checks.
use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

mod attr;
mod check;
mod errors;
mod expand;
mod key;
mod rust_type;
mod schema;
mod serde_attr;

#[cfg(test)]
mod tests;

/// Implements `tidings::DomainEvent` for a struct with named fields, from a
/// `#[domain_event(...)]` attribute and the JSON Schema it names. See the
/// crate documentation and `docs/derive.md`.
#[proc_macro_derive(DomainEvent, attributes(domain_event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let base = expand::manifest_dir();
    expand::expand(&input, base.as_deref())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
