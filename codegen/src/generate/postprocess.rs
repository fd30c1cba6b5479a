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

use super::order::Orders;
use super::typify_run::COMMON_PLACEHOLDER;

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

/// The structs wrapped by the variants of `untagged` enums that serde
/// reads by trying each variant (`Fixed` in `Rule::Fixed(Fixed)`); the
/// enums [`tag_by_const`] reads by their discriminator do not count.
pub(crate) fn untagged_variant_structs(file: &syn::File) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in untagged_readers(file) {
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

/// What the edits of one type space's output need to know besides it.
pub(crate) struct Context<'a> {
    /// The declared order of every `properties` object.
    pub(crate) orders: &'a Orders,
    /// typify's output for the `common` module (before its own cleaning),
    /// where types named `__tidings_common::X` are looked up.
    pub(crate) common: Option<&'a syn::File>,
    /// Further structs that keep `deny_unknown_fields`: those of `common`
    /// that event types wrap in untagged enums.
    pub(crate) keep: BTreeSet<String>,
    /// How many modules up `common` is from the items (2 for an event
    /// type's module: `super::super::common`).
    pub(crate) common_depth: usize,
}

/// Applies the edits to the whole output of one type space.
pub(crate) fn clean(file: &mut syn::File, cx: &Context<'_>) {
    tag_by_const(file, cx.common);
    let mut keep = untagged_variant_structs(file);
    keep.extend(cx.keep.iter().cloned());
    StripDeny { keep }.visit_file_mut(file);
    ExactNumbers.visit_file_mut(file);
    derive_enum_defaults(file);
    super::builder::rewrite(file);
    Docs.visit_file_mut(file);
    scalar_newtypes(file);
    schema_order(file, cx.orders);
    if cx.common.is_some() && cx.common_depth > 0 {
        share_error_module(file, cx.common_depth);
    }
    CommonPaths {
        depth: cx.common_depth,
    }
    .visit_file_mut(file);
}

/// typify writes the same `error` module (its `ConversionError`) into each
/// type space's output; beside a `common` module, an event type's module
/// re-exports `common::error` instead of repeating it.
fn share_error_module(file: &mut syn::File, depth: usize) {
    let supers = (0..depth).map(|_| quote!(super::));
    let shared: Item = syn::parse_quote! {
        pub use #(#supers)* common::error;
    };
    for item in &mut file.items {
        if matches!(item, Item::Mod(m) if m.ident == "error") {
            *item = shared.clone();
        }
    }
}

/// The names of the `common` structs that `file`'s untagged enums wrap
/// (as `__tidings_common::X`): they keep `deny_unknown_fields`.
pub(crate) fn wrapped_common(file: &syn::File) -> BTreeSet<String> {
    untagged_readers(file)
        .flat_map(|e| &e.variants)
        .filter_map(|v| variant_type(v).and_then(common_name))
        .collect()
}

/// The `untagged` enums of `file` that derive `Deserialize`: serde reads
/// them by trying each variant in turn.
fn untagged_readers(file: &syn::File) -> impl Iterator<Item = &syn::ItemEnum> {
    file.items.iter().filter_map(|item| match item {
        Item::Enum(e) if is_untagged(&e.attrs) && derives(&e.attrs, "Deserialize") => Some(e),
        _ => None,
    })
}

/// `X` for the path `__tidings_common::X`.
fn common_name(p: &syn::Path) -> Option<String> {
    let mut segs = p.segments.iter();
    let first = segs.next()?;
    if first.ident != COMMON_PLACEHOLDER {
        return None;
    }
    Some(segs.next()?.ident.to_string())
}

/// The path of the one field of a newtype variant (`Fixed` in `Fixed(Fixed)`).
fn variant_type(v: &Variant) -> Option<&syn::Path> {
    let Fields::Unnamed(u) = &v.fields else {
        return None;
    };
    let [f] = u.unnamed.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    match &f.ty {
        syn::Type::Path(p) if p.qself.is_none() => Some(&p.path),
        _ => None,
    }
}

/// Whether `#[derive(..)]` in `attrs` names a trait ending in `name`.
fn derives(attrs: &[Attribute], name: &str) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .filter_map(|a| {
            a.parse_args_with(Punctuated::<syn::Path, Token![,]>::parse_terminated)
                .ok()
        })
        .flatten()
        .any(|p| p.segments.last().is_some_and(|s| s.ident == name))
}

