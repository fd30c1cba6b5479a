//! Reading older versions: `From<V1> for V2` where the versions allow a
//! field-by-field move, and `ReadAnyVersion` for every version's type.
//!
//! A step `Vk -> Vk+1` is one of:
//! * [`Step::Fields`]: every field of `Vk+1` is a field of `Vk` with the
//!   same schema and Rust type (moved; wrapped in `Some` when it became
//!   optional), or a new optional field (`None`, or its serde default:
//!   an empty `Vec`, the schema's `default`). Fields of `Vk` that
//!   `Vk+1` dropped are dropped. Generated as `impl From<Vk> for Vk+1`.
//! * [`Step::Serde`]: otherwise, when the event type's compatibility mode
//!   checks BACKWARD (every `Vk` document is a `Vk+1` document: `tidings
//!   check` proves it), the value is re-read through JSON.
//! * [`Step::HandWritten`]: otherwise (modes NONE, FORWARD,
//!   FORWARD_TRANSITIVE) the crate that includes the code must write
//!   `impl From<Vk> for Vk+1`; the reader calls it through
//!   `tidings::upcast::UpcastFrom`, so until it is written the build fails
//!   with a message naming the impl to write and where.
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use super::postprocess::FieldInfo;
use super::prepare::{property, strip_annotations};

/// How one version is turned into the next.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// A generated `impl From<Vk> for Vk+1` (the tokens).
    Fields(TokenStream),
    /// Re-read through JSON (the mode guarantees it works).
    Serde,
    /// A `From` impl the user writes; the reason it is not generated.
    HandWritten(String),
}

/// One version's payload type: its name, fields and root schema.
pub(crate) struct Payload<'a> {
    pub(crate) name: &'a str,
    pub(crate) fields: &'a [FieldInfo],
    pub(crate) root: &'a Value,
}

fn same_schema(old: &Payload<'_>, new: &Payload<'_>, wire: &str) -> bool {
    match (property(old.root, wire), property(new.root, wire)) {
        (Some(a), Some(b)) => strip_annotations(a) == strip_annotations(b),
        _ => false,
    }
}

/// Properties whose schema is the same in `old` and `new` but whose Rust
/// types differ only because typify named them after each version: they
/// should be hoisted into a shared definition.
pub(crate) fn hoist_candidates(old: &Payload<'_>, new: &Payload<'_>) -> Vec<String> {
    new.fields
        .iter()
        .filter_map(|nf| {
            let of = old.fields.iter().find(|f| f.wire == nf.wire)?;
            (of.ty != nf.ty
                && of.ty.contains(old.name)
                && nf.ty.contains(new.name)
                && same_schema(old, new, &nf.wire))
            .then(|| nf.wire.clone())
        })
        .collect()
}

