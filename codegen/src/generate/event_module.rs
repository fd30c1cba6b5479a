//! The module of one event type: its versions' payload types (typify), the
//! payload attributes, hoisting, upcasts and the catalog entries.
use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::error::Diagnostic;
use super::{locate, names, postprocess, prepare, typify_run, upcast, Generated, Options, Shared};
use crate::compat::Mode;
use crate::registry::load::EventFile;
use crate::registry::EventType;

/// Whether `tidings check` proves, for this mode, that each version reads
/// the previous version's documents.
fn checks_backward(mode: Mode) -> bool {
    matches!(
        mode,
        Mode::Backward | Mode::BackwardTransitive | Mode::Full | Mode::FullTransitive
    )
}

fn diag(file: &str, message: String, help: &str) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: 0,
        pointer: String::new(),
        message,
        help: help.to_string(),
    }
}

/// Runs typify for the prepared schemas and cleans its output. A failure
/// is reported at the subschema that causes it ([`locate`]), else at the
/// latest version's file.
fn typify(
    prepared: &prepare::Prepared,
    files: &[&EventFile],
    shared: &mut Shared,
) -> Result<syn::File, Diagnostic> {
    let file_for_errors = files.last().map(|f| f.path.as_str()).unwrap_or_default();
    let common: typify_run::Impls = prepared
        .common
        .iter()
        .map(|n| {
            let impls = shared.common_impls.get(n).cloned().unwrap_or_default();
            (n.clone(), impls)
        })
        .collect();
    let types = prepared.types();
    let (tokens, _) = typify_run::run(&types, &common).map_err(|m| {
        let roots: Vec<(String, String)> = prepared
            .versions
            .iter()
            .map(|v| (v.rust_name.clone(), v.file.clone()))
            .collect();
        let (file, pointer) = locate::culprit(&types, &common)
            .and_then(|(name, at)| locate::source_of(&name, &at, &roots, files))
            .unwrap_or_else(|| (file_for_errors.to_string(), String::new()));
        Diagnostic {
            pointer,
            ..diag(
                &file,
                m,
                "the lint (tidings check) rejects the keywords known to break the generator; simplify the schema at the pointer, or report it",
            )
        }
    })?;
    let mut file = postprocess::parse(tokens).map_err(|m| diag(file_for_errors, m, ""))?;
    shared.wrapped.extend(postprocess::wrapped_common(&file));
    let cx = postprocess::Context {
        orders: &shared.orders,
        common: shared.common_raw.as_ref(),
        keep: Default::default(),
        common_depth: 2,
    };
    postprocess::clean(&mut file, &cx);
    Ok(file)
}

/// The module of one event type (`user_created`) plus the service-level
/// re-exports and alias, its catalog entries, and whether a version is
/// deprecated (the catalog then allows naming it).
pub(super) fn event_type_module(
    ty: &EventType,
    files: &[&EventFile],
    mode: Mode,
    options: &Options,
    out: &mut Generated,
    shared: &mut Shared,
) -> Result<(TokenStream, Vec<TokenStream>, bool), Diagnostic> {
    let base = ty.rust_name();
    let mut prepared = prepare::prepare(&base, files, &shared.common)?;
    let mut file = typify(&prepared, files, shared)?;
    let mut fields = collect_fields(&mut file, &prepared)?;
    if hoist_unchanged(&mut prepared, &fields, &base) {
        file = typify(&prepared, files, shared)?;
        fields = collect_fields(&mut file, &prepared)?;
    }
    mark_payloads(&mut file, &prepared, &fields, ty, options)?;
    let steps = upcast_steps(&prepared, &fields, mode, out);
    let deprecated = prepared.versions.iter().any(|v| v.deprecated);
    let reexports = reexports(&prepared, &file, shared);
    let tokens = module_tokens(ty, &prepared, &file, &steps, mode, &reexports);
    let entries = catalog_entries(ty, &prepared);
    Ok((tokens, entries, deprecated))
}

