//! Snapshot tests of the expansion: the generated code of representative
//! inputs, rendered with prettyplease, compared with the checked-in files in
//! `tests/snapshots/`. `UPDATE_SNAPSHOTS=1 cargo test -p tidings-derive`
//! rewrites them.
use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::expand::expand;

fn base() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The expansion of `input` as formatted Rust, with the machine-specific
/// manifest directory replaced.
fn render(tokens: TokenStream) -> String {
    // Replace the path before formatting: line breaks depend on its length.
    let text = tokens
        .to_string()
        .replace(&base().display().to_string(), "$CARGO_MANIFEST_DIR");
    match syn::parse_str::<syn::File>(&text) {
        Ok(file) => prettyplease::unparse(&file),
        Err(e) => panic!("the expansion is not a Rust file: {e}"),
    }
}

fn expanded(input: TokenStream) -> String {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(i) => i,
        Err(e) => panic!("bad test input: {e}"),
    };
    render(expand(&input, Some(base())).unwrap_or_else(syn::Error::into_compile_error))
}

fn assert_snapshot(name: &str, actual: &str) {
    let path: PathBuf = base()
        .join("tests/snapshots")
        .join(format!("{name}.expanded.rs"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        if let Err(e) = std::fs::write(&path, actual) {
            panic!("cannot write {}: {e}", path.display());
        }
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} is out of date (UPDATE_SNAPSHOTS=1 refreshes it); the expansion is now:\n{actual}",
        path.display()
    );
}

#[test]
fn snapshot_string_key_and_schema_metadata() {
    let out = expanded(quote::quote! {
        #[domain_event(schema = "tests/fixtures/account.opened.v1.json", key = "account_id")]
        struct AccountOpened {
            account_id: String,
            owner: Uuid,
            opened_at: String,
            number: u64,
            balance: f64,
            active: bool,
            tags: Vec<String>,
            note: Option<String>,
        }
    });
    assert_snapshot("account_opened", &out);
}

#[test]
fn snapshot_display_key_and_uri_fallback() {
    let out = expanded(quote::quote! {
        #[domain_event(
            schema = "tests/fixtures/bare.json",
            event_type = "inventory.item.counted",
            version = 2,
            stream = "INVENTORY_EVENTS",
            key = "id",
        )]
        struct ItemCounted {
            id: u32,
        }
    });
    assert_snapshot("item_counted", &out);
}

#[test]
fn snapshot_every_error_at_once() {
    let out = expanded(quote::quote! {
        #[domain_event(
            schema = "tests/fixtures/account.opened.v1.json",
            event_type = "bank.account.closed",
            stream = "bank",
            key = "nope",
            colour = "blue",
        )]
        struct AccountOpened {
            account_id: i64,
            owner: Option<Uuid>,
            extra: bool,
        }
    });
    assert_snapshot("errors", &out);
    // Collected, not stopped at the first.
    assert!(out.matches("compile_error!").count() >= 7, "{out}");
}

#[test]
fn the_key_attribute_and_x_entity_key_must_agree() {
    let out = expanded(quote::quote! {
        #[domain_event(schema = "tests/fixtures/camel.json", key = "total")]
        #[serde(rename_all = "camelCase")]
        struct Placed { order_id: String, total: i64 }
    });
    assert!(
        out.contains("`key = \\\"total\\\"` (property \\\"total\\\") disagrees with the schema's"),
        "{out}"
    );
    let out = expanded(quote::quote! {
        #[domain_event(schema = "tests/fixtures/camel.json")]
        struct Placed { id: String, total_cents: i64 }
    });
    assert!(
        out.contains("names property \\\"orderId\\\", but `Placed` has no field serialized as"),
        "{out}"
    );
}

#[test]
fn without_a_manifest_dir_the_schema_cannot_be_found() {
    let input: DeriveInput = syn::parse_quote! {
        #[domain_event(schema = "x.json")]
        struct E { a: u8 }
    };
    let err = match expand(&input, None) {
        Err(e) => e.to_string(),
        Ok(t) => panic!("expanded without a base: {t}"),
    };
    assert!(err.contains("CARGO_MANIFEST_DIR is not set"), "{err}");
}
