//! The derive itself, as a function of the input, so it can be tested
//! without a compiler.
use std::path::{Path, PathBuf};

use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;
use serde_json::Value;
use syn::{Data, DataStruct, DeriveInput, Fields, LitStr};
use tidings_codegen::registry::EventType;

use crate::attr::{self, EventAttrs};
use crate::check;
use crate::errors::Errors;
use crate::key;
use crate::schema::{self, Loaded};
use crate::serde_attr::ContainerSerde;

/// Overrides `CARGO_MANIFEST_DIR` as the base of `schema` paths. Only for
/// this crate's compile-fail tests, whose crates trybuild builds elsewhere.
pub(crate) const TEST_MANIFEST_DIR: &str = "TIDINGS_DERIVE_TEST_MANIFEST_DIR";

/// The directory `schema` paths are relative to.
pub(crate) fn manifest_dir() -> Option<PathBuf> {
    std::env::var_os(TEST_MANIFEST_DIR)
        .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR"))
        .map(PathBuf::from)
}

/// Why a stream name is not `[A-Z][A-Z0-9_]*`.
fn stream_problem(s: &str) -> Option<String> {
    let mut chars = s.chars();
    match chars.next() {
        None => Some("it is empty".into()),
        Some(c) if !c.is_ascii_uppercase() => {
            Some(format!("{s:?} must start with an upper-case letter A-Z"))
        }
        Some(_) => chars
            .find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_'))
            .map(|c| {
                format!(
                    "{s:?} contains {c:?}; stream names allow A-Z, 0-9 and _ (e.g. AUTH_EVENTS)"
                )
            }),
    }
}

fn event_type_problem(s: &str) -> Option<String> {
    s.parse::<EventType>().err().map(|e| e.to_string())
}

/// One of the string settings that may come from the attribute, the schema's
/// `x-*` keyword, or both (then they must agree).
struct Setting<'a> {
    /// The attribute key (`event_type`).
    attr: &'static str,
    /// The schema keyword (`x-event-type`).
    keyword: &'static str,
    /// What it is, for "missing" errors (`event type`).
    what: &'static str,
    /// An example value.
    example: &'static str,
    given: Option<&'a LitStr>,
    /// Whether to stay silent when it is missing (see
    /// [`EventAttrs::excuses_missing`]).
    excused: bool,
    problem: fn(&str) -> Option<String>,
}

/// Where the schema came from, for errors about its content.
struct SchemaRef<'a> {
    loaded: Option<&'a Loaded>,
    lit: Option<&'a LitStr>,
    attr_span: Span,
}

impl SchemaRef<'_> {
    fn keyword(&self, k: &str) -> Option<&Value> {
        self.loaded.and_then(|l| l.root.get(k))
    }

    fn path(&self) -> String {
        self.loaded
            .map(|l| l.path.display().to_string())
            .unwrap_or_default()
    }

    fn span(&self) -> Span {
        self.lit.map_or(self.attr_span, LitStr::span)
    }
}

fn resolve_str(s: &Setting<'_>, schema: &SchemaRef<'_>, errors: &mut Errors) -> Option<String> {
    let declared = schema.keyword(s.keyword);
    if let Some(lit) = s.given {
        let value = lit.value();
        if let Some(p) = (s.problem)(&value) {
            errors.at(lit.span(), format!("`{}`: {p}", s.attr));
            return None;
        }
        if let Some(d) = declared {
            if d.as_str() != Some(value.as_str()) {
                errors.at(
                    lit.span(),
                    format!(
                        "`{} = {value:?}` disagrees with the schema's `\"{}\": {d}` ({}); they must agree (leave the attribute out to use the schema's)",
                        s.attr,
                        s.keyword,
                        schema.path()
                    ),
                );
                return None;
            }
        }
        return Some(value);
    }
    match declared {
        Some(Value::String(v)) => match (s.problem)(v) {
            Some(p) => {
                errors.at(
                    schema.span(),
                    format!("`{}` in {}: {p}", s.keyword, schema.path()),
                );
                None
            }
            None => Some(v.clone()),
        },
        Some(other) => {
            errors.at(
                schema.span(),
                format!(
                    "`{}` in {} must be a string, not {other}",
                    s.keyword,
                    schema.path()
                ),
            );
            None
        }
        None => {
            if schema.loaded.is_some() && !s.excused {
                errors.at(
                    schema.attr_span,
                    format!(
                        "missing {}: add `{} = \"{}\"` to `#[domain_event]`, or declare `\"{}\"` in {}",
                        s.what,
                        s.attr,
                        s.example,
                        s.keyword,
                        schema.path()
                    ),
                );
            }
            None
        }
    }
}