/// The two neighbouring versions `i - 1` and `i` as upcast payloads.
fn payload_pair<'p>(
    prepared: &'p prepare::Prepared,
    fields: &'p [Vec<postprocess::FieldInfo>],
    i: usize,
) -> (upcast::Payload<'p>, upcast::Payload<'p>) {
    let (old, new) = (&prepared.versions[i - 1], &prepared.versions[i]);
    (
        upcast::Payload {
            name: &old.rust_name,
            fields: &fields[i - 1],
            root: &old.root,
        },
        upcast::Payload {
            name: &new.rust_name,
            fields: &fields[i],
            root: &new.root,
        },
    )
}

/// Hoists each property whose schema did not change between neighbouring
/// versions but got per-version types into a shared definition named after
/// the event type (`UserCreatedRole`). Returns whether anything was
/// hoisted (typify must then run again).
fn hoist_unchanged(
    prepared: &mut prepare::Prepared,
    fields: &[Vec<postprocess::FieldInfo>],
    base: &str,
) -> bool {
    let mut hoists: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for i in 1..prepared.versions.len() {
        let (old, new) = payload_pair(prepared, fields, i);
        let pair = [
            prepared.versions[i - 1].version,
            prepared.versions[i].version,
        ];
        for prop in upcast::hoist_candidates(&old, &new) {
            let vs = hoists.entry(prop).or_default();
            for v in pair {
                if !vs.contains(&v) {
                    vs.push(v);
                }
            }
        }
    }
    for (prop, versions) in &hoists {
        let name = names::free_def_name(
            prepared,
            &format!("{base}{}", crate::registry::event_type::pascal_case(prop)),
        );
        prepare::hoist(prepared, prop, versions, &name);
    }
    !hoists.is_empty()
}

