//! Edits typify's output: unknown fields are accepted (except by the
//! variants of untagged enums), numbers stay exact JSON numbers, enum
//! defaults are derived, payload types get `#[derive(DomainEvent)]`, every
//! public item has a doc comment.
use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Field, Fields, Item, ItemStruct, Meta, Token, Variant};

/// A field of a generated payload struct.
#[derive(Debug, Clone)]
pub(crate) struct FieldInfo {
    /// The Rust field name.
    pub(crate) ident: syn::Ident,
    /// The JSON property name (serde `rename`, else the field name).
    pub(crate) wire: String,
    /// The field's type as written (`Option<i64>`, see `rust_text::compact`).
    pub(crate) ty: String,
    /// The inner type when the field is `Option<T>`.
    pub(crate) option_of: Option<String>,
    /// `#[serde(flatten)]`.
    pub(crate) flatten: bool,
    /// What serde fills in when the property is absent: `Some(None)` for
    /// `#[serde(default)]`, `Some(Some(path))` for `#[serde(default = "path")]`.
    pub(crate) default: Option<Option<String>>,
}

fn is_serde(attr: &Attribute) -> bool {
    attr.path().is_ident("serde")
}

fn serde_metas(attr: &Attribute) -> Option<Punctuated<Meta, Token![,]>> {
    attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        .ok()
}

/// Removes `deny_unknown_fields` from every `#[serde(...)]` (see
/// `docs/generate.md`: a reader must not reject a newer producer's events),
/// except where serde needs it to choose a variant: on `untagged` enums,
/// their variants and the structs they wrap (`keep`). serde tries an
/// untagged enum's variants in order and takes the first that
/// deserializes; without `deny_unknown_fields` a closed `oneOf` variant
/// would take a document meant for another variant and drop the members it
/// does not declare.
struct StripDeny {
    /// Structs that are variants of untagged enums.
    keep: BTreeSet<String>,
}

fn is_untagged(attrs: &[Attribute]) -> bool {
    has_serde_flag(attrs, "untagged")
}

/// The structs wrapped by the variants of `untagged` enums (`Fixed` in
/// `Rule::Fixed(Fixed)`).
fn untagged_variant_structs(file: &syn::File) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for item in &file.items {
        let Item::Enum(e) = item else { continue };
        if !is_untagged(&e.attrs) {
            continue;
        }
        for v in &e.variants {
            let Fields::Unnamed(u) = &v.fields else {
                continue;
            };
            for f in &u.unnamed {
                if let syn::Type::Path(p) = &f.ty {
                    if let Some(last) = p.path.segments.last() {
                        out.insert(last.ident.to_string());
                    }
                }
            }
        }
    }
    out
}

