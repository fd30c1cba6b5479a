//! Runs typify on one event type's schemas, turning its panics into errors.
//!
//! typify 0.8 panics (instead of returning `Err`) on some inputs; the lint
//! rejects the known ones, and anything left is caught here so that a
//! build script or the CLI reports the schema file instead of crashing.
use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use proc_macro2::TokenStream;
use schemars::schema::Schema;
use serde_json::Value;
use typify::{TypeSpace, TypeSpaceImpl, TypeSpaceSettings};

thread_local! {
    /// Set while this thread runs typify: its panics are reported as
    /// errors, so the panic hook stays quiet about them.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Installs (once) a panic hook that is silent for panics caught here and
/// defers to the previous hook for every other panic.
fn install_quiet_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// The text of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "typify panicked".to_string())
}

/// Converts a JSON schema value to schemars 0.8's model.
pub(crate) fn to_schemars(value: &Value) -> Result<Schema, String> {
    serde_json::from_value::<Schema>(value.clone()).map_err(|e| e.to_string())
}

/// The traits typify knows a generated type implements (what a type space
/// that refers to it needs to know, see [`run`]'s `common`).
pub(crate) type Impls = BTreeMap<String, Vec<TypeSpaceImpl>>;

/// The path a type space uses for a type of the `common` module; the
/// postprocessor turns it into a relative path (`super::super::common::X`).
pub(crate) const COMMON_PLACEHOLDER: &str = "__tidings_common";

/// Generates the types of `types` (named definitions: every version's root
/// and every shared definition) in one typify type space. The definitions
/// named in `common` are not generated: typify refers to them as
/// `__tidings_common::<Name>`, with the traits `common` says they have.
/// Returns the code and, for every named type generated, the traits it
/// implements. `Err` carries typify's error or panic message.
pub(crate) fn run(
    types: &BTreeMap<String, Value>,
    common: &Impls,
) -> Result<(TokenStream, Impls), String> {
    let mut defs = Vec::with_capacity(types.len());
    for (name, v) in types {
        defs.push((
            name.clone(),
            to_schemars(v).map_err(|e| format!("{name}: {e}"))?,
        ));
    }
    install_quiet_hook();
    QUIET.with(|q| q.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut settings = TypeSpaceSettings::default();
        settings.with_derive("PartialEq".to_string());
        // `X::builder()`, rewritten by `builder::rewrite`.
        settings.with_struct_builder(true);
        for (name, impls) in common {
            settings.with_replacement(
                name,
                format!("{COMMON_PLACEHOLDER}::{name}"),
                impls.iter().copied(),
            );
        }
        let mut space = TypeSpace::new(&settings);
        space.add_ref_types(defs).map_err(|e| e.to_string())?;
        let all = [
            TypeSpaceImpl::FromStr,
            TypeSpaceImpl::FromStringIrrefutable,
            TypeSpaceImpl::Display,
            TypeSpaceImpl::Default,
        ];
        let impls: Impls = space
            .iter_types()
            .filter(|t| types.contains_key(&t.name()))
            .map(|t| {
                let has = all.iter().copied().filter(|i| t.has_impl(*i));
                (t.name(), has.collect())
            })
            .collect();
        Ok((space.to_stream(), impls))
    }));
    QUIET.with(|q| q.set(false));
    match result {
        Ok(r) => r,
        Err(payload) => Err(format!(
            "the Rust generator (typify) panicked: {}",
            panic_message(payload.as_ref())
        )),
    }
}
