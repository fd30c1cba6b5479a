//! The entity-key field: `key = "user_id"`, or the field serialized as
//! the property the schema's `x-entity-key` names (both: they must agree).
//!
//! A key becomes a subject token, so it must be text: a string type
//! (`String`, `&str`, `Cow<str>`, `Box<str>`, `Arc<str>`, `Rc<str>`),
//! borrowed as is, or a `Uuid` or an integer, formatted with `Display`, or
//! another type without generic arguments (an id newtype such as the
//! generated `common::UserId`), through `tidings::EntityKey`.
//! `Option<_>` is refused: an event type either always has a key or never
//! does. Whether a key *value* is a valid token is checked when publishing.
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{FieldsNamed, GenericArgument, Ident, LitStr, PathArguments, Type};

use crate::errors::Errors;
use crate::rust_type::{display, is_integer_name};
use crate::serde_attr::{serialized_name, ContainerSerde, FieldSerde};

/// How the key is turned into a `Cow<str>`.
enum Conversion {
    /// Borrowed through `AsRef<str>`.
    Borrow,
    /// Formatted through `Display` (`Uuid`, integers).
    Format,
    /// Through `tidings::EntityKey` (a newtype such as `common::UserId`).
    Trait,
}

/// A checked key field.
pub(crate) struct Key {
    field: Ident,
    /// The key's property name in the payload (serde name).
    pub(crate) wire: String,
    conversion: Conversion,
}

impl Key {
    /// The `KEY_FIELD` const and the `entity_key` method.
    pub(crate) fn tokens(&self) -> TokenStream {
        let Key {
            field,
            wire,
            conversion,
        } = self;
        let value = match conversion {
            Conversion::Borrow => quote! {
                ::std::borrow::Cow::Borrowed(::core::convert::AsRef::<str>::as_ref(&self.#field))
            },
            Conversion::Format => quote! {
                ::std::borrow::Cow::Owned(::std::string::ToString::to_string(&self.#field))
            },
            Conversion::Trait => quote! {
                ::tidings::EntityKey::key_token(&self.#field)
            },
        };
        quote! {
            const KEY_FIELD: ::core::option::Option<&'static str> = ::core::option::Option::Some(#wire);
            fn entity_key(&self) -> ::core::option::Option<::std::borrow::Cow<'_, str>> {
                ::core::option::Option::Some(#value)
            }
        }
    }
}

/// Whether `ty` is exactly `str` (possibly parenthesised).
fn is_str(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && p.path.is_ident("str"),
        Type::Paren(p) => is_str(&p.elem),
        Type::Group(g) => is_str(&g.elem),
        _ => false,
    }
}

/// How a key of type `ty` is converted; `Err` says what is wrong.
fn conversion(ty: &Type) -> Result<Conversion, String> {
    match ty {
        Type::Reference(r) => conversion(&r.elem),
        Type::Paren(p) => conversion(&p.elem),
        Type::Group(g) => conversion(&g.elem),
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return Err(String::new());
            };
            let name = last.ident.to_string();
            let arg = match &last.arguments {
                PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                }),
                _ => None,
            };
            match name.as_str() {
                "String" | "str" => Ok(Conversion::Borrow),
                "Cow" | "Box" | "Arc" | "Rc" if arg.is_some_and(is_str) => Ok(Conversion::Borrow),
                "Uuid" => Ok(Conversion::Format),
                n if is_integer_name(n) => Ok(Conversion::Format),
                "Option" => Err(
                    "; a key cannot be optional: an event type always has a key or never does (leave out `key` for the latter)"
                        .into(),
                ),
                // Not a key: floats, booleans, characters, containers.
                "f32" | "f64" | "bool" | "char" | "Value" | "Number" => Err(String::new()),
                // Any other type without generic arguments (an id newtype,
                // `common::UserId`): through `tidings::EntityKey`, whose
                // absence the compiler reports with its own message.
                _ if matches!(last.arguments, PathArguments::None) => Ok(Conversion::Trait),
                _ => Err(String::new()),
            }
        }
        _ => Err(String::new()),
    }
}

/// Finds and checks the key field `lit` names.
pub(crate) fn resolve(
    lit: &LitStr,
    struct_name: &Ident,
    fields: &FieldsNamed,
    container: &ContainerSerde,
    errors: &mut Errors,
) -> Option<Key> {
    let wanted = lit.value();
    let wanted = wanted.strip_prefix("r#").unwrap_or(&wanted).to_owned();
    let Some((field, ident)) = fields.named.iter().find_map(|f| {
        f.ident
            .as_ref()
            .filter(|i| unraw(i) == wanted)
            .map(|i| (f, i))
    }) else {
        errors.at(
            lit.span(),
            format!(
                "`key`: `{struct_name}` has no field `{wanted}`; its fields are {}",
                field_names(fields)
            ),
        );
        return None;
    };
    checked(field, ident, &wanted, lit.span(), container, errors)
}

/// Finds and checks the field serialized as `wire`, the property the
/// schema's `x-entity-key` names; errors point at `span` (the `schema`
/// attribute value).
pub(crate) fn resolve_declared(
    wire: &str,
    span: Span,
    struct_name: &Ident,
    fields: &FieldsNamed,
    container: &ContainerSerde,
    errors: &mut Errors,
) -> Option<Key> {
    let found = fields.named.iter().find_map(|f| {
        let ident = f.ident.as_ref()?;
        let fs = FieldSerde::parse(&f.attrs);
        (serialized_name(ident, &fs, container) == wire).then_some((f, ident))
    });
    let Some((field, ident)) = found else {
        errors.at(
            span,
            format!(
                "the schema's `x-entity-key` names property {wire:?}, but `{struct_name}` has no field serialized as {wire:?}; its fields are {}",
                field_names(fields)
            ),
        );
        return None;
    };
    checked(field, ident, &unraw(ident), span, container, errors)
}

fn unraw(i: &Ident) -> String {
    let s = i.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

fn field_names(fields: &FieldsNamed) -> String {
    let names: Vec<String> = fields
        .named
        .iter()
        .filter_map(|f| f.ident.as_ref().map(|i| format!("`{}`", unraw(i))))
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Checks that the key field is part of the payload and of a key type.
fn checked(
    field: &syn::Field,
    ident: &Ident,
    wanted: &str,
    span: Span,
    container: &ContainerSerde,
    errors: &mut Errors,
) -> Option<Key> {
    let fs = FieldSerde::parse(&field.attrs);
    if fs.skipped || fs.flatten {
        errors.at(
            span,
            format!(
                "`key`: field `{wanted}` is {} by serde, but the entity key must be a property of the payload",
                if fs.skipped { "skipped" } else { "flattened" }
            ),
        );
        return None;
    }
    match conversion(&field.ty) {
        Ok(conversion) => Some(Key {
            field: ident.clone(),
            wire: serialized_name(ident, &fs, container),
            conversion,
        }),
        Err(why) => {
            errors.spanned(
                &field.ty,
                format!(
                    "key field `{wanted}` has type `{}`; an entity key must be a string (`String`, `&str`, `Cow<str>`, `Box<str>`, `Arc<str>`, `Rc<str>`), a `Uuid`, an integer or a newtype implementing `tidings::EntityKey`{why}",
                    display(&field.ty)
                ),
            );
            None
        }
    }
}