/// `impl From<old> for new`, field by field, or why it cannot be.
pub(crate) fn field_by_field(old: &Payload<'_>, new: &Payload<'_>) -> Result<TokenStream, String> {
    if old.fields.iter().chain(new.fields).any(|f| f.flatten) {
        return Err(
            "a version has a flattened map field (additionalProperties with a schema)".into(),
        );
    }
    let mut inits = Vec::new();
    for nf in new.fields {
        let ident = &nf.ident;
        let Some(of) = old.fields.iter().find(|f| f.wire == nf.wire) else {
            if nf.option_of.is_some() {
                inits.push(quote!(#ident: ::core::option::Option::None));
                continue;
            }
            match &nf.default {
                Some(None) => {
                    inits.push(quote!(#ident: ::core::default::Default::default()));
                    continue;
                }
                Some(Some(path)) => {
                    let path: syn::ExprPath = syn::parse_str(path)
                        .map_err(|e| format!("property `{}`: default {path:?}: {e}", nf.wire))?;
                    inits.push(quote!(#ident: #path()));
                    continue;
                }
                None => {}
            }
            return Err(format!("property `{}` is new and required", nf.wire));
        };
        if !same_schema(old, new, &nf.wire) {
            return Err(format!("the schema of property `{}` changed", nf.wire));
        }
        let old_ident = &of.ident;
        if of.ty == nf.ty {
            inits.push(quote!(#ident: value.#old_ident));
        } else if nf.option_of.as_deref() == Some(of.ty.as_str()) {
            inits.push(quote!(#ident: ::core::option::Option::Some(value.#old_ident)));
        } else {
            return Err(format!(
                "property `{}` has Rust type `{}` in {} but `{}` in {}",
                nf.wire, of.ty, old.name, nf.ty, new.name
            ));
        }
    }
    let (o, n) = (format_ident!("{}", old.name), format_ident!("{}", new.name));
    let doc = format!(
        " Upcast: each field of `{n}` is moved from `{o}` (same schema) or is new and optional (`None` / its default); fields `{n}` no longer declares are dropped."
    );
    Ok(quote! {
        #[doc = #doc]
        impl ::core::convert::From<#o> for #n {
            fn from(value: #o) -> Self {
                Self { #(#inits,)* }
            }
        }
    })
}

/// `impl ReadAnyVersion for V{target}`: versions up to `target` are read as
/// themselves and upcast step by step; newer versions are read directly as
/// `target` (the forward direction: unknown fields are ignored).
/// `names[i]` / `versions[i]` list every version; `steps[i]` turns
/// version `i` into version `i + 1`.
pub(crate) fn read_any_version(
    event_type: &str,
    names: &[String],
    versions: &[u32],
    steps: &[Step],
    target: usize,
) -> TokenStream {
    let target_ident = format_ident!("{}", names[target]);
    let target_version = versions[target];
    let target_literal = proc_macro2::Literal::u32_unsuffixed(target_version);
    let mut arms = Vec::new();
    for (i, v) in versions.iter().enumerate().take(target + 1) {
        let start = format_ident!("{}", names[i]);
        let mut body = vec![quote! {
            let value: #start = ::tidings::upcast::decode(version, data)?;
        }];
        for (j, step) in steps.iter().enumerate().take(target).skip(i) {
            let next = format_ident!("{}", names[j + 1]);
            body.push(match step {
                Step::Serde => quote! {
                    let value: #next = ::tidings::upcast::reencode(EVENT_TYPE, version, &value)?;
                },
                Step::Fields(_) => quote! {
                    let value: #next = ::core::convert::From::from(value);
                },
                // The user's `From` impl, through a trait whose error says
                // which impl to write when it is missing.
                Step::HandWritten(_) => quote! {
                    let value: #next = ::tidings::upcast::UpcastFrom::upcast_from(value);
                },
            });
        }
        let v = proc_macro2::Literal::u32_unsuffixed(*v);
        arms.push(quote! { #v => { #(#body)* ::core::result::Result::Ok(value) } });
    }
    let older = match &versions[..target] {
        [] => String::new(),
        [only] => format!(", a payload of version {only} upcast to it"),
        [first, .., last] => {
            format!(", a payload of versions {first} to {last} upcast to it")
        }
    };
    let doc = format!(
        " Reads a payload of `{event_type}` written as any version: version {target_version} as itself{older}, and a newer version directly as version {target_version} (its unknown fields are ignored)."
    );
    quote! {
        #[doc = #doc]
        impl ::tidings::upcast::ReadAnyVersion for #target_ident {
            fn read_any_version(
                version: u32,
                data: ::serde_json::Value,
            ) -> ::core::result::Result<Self, ::tidings::upcast::ReadError> {
                match version {
                    #(#arms)*
                    v if v > #target_literal => ::tidings::upcast::read_newer(version, data),
                    _ => ::core::result::Result::Err(::tidings::upcast::ReadError::UnknownVersion {
                        event_type: EVENT_TYPE,
                        version,
                        reader: #target_literal,
                    }),
                }
            }
        }
    }
}

/// The catalog's `upcast` module: the runtime's trait and error, under the
/// catalog's own path (`events::upcast::ReadAnyVersion`).
pub(crate) fn prelude() -> TokenStream {
    quote! {
        /// Reading a payload of any version of an event type as one version
        /// of it (see `docs/generate.md`, *Reading older versions*): the
        /// runtime's `tidings::upcast` trait and error, implemented by every
        /// generated payload type.
        pub mod upcast {
            pub use ::tidings::upcast::{ReadAnyVersion, ReadError};
        }
    }
}

/// The catalog of every generated payload type, for tests and tools that
/// go over the whole registry (round-trip every example, decode any event).
/// `deprecated`: an entry names a deprecated version's type.
pub(crate) fn catalog(entries: &[TokenStream], deprecated: bool) -> TokenStream {
    let allow_deprecated = deprecated.then(|| quote!(#[allow(deprecated)]));
    quote! {
        /// Every generated payload type, with monomorphic helpers, so tests
        /// and tools can go over the whole registry.
        pub mod payloads {
            /// Schema violations of a payload (`tidings::schema::violations`).
            pub type Violations = fn(
                &::serde_json::Value,
            ) -> ::core::result::Result<::std::vec::Vec<::tidings::schema::Violation>, ::tidings::schema::SchemaError>;

            /// One event type version and its Rust type.
            #[derive(Debug, Clone, Copy)]
            pub struct Payload {
                /// `service.entity.action`.
                pub event_type: &'static str,
                /// The schema version.
                pub version: u32,
                /// The schema file, relative to the registry.
                pub file: &'static str,
                /// The bundled schema (`DomainEvent::SCHEMA`).
                pub schema: &'static str,
                /// Deserializes a payload as this version's type and serializes it again.
                pub roundtrip: fn(::serde_json::Value) -> ::core::result::Result<::serde_json::Value, ::serde_json::Error>,
                /// Reads a payload of this version as the latest version of its event type, serialized.
                pub read_as_latest: fn(::serde_json::Value) -> ::core::result::Result<::serde_json::Value, super::upcast::ReadError>,
                /// Checks a payload against this version's schema.
                pub violations: Violations,
            }

            fn roundtrip<T: ::serde::Serialize + ::serde::de::DeserializeOwned>(
                data: ::serde_json::Value,
            ) -> ::core::result::Result<::serde_json::Value, ::serde_json::Error> {
                ::serde_json::to_value(::serde_json::from_value::<T>(data)?)
            }

            fn read_as<L: super::upcast::ReadAnyVersion + ::serde::Serialize + ::tidings::DomainEvent, const V: u32>(
                data: ::serde_json::Value,
            ) -> ::core::result::Result<::serde_json::Value, super::upcast::ReadError> {
                let latest = L::read_any_version(V, data)?;
                ::serde_json::to_value(latest).map_err(|source| super::upcast::ReadError::Invalid {
                    event_type: L::EVENT_TYPE,
                    version: V,
                    source,
                })
            }

            /// Every payload type, by event type and version.
            #allow_deprecated
            pub const PAYLOADS: &[Payload] = &[#(#entries),*];
        }
    }
}