/// Adds `traits` to the first `#[derive(..)]` (or a new one).
fn add_derives(attrs: &mut Vec<Attribute>, traits: &[syn::Ident]) {
    for a in attrs.iter_mut().filter(|a| a.path().is_ident("derive")) {
        if let Ok(mut paths) =
            a.parse_args_with(Punctuated::<syn::Path, Token![,]>::parse_terminated)
        {
            paths.extend(traits.iter().map(|t| syn::Path::from(t.clone())));
            *a = syn::parse_quote!(#[derive(#paths)]);
            return;
        }
    }
    attrs.push(syn::parse_quote!(#[derive(#(#traits),*)]));
}

/// Removes the trait ending in `name` from every `#[derive(..)]`.
fn remove_derive(attrs: &mut [Attribute], name: &str) {
    for a in attrs.iter_mut().filter(|a| a.path().is_ident("derive")) {
        let Ok(paths) = a.parse_args_with(Punctuated::<syn::Path, Token![,]>::parse_terminated)
        else {
            continue;
        };
        let kept: Punctuated<syn::Path, Token![,]> = paths
            .into_iter()
            .filter(|p| p.segments.last().is_none_or(|s| s.ident != name))
            .collect();
        *a = syn::parse_quote!(#[derive(#kept)]);
    }
}

/// The struct or enum called `path`'s last segment: in `file`, or in
/// `common` for `__tidings_common::X`.
fn lookup<'f>(
    file: &'f syn::File,
    common: Option<&'f syn::File>,
    path: &syn::Path,
) -> Option<&'f Item> {
    let (within, name) = match common_name(path) {
        Some(n) => (common?, n),
        None => (file, path.segments.last()?.ident.to_string()),
    };
    within.items.iter().find(|i| match i {
        Item::Struct(s) => s.ident == name,
        Item::Enum(e) => e.ident == name,
        _ => false,
    })
}

/// The one value of an enum with exactly one unit variant (typify's type for
/// a string `const`), as written on the wire.
fn single_value(e: &syn::ItemEnum) -> Option<String> {
    let [v] = e.variants.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    matches!(v.fields, Fields::Unit)
        .then(|| wire_name_attrs(&v.attrs).unwrap_or_else(|| v.ident.to_string()))
}

/// The `const` members of struct `s`: `(property, value)` for each required
/// field whose type is a one-value enum.
fn const_members(
    s: &ItemStruct,
    file: &syn::File,
    common: Option<&syn::File>,
    in_common: bool,
) -> Vec<(String, String)> {
    let Fields::Named(named) = &s.fields else {
        return Vec::new();
    };
    named
        .named
        .iter()
        .filter_map(|f| {
            let syn::Type::Path(p) = &f.ty else {
                return None;
            };
            // Inside `common`, a bare name is a `common` type.
            let found = if in_common && common_name(&p.path).is_none() {
                let name = p.path.segments.last()?.ident.to_string();
                common?
                    .items
                    .iter()
                    .find(|i| matches!(i, Item::Enum(e) if e.ident == name))
            } else {
                lookup(file, common, &p.path)
            };
            let Some(Item::Enum(e)) = found else {
                return None;
            };
            let wire = wire_name(f).or_else(|| f.ident.as_ref().map(unraw))?;
            Some((wire, single_value(e)?))
        })
        .collect()
}

/// Reads an untagged enum whose variants are structs told apart by a `const`
/// member (`"kind": {"const": "fixed"}`) by that member, like a tagged enum:
/// its `Deserialize` picks the variant the discriminator names (or fails
/// naming it) instead of trying each variant in turn, so the variant structs
/// need no `deny_unknown_fields` and accept members they do not declare.
/// Serialization stays untagged (each struct writes its own discriminator).
fn tag_by_const(file: &mut syn::File, common: Option<&syn::File>) {
    let mut impls = Vec::new();
    let mut tagged = Vec::new();
    for item in &file.items {
        let Item::Enum(e) = item else { continue };
        if !is_untagged(&e.attrs) || !derives(&e.attrs, "Deserialize") || e.variants.len() < 2 {
            continue;
        }
        let mut variants = Vec::new();
        for v in &e.variants {
            let Some(path) = variant_type(v) else { break };
            let in_common = common_name(path).is_some();
            let Some(Item::Struct(s)) = lookup(file, common, path) else {
                break;
            };
            variants.push((v.ident.clone(), const_members(s, file, common, in_common)));
        }
        if variants.len() != e.variants.len() {
            continue;
        }
        // A property every variant fixes, to a different value in each.
        let Some(tag) = variants.first().and_then(|(_, members)| {
            members.iter().map(|(p, _)| p.clone()).find(|p| {
                let values: BTreeSet<&String> = variants
                    .iter()
                    .filter_map(|(_, ms)| ms.iter().find(|(q, _)| q == p).map(|(_, v)| v))
                    .collect();
                values.len() == variants.len()
            })
        }) else {
            continue;
        };
        let arms = variants.iter().filter_map(|(ident, members)| {
            let value = &members.iter().find(|(p, _)| *p == tag)?.1;
            Some(quote! {
                ::core::option::Option::Some(#value) => ::serde_json::from_value(value).map(Self::#ident),
            })
        });
        let expected = format!(
            "`{tag}` to be one of {}",
            variants
                .iter()
                .filter_map(|(_, ms)| ms.iter().find(|(p, _)| *p == tag))
                .map(|(_, v)| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let ident = &e.ident;
        let doc = format!(" Reads the variant that `{tag}` names.");
        impls.push(quote! {
            #[doc = #doc]
            impl<'de> ::serde::Deserialize<'de> for #ident {
                fn deserialize<D>(deserializer: D) -> ::std::result::Result<Self, D::Error>
                where
                    D: ::serde::Deserializer<'de>,
                {
                    let value = <::serde_json::Value as ::serde::Deserialize>::deserialize(deserializer)?;
                    let tag = value
                        .get(#tag)
                        .and_then(::serde_json::Value::as_str)
                        .map(::std::borrow::ToOwned::to_owned);
                    match tag.as_deref() {
                        #(#arms)*
                        _ => return ::std::result::Result::Err(<D::Error as ::serde::de::Error>::custom(
                            ::core::format_args!("expected {}, got {}", #expected, value.get(#tag).unwrap_or(&::serde_json::Value::Null)),
                        )),
                    }
                    .map_err(<D::Error as ::serde::de::Error>::custom)
                }
            }
        });
        tagged.push(ident.clone());
    }
    for item in &mut file.items {
        if let Item::Enum(e) = item {
            if tagged.contains(&e.ident) {
                remove_derive(&mut e.attrs, "Deserialize");
            }
        }
    }
    for tokens in impls {
        if let Ok(item) = syn::parse2::<Item>(tokens) {
            file.items.push(item);
        }
    }
}

/// Inner types of scalar newtypes that are `Copy`, `Eq`, `Hash` and `Ord`.
const COPY_SCALARS: [&str; 4] = [
    "::uuid::Uuid",
    "bool",
    "::chrono::DateTime<::chrono::offset::Utc>",
    "::chrono::naive::NaiveDate",
];

/// Gives a newtype over a scalar (`UserId(Uuid)`, `Sku(String)`) the traits
/// a value type needs: `Eq` and `Hash` (a map key), `Ord`, `Copy` when
/// the inner type is, `Display` (and `FromStr` when typify wrote none),
/// and `tidings::EntityKey` over a string, a UUID or an integer.
fn scalar_newtypes(file: &mut syn::File) {
    let has_impl = |file: &syn::File, tr: &str, ty: &syn::Ident| {
        file.items.iter().any(|i| match i {
            Item::Impl(imp) => {
                imp.trait_
                    .as_ref()
                    .and_then(|(_, p, _)| p.segments.last())
                    .is_some_and(|s| s.ident == tr)
                    && matches!(&*imp.self_ty, syn::Type::Path(p) if p.path.is_ident(ty))
            }
            _ => false,
        })
    };
    let mut extra: Vec<Item> = Vec::new();
    let snapshot = file.clone();
    for item in &mut file.items {
        let Item::Struct(s) = item else { continue };
        let Fields::Unnamed(u) = &s.fields else {
            continue;
        };
        let [field] = u.unnamed.iter().collect::<Vec<_>>()[..] else {
            continue;
        };
        if !has_serde_flag(&s.attrs, "transparent") {
            continue;
        }
        let inner = field.ty.to_token_stream().to_string().replace(' ', "");
        let integer = ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"]
            .contains(&inner.as_str())
            || inner.starts_with("::std::num::NonZero");
        let copy = integer || COPY_SCALARS.contains(&inner.as_str());
        let ord = copy || inner == "::std::string::String";
        let eq = ord || inner == "::serde_json::Number";
        if !eq {
            continue;
        }
        let mut wanted = vec!["Eq", "Hash"];
        if ord {
            wanted.extend(["PartialOrd", "Ord"]);
        }
        if copy {
            wanted.push("Copy");
        }
        let missing: Vec<syn::Ident> = wanted
            .into_iter()
            .filter(|d| !derives(&s.attrs, d))
            .map(|d| quote::format_ident!("{d}"))
            .collect();
        if !missing.is_empty() {
            add_derives(&mut s.attrs, &missing);
        }
        let ident = &s.ident;
        let inner_ty = &field.ty;
        if !has_impl(&snapshot, "Display", ident) {
            extra.push(syn::parse_quote! {
                impl ::std::fmt::Display for #ident {
                    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        self.0.fmt(f)
                    }
                }
            });
        }
        // An id newtype can be an entity key (`x-entity-key` keeps the
        // shared type): the derive takes it through `tidings::EntityKey`.
        // Only unconstrained ones (a public inner value): a key has no
        // length or pattern (the lint says so).
        let public = matches!(field.vis, syn::Visibility::Public(_));
        let key_token = if !public {
            None
        } else if inner == "::std::string::String" {
            Some(quote::quote!(::std::borrow::Cow::Borrowed(&self.0)))
        } else if integer || inner == "::uuid::Uuid" {
            Some(quote::quote!(::std::borrow::Cow::Owned(
                ::std::string::ToString::to_string(&self.0)
            )))
        } else {
            None
        };
        if let Some(body) = key_token {
            extra.push(syn::parse_quote! {
                impl ::tidings::EntityKey for #ident {
                    fn key_token(&self) -> ::std::borrow::Cow<'_, str> {
                        #body
                    }
                }
            });
        }
        if public && !has_impl(&snapshot, "FromStr", ident) {
            extra.push(syn::parse_quote! {
                impl ::std::str::FromStr for #ident {
                    type Err = <#inner_ty as ::std::str::FromStr>::Err;
                    fn from_str(value: &str) -> ::std::result::Result<Self, Self::Err> {
                        ::std::result::Result::Ok(Self(value.parse()?))
                    }
                }
            });
        }
    }
    file.items.extend(extra);
}

/// Puts the fields of every struct in the order its schema declares them.
fn schema_order(file: &mut syn::File, orders: &Orders) {
    for item in &mut file.items {
        let Item::Struct(s) = item else { continue };
        let Fields::Named(named) = &mut s.fields else {
            continue;
        };
        let fields: Vec<Field> = named.named.iter().cloned().collect();
        let wires: Vec<Option<String>> = fields
            .iter()
            .map(|f| {
                (!has_serde_flag(&f.attrs, "flatten"))
                    .then(|| wire_name(f).or_else(|| f.ident.as_ref().map(unraw)))
                    .flatten()
            })
            .collect();
        let set: BTreeSet<&str> = wires.iter().flatten().map(String::as_str).collect();
        if set.len() < 2 {
            continue;
        }
        let Some(order) = orders.order_of(&set) else {
            continue;
        };
        let mut indexed: Vec<(usize, Field)> = fields
            .into_iter()
            .zip(&wires)
            .map(|(f, w)| {
                let at = w
                    .as_ref()
                    .and_then(|w| order.iter().position(|k| k == w))
                    .unwrap_or(usize::MAX);
                (at, f)
            })
            .collect();
        indexed.sort_by_key(|(at, _)| *at);
        named.named = indexed.into_iter().map(|(_, f)| f).collect();
    }
}

/// Turns `__tidings_common::X` (typify's name for a `common` type, see
/// `typify_run::run`) into a path relative to the module it is used in:
/// `super::super::common::X` in an event type's module, one more `super`
/// in each module nested in it.
struct CommonPaths {
    depth: usize,
}

impl VisitMut for CommonPaths {
    fn visit_item_mod_mut(&mut self, m: &mut syn::ItemMod) {
        self.depth += 1;
        visit_mut::visit_item_mod_mut(self, m);
        self.depth -= 1;
    }

    fn visit_path_mut(&mut self, p: &mut syn::Path) {
        if p.segments
            .first()
            .is_some_and(|s| s.ident == COMMON_PLACEHOLDER)
        {
            let rest: Vec<syn::PathSegment> = p.segments.iter().skip(1).cloned().collect();
            let mut segments: Punctuated<syn::PathSegment, Token![::]> = Punctuated::new();
            for _ in 0..self.depth {
                segments.push(syn::parse_quote!(super));
            }
            segments.push(syn::parse_quote!(common));
            segments.extend(rest);
            p.leading_colon = None;
            p.segments = segments;
        }
        visit_mut::visit_path_mut(self, p);
    }
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
