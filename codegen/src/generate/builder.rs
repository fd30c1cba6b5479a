//! Payload builders: `X::builder()`, one setter per field, `build()`.
//!
//! typify (`with_struct_builder`) writes a `builder` module with a builder
//! per struct whose errors are strings. This pass keeps what typify knows
//! (each field's type and default) and rewrites the builders so that
//! `build()` returns `tidings::builder::BuildError`: the type, the field
//! and a typed problem (unset though required, or the value the setter got
//! and why its type refused it).
use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, Fields, GenericArgument, Ident, Item, ItemImpl, ItemStruct, PathArguments, Type};

/// Method names clippy's `should_implement_trait` takes for a std trait's
/// method when the signature fits, as a setter's `(self, value) -> Self` can.
const TRAIT_METHODS: [&str; 20] = [
    "add", "sub", "mul", "div", "rem", "shl", "shr", "bitand", "bitor", "bitxor", "neg", "not",
    "next", "eq", "cmp", "hash", "index", "borrow", "as_ref", "as_mut",
];

/// One field of a typify builder.
struct Field {
    ident: Ident,
    ty: Type,
    /// The default value (`Ok(expr)` in typify's `Default`), or `None`
    /// when the field is required.
    default: Option<Expr>,
}

/// The first type argument of `ty` when its last path segment is `name`
/// (`T` of `Result<T, String>`, of `Option<T>`).
fn first_arg(ty: &Type, name: &str) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
}

/// `name` when `imp` is `impl Default for name` of typify's builder: the
/// default expression of each field (`Ok(expr)` gives `expr`, `Err(..)`
/// nothing: required).
fn defaults(imp: &ItemImpl) -> Option<(String, BTreeMap<String, Option<Expr>>)> {
    let (_, trait_path, _) = imp.trait_.as_ref()?;
    if trait_path.segments.last()?.ident != "Default" {
        return None;
    }
    let Type::Path(self_ty) = &*imp.self_ty else {
        return None;
    };
    let name = self_ty.path.get_ident()?.to_string();
    let [syn::ImplItem::Fn(f)] = imp.items.as_slice() else {
        return None;
    };
    let [syn::Stmt::Expr(Expr::Struct(s), None)] = f.block.stmts.as_slice() else {
        return None;
    };
    let mut out = BTreeMap::new();
    for fv in &s.fields {
        let syn::Member::Named(ident) = &fv.member else {
            return None;
        };
        let value = match &fv.expr {
            Expr::Call(call) => match (&*call.func, call.args.first()) {
                (Expr::Path(p), Some(arg)) if p.path.is_ident("Ok") => Some(arg.clone()),
                _ => None,
            },
            _ => None,
        };
        out.insert(ident.to_string(), value);
    }
    Some((name, out))
}

fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
}