fn resolve_version(attrs: &EventAttrs, schema: &SchemaRef<'_>, errors: &mut Errors) -> Option<u32> {
    let keyword = "x-schema-version";
    let declared = schema.keyword(keyword);
    if let Some(v) = attrs.version {
        if let Some(d) = declared {
            if d.as_u64() != Some(u64::from(v.value)) {
                errors.at(
                    v.span,
                    format!(
                        "`version = {}` disagrees with the schema's `\"{keyword}\": {d}` ({}); they must agree (leave the attribute out to use the schema's)",
                        v.value,
                        schema.path()
                    ),
                );
                return None;
            }
        }
        return Some(v.value);
    }
    match declared {
        Some(d) => match d.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n >= 1 => Some(n),
            _ => {
                errors.at(
                    schema.span(),
                    format!(
                        "`{keyword}` in {} must be an integer from 1 to {}, not {d}",
                        schema.path(),
                        u32::MAX
                    ),
                );
                None
            }
        },
        None => {
            if schema.loaded.is_some() && !attrs.excuses_missing("version") {
                errors.at(
                    schema.attr_span,
                    format!(
                        "missing schema version: add `version = N` to `#[domain_event]`, or declare `\"{keyword}\": N` in {}",
                        schema.path()
                    ),
                );
            }
            None
        }
    }
}

/// The entity key: the `key` attribute, the schema's `x-entity-key`, or
/// both (then the attribute's field must be serialized as the property the
/// schema names), so a hand-written type keys its events like the
/// generated one.
fn resolve_key(
    attrs: &EventAttrs,
    schema: &SchemaRef<'_>,
    ident: &syn::Ident,
    fields: &syn::FieldsNamed,
    container: &ContainerSerde,
    errors: &mut Errors,
) -> Option<key::Key> {
    let keyword = tidings_codegen::registry::lock::ENTITY_KEY;
    let declared = match schema.keyword(keyword) {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(other) => {
            errors.at(
                schema.span(),
                format!(
                    "`{keyword}` in {} must name a property (a string), not {other}",
                    schema.path()
                ),
            );
            return None;
        }
    };
    match (&attrs.key, declared) {
        (Some(lit), declared) => {
            let key = key::resolve(lit, ident, fields, container, errors)?;
            if let Some(d) = declared.filter(|d| *d != key.wire) {
                errors.at(
                    lit.span(),
                    format!(
                        "`key = {:?}` (property {:?}) disagrees with the schema's `\"{keyword}\": {d:?}` ({}); they must agree (leave `key` out to use the schema's)",
                        lit.value(),
                        key.wire,
                        schema.path()
                    ),
                );
                return None;
            }
            Some(key)
        }
        (None, Some(d)) => {
            key::resolve_declared(d, schema.span(), ident, fields, container, errors)
        }
        (None, None) => None,
    }
}