/// Gives each version's struct its payload attributes: the derive, the
/// schema path, the entity key, its doc and `#[deprecated]`.
fn mark_payloads(
    file: &mut syn::File,
    prepared: &prepare::Prepared,
    fields: &[Vec<postprocess::FieldInfo>],
    ty: &EventType,
    options: &Options,
) -> Result<(), Diagnostic> {
    for (v, fields) in prepared.versions.iter().zip(fields) {
        let key = entity_key_field(v, fields)?;
        let schema_path = format!(
            "{}/{}",
            options.schemas_from_manifest.trim_end_matches('/'),
            v.file
        );
        let doc = format!(
            "Event `{ty}`, schema version {} (`{}`){}.",
            v.version,
            v.file,
            if v.deprecated { "; **deprecated**" } else { "" }
        );
        if let Some(s) = postprocess::find_struct(file, &v.rust_name) {
            postprocess::mark_payload(s, &schema_path, key.as_deref(), &doc);
            if v.deprecated {
                s.attrs.push(syn::parse_quote!(#[deprecated(note = "this schema version is deprecated in the registry (x-deprecated)")]));
            }
        }
    }
    Ok(())
}

/// The Rust field the version's `x-entity-key` names, if it has one.
fn entity_key_field(
    v: &prepare::Version,
    fields: &[postprocess::FieldInfo],
) -> Result<Option<String>, Diagnostic> {
    let Some(k) = &v.entity_key else {
        return Ok(None);
    };
    match fields.iter().find(|f| f.wire == *k) {
        Some(f) => Ok(Some(f.ident.to_string())),
        None => Err(Diagnostic {
            file: v.file.clone(),
            line: 0,
            pointer: "/x-entity-key".into(),
            message: format!("x-entity-key names {k:?}, which is not a property of the schema"),
            help: "name a required string property (an id), or remove x-entity-key".into(),
        }),
    }
}

/// How each version is upcast to the next, recorded in `out`.
fn upcast_steps(
    prepared: &prepare::Prepared,
    fields: &[Vec<postprocess::FieldInfo>],
    mode: Mode,
    out: &mut Generated,
) -> Vec<upcast::Step> {
    let mut steps = Vec::new();
    for i in 1..prepared.versions.len() {
        let (old, new) = payload_pair(prepared, fields, i);
        let (old, new, step) = (
            old.name.to_string(),
            new.name.to_string(),
            upcast::field_by_field(&old, &new),
        );
        let step = match step {
            Ok(tokens) => {
                out.upcasts.push((old, new));
                upcast::Step::Fields(tokens)
            }
            Err(reason) if checks_backward(mode) => {
                out.reencoded.push((old, new, reason));
                upcast::Step::Serde
            }
            Err(reason) => {
                out.hand_written.push((old, new, reason.clone()));
                upcast::Step::HandWritten(reason)
            }
        };
        steps.push(step);
    }
    steps
}

/// The module's doc: which versions it holds, then one line per missing
/// hand-written upcast.
fn module_docs(
    event_type: &str,
    names: &[String],
    versions: &[u32],
    steps: &[upcast::Step],
    mode: Mode,
) -> Vec<String> {
    let latest_version = versions.last().copied().unwrap_or(1);
    let head = match versions {
        [only] => format!(" `{event_type}`: the payload type of version {only} and its types."),
        [older @ .., _] => format!(
            " `{event_type}`: payload types of versions {} and {latest_version} (the latest), their types and upcasts.",
            older.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
        ),
        [] => format!(" `{event_type}`."),
    };
    let hand_notes = steps
        .iter()
        .zip(names.windows(2))
        .filter_map(|(s, pair)| match s {
            upcast::Step::HandWritten(reason) => Some(format!(
                " `impl From<{0}> for {1}` is not generated ({reason}) and the mode ({mode}) does not prove that {1} reads {0} documents: write it by hand in the crate that includes this code.",
                pair[0], pair[1]
            )),
            _ => None,
        });
    std::iter::once(head).chain(hand_notes).collect()
}

/// What the module re-exports from `common` as `(name here, name in
/// common)`: each merged definition its versions have, under its schema
/// name ([`super::merge`]), and the nested types typify generated for it
/// (`UserType`), unless the module has a type of that name itself.
fn reexports(
    prepared: &prepare::Prepared,
    file: &syn::File,
    shared: &Shared,
) -> Vec<(String, String)> {
    let own: std::collections::BTreeSet<String> = file
        .items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Struct(s) => Some(s.ident.to_string()),
            syn::Item::Enum(e) => Some(e.ident.to_string()),
            syn::Item::Type(t) => Some(t.ident.to_string()),
            _ => None,
        })
        .collect();
    let mut out: Vec<(String, String)> = Vec::new();
    for (alias, name) in &prepared.reexports {
        out.push((alias.clone(), name.clone()));
        for nested in shared.nested_types(name) {
            let here = match nested.strip_prefix(name.as_str()) {
                Some(rest) => format!("{alias}{rest}"),
                None => nested.clone(),
            };
            let taken = own.contains(&here) || out.iter().any(|(a, _)| *a == here);
            if !taken && !prepared.reexports.contains_key(&here) {
                out.push((here, nested));
            }
        }
    }
    out
}