/// The builder of struct `name` with `fields`.
fn builder(name: &Ident, fields: &[Field]) -> TokenStream {
    let type_name = name.to_string();
    let problem = quote!(::tidings::builder::FieldProblem);
    let error = quote!(::tidings::builder::BuildError);
    let idents: Vec<&Ident> = fields.iter().map(|f| &f.ident).collect();
    let slots = fields.iter().map(|f| {
        let (ident, ty) = (&f.ident, &f.ty);
        quote!(#ident: ::core::result::Result<#ty, #problem>)
    });
    let defaults = fields.iter().map(|f| {
        let ident = &f.ident;
        match &f.default {
            Some(e) => quote!(#ident: ::core::result::Result::Ok(#e)),
            None => quote!(#ident: ::core::result::Result::Err(#problem::Missing)),
        }
    });
    let setters = fields.iter().map(|f| {
        let ident = &f.ident;
        // An optional field's setter takes the value itself (unset is `None`).
        let (ty, store) = match first_arg(&f.ty, "Option") {
            Some(inner) => (inner, quote!(.map(::core::option::Option::Some))),
            None => (f.ty.clone(), quote!()),
        };
        let doc = format!(
            " Sets `{}`{}; a value its type refuses is reported by `build()`.",
            unraw(ident),
            if first_arg(&f.ty, "Option").is_some() {
                " (optional: unset, it is `None`)"
            } else if f.default.is_some() {
                " (unset, it takes its default)"
            } else {
                " (required)"
            }
        );
        let allow = TRAIT_METHODS
            .contains(&unraw(ident).as_str())
            .then(|| quote!(#[allow(clippy::should_implement_trait)]));
        quote! {
            #[doc = #doc]
            #allow
            pub fn #ident<V>(mut self, value: V) -> Self
            where
                V: ::core::convert::TryInto<#ty>,
                V::Error: ::core::fmt::Display,
            {
                self.#ident = ::tidings::builder::convert(value)#store;
                self
            }
        }
    });
    let takes = fields.iter().map(|f| {
        let ident = &f.ident;
        let field = unraw(ident);
        quote!(#ident: ::tidings::builder::take(value.#ident, #type_name, #field)?)
    });
    // A field named `build` has that setter; `try_into()` still builds.
    let build = (!fields.iter().any(|f| unraw(&f.ident) == "build")).then(|| {
        quote! {
            /// The value, or which field is required but unset or was
            /// given a value its type refuses (the first, in field order).
            ///
            /// # Errors
            /// A `tidings::builder::BuildError` naming the field.
            pub fn build(self) -> ::core::result::Result<super::#name, #error> {
                ::core::convert::TryFrom::try_from(self)
            }
        }
    });
    let value = if fields.is_empty() {
        quote!(_value)
    } else {
        quote!(value)
    };
    let doc = format!(
        " Builds a `{type_name}`: `{type_name}::builder()`, a setter per field, then `build()`."
    );
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        pub struct #name {
            #(#slots,)*
        }
        impl ::core::default::Default for #name {
            fn default() -> Self {
                Self { #(#defaults,)* }
            }
        }
        impl #name {
            #(#setters)*
            #build
        }
        impl ::core::convert::TryFrom<#name> for super::#name {
            type Error = #error;
            fn try_from(#value: #name) -> ::core::result::Result<Self, #error> {
                ::core::result::Result::Ok(Self { #(#takes,)* })
            }
        }
        impl ::core::convert::From<super::#name> for #name {
            fn from(#value: super::#name) -> Self {
                Self { #(#idents: ::core::result::Result::Ok(value.#idents),)* }
            }
        }
    }
}

/// Rewrites typify's `builder` module (see the module doc) and documents
/// each struct's `builder()`.
pub(crate) fn rewrite(file: &mut syn::File) {
    for item in &mut file.items {
        match item {
            Item::Mod(m) if m.ident == "builder" => {
                let Some((_, items)) = &mut m.content else {
                    continue;
                };
                let mut structs: Vec<&ItemStruct> = Vec::new();
                let mut all_defaults = BTreeMap::new();
                for i in items.iter() {
                    match i {
                        Item::Struct(s) => structs.push(s),
                        Item::Impl(imp) => {
                            if let Some((name, d)) = defaults(imp) {
                                all_defaults.insert(name, d);
                            }
                        }
                        _ => {}
                    }
                }
                let mut out = Vec::new();
                for s in structs {
                    let Fields::Named(named) = &s.fields else {
                        continue;
                    };
                    let d = all_defaults.get(&s.ident.to_string());
                    let fields: Option<Vec<Field>> = named
                        .named
                        .iter()
                        .map(|f| {
                            let ident = f.ident.clone()?;
                            let default =
                                d.and_then(|d| d.get(&ident.to_string())).cloned().flatten();
                            Some(Field {
                                ty: first_arg(&f.ty, "Result")?,
                                ident,
                                default,
                            })
                        })
                        .collect();
                    if let Some(fields) = fields {
                        out.push(builder(&s.ident, &fields));
                    }
                }
                let tokens = quote! {
                    /// Builders of this module's structs (`tidings::builder`):
                    /// a misspelt field does not compile, and `build()` names
                    /// the field that is missing or holds a refused value.
                    pub mod builder {
                        #(#out)*
                    }
                };
                if let Ok(new) = syn::parse2::<syn::ItemMod>(tokens) {
                    *m = new;
                }
            }
            Item::Impl(imp) if imp.trait_.is_none() => {
                let Type::Path(self_ty) = &*imp.self_ty else {
                    continue;
                };
                let Some(name) = self_ty.path.get_ident().map(ToString::to_string) else {
                    continue;
                };
                for f in &mut imp.items {
                    if let syn::ImplItem::Fn(f) = f {
                        if f.sig.ident == "builder" && f.sig.inputs.is_empty() {
                            let doc = format!(
                                " A builder of `{name}`: a setter per field, then `build()` (`builder::{name}`)."
                            );
                            f.attrs.insert(0, syn::parse_quote!(#[doc = #doc]));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::format_ident;

    #[test]
    fn required_and_defaulted_fields_are_told_apart() {
        let imp: ItemImpl = syn::parse_quote! {
            impl ::std::default::Default for X {
                fn default() -> Self {
                    Self {
                        a: Err("no value supplied for a".to_string()),
                        b: Ok(Default::default()),
                    }
                }
            }
        };
        let (name, d) = defaults(&imp).unwrap_or_default();
        assert_eq!(name, "X");
        assert!(d["a"].is_none());
        assert!(d["b"].is_some());
    }

    #[test]
    fn a_field_named_build_keeps_its_setter() {
        let ident = format_ident!("X");
        let fields = [Field {
            ident: format_ident!("build"),
            ty: syn::parse_quote!(u32),
            default: None,
        }];
        let code = builder(&ident, &fields).to_string();
        assert_eq!(code.matches("pub fn build").count(), 1, "{code}");
    }
}
