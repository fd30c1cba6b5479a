//! The `#[domain_event(...)]` attribute.
//!
//! ```text
//! #[domain_event(
//!     schema = "schemas/auth/user.created.v1.json",  // required, relative to CARGO_MANIFEST_DIR
//!     event_type = "auth.user.created",               // optional if the schema has x-event-type
//!     version = 1,                                    // optional if the schema has x-schema-version
//!     stream = "AUTH_EVENTS",                         // optional if the schema has x-stream
//!     key = "user_id",                                // optional: the entity-key field
//!     custom_upcast,                                  // optional: the type implements
//!                                                     // `tidings::upcast::ReadAnyVersion` itself
//! )]
//! ```
use proc_macro2::{Span, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Lit, LitInt, LitStr, Token};

use crate::errors::Errors;

/// The attribute's name.
pub(crate) const NAME: &str = "domain_event";

/// The keys the attribute accepts, for error messages.
const KEYS: &str = "`schema`, `event_type`, `version`, `stream`, `key`, `custom_upcast`";

/// An integer attribute value and where it was written.
#[derive(Clone, Copy)]
pub(crate) struct SpannedU32 {
    pub(crate) value: u32,
    pub(crate) span: Span,
}

/// What the struct-level `#[domain_event(...)]` attributes say.
#[derive(Default)]
pub(crate) struct EventAttrs {
    /// Span of the first `#[domain_event]` attribute (for "missing" errors).
    pub(crate) span: Option<Span>,
    pub(crate) schema: Option<LitStr>,
    pub(crate) event_type: Option<LitStr>,
    pub(crate) version: Option<SpannedU32>,
    pub(crate) stream: Option<LitStr>,
    pub(crate) key: Option<LitStr>,
    /// `custom_upcast`: no `ReadAnyVersion` impl is emitted (the generated
    /// catalog writes its own, reading every older version).
    pub(crate) custom_upcast: bool,
    /// Keys written, valid or not.
    mentioned: Vec<String>,
    /// Whether an attribute could not be parsed to its end.
    broken: bool,
}

impl EventAttrs {
    /// Parses every `#[domain_event(...)]` among `attrs`, recording problems
    /// in `errors` and keeping whatever was valid.
    pub(crate) fn parse(attrs: &[Attribute], errors: &mut Errors) -> EventAttrs {
        let mut out = EventAttrs::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident(NAME)) {
            out.span.get_or_insert_with(|| {
                attr.path()
                    .get_ident()
                    .map_or_else(Span::call_site, |i| i.span())
            });
            if let Err(e) = attr.parse_nested_meta(|meta| out.item(&meta, errors)) {
                out.broken = true;
                errors.push(e);
            }
        }
        out
    }

    /// Whether a "missing `key`" error would be noise: the key was written
    /// (and already reported as invalid), or an attribute could not be read
    /// to its end.
    pub(crate) fn excuses_missing(&self, key: &str) -> bool {
        self.broken || self.mentioned.iter().any(|m| m == key)
    }

    fn item(&mut self, meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
        let Some(ident) = meta.path.get_ident() else {
            errors.spanned(
                &meta.path,
                format!("unknown `domain_event` key; expected one of {KEYS}"),
            );
            return skip_value(meta);
        };
        let name = ident.to_string();
        self.mentioned.push(name.clone());
        let slot = match name.as_str() {
            "version" => {
                let value = parse_version(meta, errors)?;
                if self.version.is_some() {
                    errors.at(ident.span(), "duplicate `version`");
                } else {
                    self.version = value;
                }
                return Ok(());
            }
            "custom_upcast" => {
                if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                    errors.spanned(&meta.path, "`custom_upcast` takes no value");
                    return skip_value(meta);
                }
                if self.custom_upcast {
                    errors.at(ident.span(), "duplicate `custom_upcast`");
                }
                self.custom_upcast = true;
                return Ok(());
            }
            "schema" => &mut self.schema,
            "event_type" => &mut self.event_type,
            "stream" => &mut self.stream,
            "key" => &mut self.key,
            _ => {
                errors.at(
                    ident.span(),
                    format!("unknown `domain_event` key `{name}`; expected one of {KEYS}"),
                );
                return skip_value(meta);
            }
        };
        let lit: Lit = meta.value()?.parse()?;
        let Lit::Str(s) = lit else {
            errors.spanned(
                &lit,
                format!("`{name}` takes a string literal: `{name} = \"...\"`"),
            );
            return Ok(());
        };
        if slot.is_some() {
            errors.at(ident.span(), format!("duplicate `{name}`"));
        } else {
            *slot = Some(s);
        }
        Ok(())
    }
}

/// `version = N`: a positive integer literal that fits `u32`.
fn parse_version(
    meta: &ParseNestedMeta<'_>,
    errors: &mut Errors,
) -> syn::Result<Option<SpannedU32>> {
    let input = meta.value()?;
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        let lit: LitInt = input.parse()?;
        errors.at(
            minus.span,
            format!("`version` must be 1 or more, not -{}", lit.base10_digits()),
        );
        return Ok(None);
    }
    let lit: Lit = input.parse()?;
    let Lit::Int(int) = lit else {
        errors.spanned(&lit, "`version` takes an integer literal: `version = 1`");
        return Ok(None);
    };
    match int.base10_parse::<u32>() {
        Ok(0) => {
            errors.spanned(
                &int,
                "`version` must be 1 or more: schema versions count 1, 2, 3...",
            );
            Ok(None)
        }
        Ok(value) => Ok(Some(SpannedU32 {
            value,
            span: int.span(),
        })),
        Err(e) => {
            errors.spanned(&int, format!("`version`: {e} (it must fit a u32)"));
            Ok(None)
        }
    }
}

/// Consumes the value of an unknown key (`= anything` or `(anything)`), so
/// that parsing goes on with the next key.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    let input = meta.input;
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
    }
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// Reports `#[domain_event]` attributes placed on fields: the derive only
/// reads the struct's.
pub(crate) fn reject_on_field(attrs: &[Attribute], errors: &mut Errors) {
    for attr in attrs.iter().filter(|a| a.path().is_ident(NAME)) {
        errors.spanned(
            attr,
            "`#[domain_event]` belongs on the struct, not on a field; name the key field with `#[domain_event(key = \"field\")]` on the struct",
        );
    }
}