/// Sorts the keys of every object, so the embedded text does not depend on
/// whether some crate in the build enables serde_json's `preserve_order`.
fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// Expands `#[derive(DomainEvent)]` on `input`; `base` is the directory
/// `schema` paths are relative to (`CARGO_MANIFEST_DIR`). Every problem
/// found is in the returned error.
pub(crate) fn expand(input: &DeriveInput, base: Option<&Path>) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let ident = &input.ident;
    let attrs = EventAttrs::parse(&input.attrs, &mut errors);

    let not_struct = "`DomainEvent` can only be derived for a struct with named fields: an event payload is a JSON object";
    let fields = match &input.data {
        Data::Struct(DataStruct {
            fields: Fields::Named(f),
            ..
        }) => Some(f),
        Data::Struct(_) => {
            errors.at(ident.span(), not_struct);
            None
        }
        Data::Enum(e) => {
            errors.at(e.enum_token.span, not_struct);
            None
        }
        Data::Union(u) => {
            errors.at(u.union_token.span, not_struct);
            None
        }
    };
    if !input.generics.params.is_empty() {
        errors.spanned(
            &input.generics,
            "`DomainEvent` cannot be derived for a generic type: an event type has one schema, stream and subject",
        );
    }
    for field in fields.iter().flat_map(|f| &f.named) {
        attr::reject_on_field(&field.attrs, &mut errors);
    }
    let Some(attr_span) = attrs.span else {
        errors.at(
            ident.span(),
            "missing `#[domain_event(schema = \"path/to/schema.json\")]`: `DomainEvent` needs the event's JSON Schema (see docs/derive.md)",
        );
        errors.finish()?;
        return Ok(TokenStream::new());
    };

    let loaded = match (&attrs.schema, base) {
        (None, _) if attrs.excuses_missing("schema") => None,
        (None, _) => {
            errors.at(
                attr_span,
                "missing `schema = \"path/to/schema.json\"` (relative to CARGO_MANIFEST_DIR): the event's JSON Schema, embedded in the binary",
            );
            None
        }
        (Some(lit), None) => {
            errors.at(
                lit.span(),
                "CARGO_MANIFEST_DIR is not set, so the schema path cannot be resolved; build with cargo",
            );
            None
        }
        (Some(lit), Some(base)) => match schema::load(base, lit) {
            Ok(l) => Some(l),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    let schema_ref = SchemaRef {
        loaded: loaded.as_ref(),
        lit: attrs.schema.as_ref(),
        attr_span,
    };
    let event_type = resolve_str(
        &Setting {
            attr: "event_type",
            keyword: "x-event-type",
            what: "event type",
            example: "service.entity.action",
            given: attrs.event_type.as_ref(),
            excused: attrs.excuses_missing("event_type"),
            problem: event_type_problem,
        },
        &schema_ref,
        &mut errors,
    );
    let version = resolve_version(&attrs, &schema_ref, &mut errors);
    let stream = resolve_str(
        &Setting {
            attr: "stream",
            keyword: "x-stream",
            what: "stream",
            example: "SERVICE_EVENTS",
            given: attrs.stream.as_ref(),
            excused: attrs.excuses_missing("stream"),
            problem: stream_problem,
        },
        &schema_ref,
        &mut errors,
    );

    let container = ContainerSerde::parse(&input.attrs);
    let key =
        fields.and_then(|f| resolve_key(&attrs, &schema_ref, ident, f, &container, &mut errors));
    if let (Some(l), Some(f)) = (&loaded, fields) {
        check::check_fields(ident, f, &container, l, &mut errors);
    }

    errors.finish()?;
    let (Some(loaded), Some(event_type), Some(version), Some(stream)) =
        (loaded, event_type, version, stream)
    else {
        // Every path that leaves one of them unset records an error.
        return Err(syn::Error::new(attr_span, "incomplete `#[domain_event]`"));
    };
    let mut root = loaded.root;
    sort_keys(&mut root);
    let schema_text = serde_json::to_string(&root)
        .map_err(|e| syn::Error::new(attr_span, format!("cannot serialize the schema: {e}")))?;
    let uri = schema::id(&root)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("urn:tidings:schema:{event_type}:v{version}"));
    let tracked = loaded
        .files
        .iter()
        .filter_map(|p| p.to_str())
        .map(|p| LitStr::new(p, Span::call_site()));
    let version = Literal::u32_unsuffixed(version);
    let key_items = key.map(|k| k.tokens());
    let upcast = (!attrs.custom_upcast).then(|| {
        quote! {
            #[automatically_derived]
            impl ::tidings::upcast::ReadAnyVersion for #ident {}
        }
    });
    Ok(quote! {
        const _: () = {
            // Rebuild when the schema or a file it references changes.
            #( const _: &[u8] = ::core::include_bytes!(#tracked); )*

            #[automatically_derived]
            impl ::tidings::DomainEvent for #ident {
                const EVENT_TYPE: &'static str = #event_type;
                const SCHEMA_VERSION: u32 = #version;
                const STREAM: &'static str = #stream;
                const SCHEMA: &'static str = #schema_text;
                const SCHEMA_URI: &'static str = #uri;
                #key_items
            }
            #upcast
        };
    })
}