/// `pub use` items for [`reexports`].
fn reexport_items(reexports: &[(String, String)]) -> impl Iterator<Item = TokenStream> + '_ {
    reexports.iter().map(|(alias, name)| {
        let (alias, name) = (format_ident!("{alias}"), format_ident!("{name}"));
        if alias == name {
            quote!(pub use super::super::common::#name;)
        } else {
            quote!(pub use super::super::common::#name as #alias;)
        }
    })
}

/// The event type's module and the service-level re-exports and alias.
fn module_tokens(
    ty: &EventType,
    prepared: &prepare::Prepared,
    file: &syn::File,
    steps: &[upcast::Step],
    mode: Mode,
    reexports: &[(String, String)],
) -> TokenStream {
    let event_type = ty.to_string();
    let names: Vec<String> = prepared
        .versions
        .iter()
        .map(|v| v.rust_name.clone())
        .collect();
    let versions: Vec<u32> = prepared.versions.iter().map(|v| v.version).collect();
    let from_impls = steps.iter().filter_map(|s| match s {
        upcast::Step::Fields(t) => Some(t.clone()),
        _ => None,
    });
    let reads = (0..names.len())
        .map(|t| upcast::read_any_version(&event_type, &names, &versions, steps, t));
    let docs = module_docs(&event_type, &names, &versions, steps, mode);
    let reexports = reexport_items(reexports);
    let items = postprocess::items(file);
    let regex_allow = items.to_string().contains("regress").then(|| {
        quote! {
            #[allow(clippy::unwrap_used)]
        }
    });
    let module = module_ident(ty);
    let latest = format_ident!("{}", names.last().cloned().unwrap_or_default());
    let alias = format_ident!("{}", ty.rust_name());
    let idents: Vec<_> = names.iter().map(|n| format_ident!("{n}")).collect();
    let latest_version = versions.last().copied().unwrap_or(1);
    let latest_literal = proc_macro2::Literal::u32_unsuffixed(latest_version);
    let alias_doc = format!(" The latest version of `{event_type}` (v{latest_version}).");
    let const_doc = format!(" The event type: `{event_type}`.");
    let latest_doc = format!(" The latest schema version of `{event_type}`.");
    // A deprecated version's type is named by its upcast, the readers,
    // typify's own impls, the re-export and the catalog: those uses are the
    // generator's, not the user's, so they must not warn (`-D warnings`).
    // Users who name the type still get the warning.
    let allow_deprecated = prepared
        .versions
        .iter()
        .any(|v| v.deprecated)
        .then(|| quote!(#[allow(deprecated)]));
    quote! {
        #(#[doc = #docs])*
        #regex_allow
        #allow_deprecated
        pub mod #module {
            #[doc = #const_doc]
            pub const EVENT_TYPE: &str = #event_type;
            #[doc = #latest_doc]
            pub const LATEST_VERSION: u32 = #latest_literal;
            #(#reexports)*
            #items
            #(#from_impls)*
            #(#reads)*
        }
        #allow_deprecated
        pub use #module::{#(#idents),*};
        #[doc = #alias_doc]
        #allow_deprecated
        pub type #alias = #latest;
    }
}

/// The event type's module name: `<entity>_<action>`.
fn module_ident(ty: &EventType) -> proc_macro2::Ident {
    names::module_ident(&format!("{}_{}", ty.entity, ty.action))
}

/// The catalog (`payloads::PAYLOADS`) entries of the event type's versions.
fn catalog_entries(ty: &EventType, prepared: &prepare::Prepared) -> Vec<TokenStream> {
    let event_type = ty.to_string();
    let service = names::module_ident(&ty.service);
    let module = module_ident(ty);
    let latest = format_ident!(
        "{}",
        prepared
            .versions
            .last()
            .map(|v| v.rust_name.as_str())
            .unwrap_or_default()
    );
    prepared
        .versions
        .iter()
        .map(|v| {
            let name = format_ident!("{}", v.rust_name);
            let version = proc_macro2::Literal::u32_unsuffixed(v.version);
            let file = &v.file;
            quote! {
                Payload {
                    event_type: #event_type,
                    version: #version,
                    file: #file,
                    schema: <super::#service::#module::#name as ::tidings::DomainEvent>::SCHEMA,
                    roundtrip: roundtrip::<super::#service::#module::#name>,
                    read_as_latest: read_as::<super::#service::#module::#latest, #version>,
                    violations: ::tidings::schema::violations::<super::#service::#module::#name>,
                }
            }
        })
        .collect()
}

/// The fields of every version's struct; an error if a root is not an
/// object schema.
fn collect_fields(
    file: &mut syn::File,
    prepared: &prepare::Prepared,
) -> Result<Vec<Vec<postprocess::FieldInfo>>, Diagnostic> {
    prepared
        .versions
        .iter()
        .map(|v| {
            postprocess::find_struct(file, &v.rust_name)
                .and_then(|s| postprocess::struct_fields(s))
                .ok_or_else(|| {
                    diag(
                        &v.file,
                        format!("the payload does not generate a struct with named fields (`{}`)", v.rust_name),
                        "an event payload must be an object schema: \"type\": \"object\" with \"properties\"",
                    )
                })
        })
        .collect()
}