impl VisitMut for StripDeny {
    fn visit_attributes_mut(&mut self, attrs: &mut Vec<Attribute>) {
        attrs.retain_mut(|attr| {
            if !is_serde(attr) {
                return true;
            }
            let Some(metas) = serde_metas(attr) else {
                return true;
            };
            if !metas
                .iter()
                .any(|m| m.path().is_ident("deny_unknown_fields"))
            {
                return true;
            }
            let kept: Punctuated<Meta, Token![,]> = metas
                .into_iter()
                .filter(|m| !m.path().is_ident("deny_unknown_fields"))
                .collect();
            if kept.is_empty() {
                return false;
            }
            *attr = syn::parse_quote!(#[serde(#kept)]);
            true
        });
    }

    fn visit_item_struct_mut(&mut self, i: &mut ItemStruct) {
        if self.keep.contains(&i.ident.to_string()) {
            return;
        }
        self.visit_attributes_mut(&mut i.attrs);
        visit_mut::visit_item_struct_mut(self, i);
    }

    fn visit_item_enum_mut(&mut self, i: &mut syn::ItemEnum) {
        if is_untagged(&i.attrs) {
            return;
        }
        self.visit_attributes_mut(&mut i.attrs);
        visit_mut::visit_item_enum_mut(self, i);
    }

    fn visit_variant_mut(&mut self, i: &mut Variant) {
        self.visit_attributes_mut(&mut i.attrs);
        visit_mut::visit_variant_mut(self, i);
    }
}

/// Replaces typify's `f64` (its type for `"type": "number"`) with
/// `serde_json::Number`, which keeps the JSON number as written: an
/// integer stays an integer (`4747967848`, not `4747967848.0`) and a
/// fraction its `f64` value; `as_f64()` gives a float for arithmetic.
struct ExactNumbers;

impl VisitMut for ExactNumbers {
    fn visit_type_mut(&mut self, t: &mut syn::Type) {
        if let syn::Type::Path(p) = t {
            if p.qself.is_none() && p.path.is_ident("f64") {
                *t = syn::parse_quote!(::serde_json::Number);
                return;
            }
        }
        visit_mut::visit_type_mut(self, t);
    }
}

/// Drops typify's `<details>` JSON-schema dumps from doc comments (the
/// schema is in the registry; the dumps make the code hard to read) and
/// its placeholder docs (a type's own name). Items the schema does not
/// describe get a doc only when there is something true to say (the JSON
/// spelling of a renamed field or variant, the catch-all map), otherwise
/// `#[allow(missing_docs)]`: the schema is where their description belongs.
struct Docs;

fn doc_text(attr: &Attribute) -> Option<String> {
    if !attr.path().is_ident("doc") {
        return None;
    }
    match &attr.meta {
        Meta::NameValue(nv) => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

fn strip_schema_dump(attrs: &mut Vec<Attribute>) {
    let mut inside = false;
    attrs.retain(|a| match doc_text(a) {
        Some(t) if t.contains("<details><summary>JSON schema</summary>") => {
            inside = true;
            false
        }
        Some(t) if inside => {
            if t.contains("</details>") {
                inside = false;
            }
            false
        }
        _ => true,
    });
    // Trailing empty doc lines left before the dump.
    while let Some(pos) = attrs.iter().rposition(|a| doc_text(a).is_some()) {
        if doc_text(&attrs[pos]).is_some_and(|t| t.trim().is_empty()) {
            attrs.remove(pos);
        } else {
            break;
        }
    }
}

fn has_doc(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| doc_text(a).is_some())
}

/// typify writes `///Text`; rustdoc convention is `/// Text`.
fn space_docs(attrs: &mut [Attribute]) {
    for a in attrs.iter_mut() {
        if let Some(t) = doc_text(a) {
            if !t.is_empty() && !t.starts_with(' ') {
                let t = format!(" {t}");
                *a = syn::parse_quote!(#[doc = #t]);
            }
        }
    }
}

/// Removes typify's doc for an undescribed type: its own name in backticks.
fn strip_name_doc(attrs: &mut Vec<Attribute>, ident: &syn::Ident) {
    let texts: Vec<String> = attrs.iter().filter_map(doc_text).collect();
    if texts.len() == 1 && texts[0].trim() == format!("`{ident}`") {
        attrs.retain(|a| doc_text(a).is_none());
    }
}

fn allow_missing_docs(attrs: &mut Vec<Attribute>) {
    attrs.insert(0, syn::parse_quote!(#[allow(missing_docs)]));
}

impl VisitMut for Docs {
    fn visit_attributes_mut(&mut self, attrs: &mut Vec<Attribute>) {
        space_docs(attrs);
    }

    fn visit_item_mut(&mut self, i: &mut Item) {
        match i {
            Item::Struct(s) => {
                strip_schema_dump(&mut s.attrs);
                strip_name_doc(&mut s.attrs, &s.ident);
                if !has_doc(&s.attrs) {
                    allow_missing_docs(&mut s.attrs);
                }
            }
            Item::Enum(e) => {
                strip_schema_dump(&mut e.attrs);
                strip_name_doc(&mut e.attrs, &e.ident);
                if !has_doc(&e.attrs) {
                    allow_missing_docs(&mut e.attrs);
                }
            }
            _ => {}
        }
        visit_mut::visit_item_mut(self, i);
    }

    fn visit_field_mut(&mut self, f: &mut Field) {
        let public = matches!(f.vis, syn::Visibility::Public(_));
        if public && !has_doc(&f.attrs) {
            let renamed = match (&f.ident, wire_name(f)) {
                (Some(ident), Some(wire)) if wire != unraw(ident) => Some(wire),
                _ => None,
            };
            if has_serde_flag(&f.attrs, "flatten") {
                let text = " The members the schema does not declare, kept as they are.";
                f.attrs.insert(0, syn::parse_quote!(#[doc = #text]));
            } else if let Some(wire) = renamed {
                let text = format!(" JSON property `{wire}`.");
                f.attrs.insert(0, syn::parse_quote!(#[doc = #text]));
            } else if f.ident.is_some() {
                allow_missing_docs(&mut f.attrs);
            }
        }
        visit_mut::visit_field_mut(self, f);
    }

    fn visit_variant_mut(&mut self, v: &mut Variant) {
        if !has_doc(&v.attrs) {
            match wire_name_attrs(&v.attrs) {
                Some(wire) if matches!(v.fields, Fields::Unit) => {
                    let text = format!(" JSON `{wire:?}`.");
                    v.attrs.insert(0, syn::parse_quote!(#[doc = #text]));
                }
                _ => allow_missing_docs(&mut v.attrs),
            }
        }
        visit_mut::visit_variant_mut(self, v);
    }
}

fn unraw(ident: &syn::Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
}

fn wire_name_attrs(attrs: &[Attribute]) -> Option<String> {
    for attr in attrs.iter().filter(|a| is_serde(a)) {
        for m in serde_metas(attr).into_iter().flatten() {
            if let Meta::NameValue(nv) = m {
                if nv.path.is_ident("rename") {
                    if let syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) = nv.value
                    {
                        return Some(s.value());
                    }
                }
            }
        }
    }
    None
}

fn wire_name(f: &Field) -> Option<String> {
    wire_name_attrs(&f.attrs)
}

fn has_serde_flag(attrs: &[Attribute], flag: &str) -> bool {
    attrs
        .iter()
        .filter(|a| is_serde(a))
        .filter_map(serde_metas)
        .flatten()
        .any(|m| matches!(&m, Meta::Path(p) if p.is_ident(flag)))
}

/// typify writes `impl Default for E { fn default() -> Self { E::V } }`
/// for an enum with a schema `default`; clippy (`derivable_impls`) wants
/// `#[derive(Default)]` with `#[default]` on the variant, so the impl is
/// replaced by those.
fn derive_enum_defaults(file: &mut syn::File) {
    let units: BTreeSet<(String, String)> = file
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Enum(e) => Some(e),
            _ => None,
        })
        .flat_map(|e| {
            e.variants
                .iter()
                .filter(|v| matches!(v.fields, Fields::Unit))
                .map(|v| (e.ident.to_string(), v.ident.to_string()))
        })
        .collect();
    let mut defaults: Vec<(String, String)> = Vec::new();
    file.items.retain(|item| {
        let Item::Impl(imp) = item else { return true };
        match default_unit_variant(imp) {
            Some(d) if units.contains(&d) => {
                defaults.push(d);
                false
            }
            _ => true,
        }
    });
    for (ty, variant) in defaults {
        for item in &mut file.items {
            let Item::Enum(e) = item else { continue };
            if e.ident != ty {
                continue;
            }
            e.attrs.push(syn::parse_quote!(#[derive(Default)]));
            if let Some(v) = e.variants.iter_mut().find(|v| v.ident == variant) {
                v.attrs.push(syn::parse_quote!(#[default]));
            }
        }
    }
}

/// `(Ty, Variant)` when `imp` is `impl Default for Ty { fn default() ->
/// Self { Ty::Variant } }`.
fn default_unit_variant(imp: &syn::ItemImpl) -> Option<(String, String)> {
    let (_, trait_path, _) = imp.trait_.as_ref()?;
    if trait_path.segments.last()?.ident != "Default" {
        return None;
    }
    let syn::Type::Path(self_ty) = &*imp.self_ty else {
        return None;
    };
    let ty = self_ty.path.get_ident()?.to_string();
    let [syn::ImplItem::Fn(f)] = imp.items.as_slice() else {
        return None;
    };
    let [syn::Stmt::Expr(syn::Expr::Path(p), None)] = f.block.stmts.as_slice() else {
        return None;
    };
    match p.path.segments.iter().collect::<Vec<_>>().as_slice() {
        [t, v] if (t.ident == ty || t.ident == "Self") && v.arguments.is_none() => {
            Some((ty, v.ident.to_string()))
        }
        _ => None,
    }
}

/// Applies the edits to the whole output of one type space.
pub(crate) fn clean(file: &mut syn::File) {
    let keep = untagged_variant_structs(file);
    StripDeny { keep }.visit_file_mut(file);
    ExactNumbers.visit_file_mut(file);
    derive_enum_defaults(file);
    super::builder::rewrite(file);
    Docs.visit_file_mut(file);
}

/// The generated struct named `name`, if typify made one.
pub(crate) fn find_struct<'f>(file: &'f mut syn::File, name: &str) -> Option<&'f mut ItemStruct> {
    file.items.iter_mut().find_map(|i| match i {
        Item::Struct(s) if s.ident == name => Some(s),
        _ => None,
    })
}

/// Whether typify made something other than a struct called `name`
/// (an enum or a newtype: the root is not an object schema).
pub(crate) fn struct_fields(s: &ItemStruct) -> Option<Vec<FieldInfo>> {
    let Fields::Named(named) = &s.fields else {
        return None;
    };
    Some(
        named
            .named
            .iter()
            .filter_map(|f| {
                let ident = f.ident.clone()?;
                let ty = crate::rust_text::compact(&f.ty.to_token_stream().to_string());
                let option_of = option_inner(&f.ty);
                Some(FieldInfo {
                    wire: wire_name(f).unwrap_or_else(|| unraw(&ident)),
                    ident,
                    ty,
                    option_of,
                    flatten: has_serde_flag(&f.attrs, "flatten"),
                    default: serde_default(&f.attrs),
                })
            })
            .collect(),
    )
}

fn serde_default(attrs: &[Attribute]) -> Option<Option<String>> {
    for m in attrs
        .iter()
        .filter(|a| is_serde(a))
        .filter_map(serde_metas)
        .flatten()
    {
        match &m {
            Meta::Path(p) if p.is_ident("default") => return Some(None),
            Meta::NameValue(nv) if nv.path.is_ident("default") => {
                if let syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) = &nv.value
                {
                    return Some(Some(s.value()));
                }
            }
            _ => {}
        }
    }
    None
}

fn option_inner(ty: &syn::Type) -> Option<String> {
    let syn::Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    match &last.arguments {
        syn::PathArguments::AngleBracketed(a) if a.args.len() == 1 => a
            .args
            .first()
            .map(|t| crate::rust_text::compact(&t.to_token_stream().to_string())),
        _ => None,
    }
}

/// Adds `#[derive(::tidings::DomainEvent)]` and its attribute naming the
/// schema file (and `custom_upcast`: the generator writes the type's
/// `ReadAnyVersion`), and a doc paragraph saying which event this is.
pub(crate) fn mark_payload(s: &mut ItemStruct, schema_path: &str, key: Option<&str>, doc: &str) {
    let has_docs = has_doc(&s.attrs);
    let pos = s
        .attrs
        .iter()
        .rposition(|a| doc_text(a).is_some())
        .map_or(0, |p| p + 1);
    let mut extra: Vec<Attribute> = Vec::new();
    if has_docs {
        extra.push(syn::parse_quote!(#[doc = ""]));
    }
    for line in doc.lines() {
        let line = format!(" {line}");
        extra.push(syn::parse_quote!(#[doc = #line]));
    }
    s.attrs.splice(pos..pos, extra);
    s.attrs
        .push(syn::parse_quote!(#[derive(::tidings::DomainEvent)]));
    s.attrs.push(match key {
        Some(key) => {
            syn::parse_quote!(#[domain_event(schema = #schema_path, key = #key, custom_upcast)])
        }
        None => syn::parse_quote!(#[domain_event(schema = #schema_path, custom_upcast)]),
    });
}

/// A token stream as a file of items.
pub(crate) fn parse(tokens: TokenStream) -> Result<syn::File, String> {
    syn::parse2::<syn::File>(tokens)
        .map_err(|e| format!("typify produced code that does not parse: {e}"))
}

/// Items back to tokens.
pub(crate) fn items(file: &syn::File) -> TokenStream {
    let items = &file.items;
    quote!(#(#items)*)
}
