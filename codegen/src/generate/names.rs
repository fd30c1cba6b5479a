//! Rust names for modules and hoisted definitions.
use proc_macro2::Ident;

use super::prepare::Prepared;

/// A module name from a registry token (`ai_agent`, `user_created`); a raw
/// identifier for a keyword (`r#type`), a trailing `_` for those that
/// cannot be raw (`self_`).
pub(crate) fn module_ident(name: &str) -> Ident {
    match name {
        "self" | "super" | "crate" | "Self" | "_" => quote::format_ident!("{name}_"),
        _ if syn::parse_str::<Ident>(name).is_ok() => quote::format_ident!("{name}"),
        _ => Ident::new_raw(name, proc_macro2::Span::call_site()),
    }
}

/// `wanted`, or `wanted2`, ... : a definition name not taken yet.
pub(crate) fn free_def_name(prepared: &Prepared, wanted: &str) -> String {
    let taken = |n: &str| {
        prepared.defs.contains_key(n)
            || prepared.reexports.contains_key(n)
            || prepared.versions.iter().any(|v| v.rust_name == n)
    };
    if !taken(wanted) {
        return wanted.to_string();
    }
    (2..)
        .map(|i| format!("{wanted}{i}"))
        .find(|c| !taken(c))
        .unwrap_or_else(|| wanted.to_string())
}
