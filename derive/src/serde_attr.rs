//! The few `#[serde(...)]` attributes that change what a struct serializes
//! to: names (`rename`, `rename_all`), which fields appear (`skip`,
//! `skip_serializing`, `skip_serializing_if`, `flatten`), custom
//! serialization (`with`, `serialize_with`, container `into`,
//! `transparent`), and the internal `tag` of a struct.
//!
//! Anything the derive does not understand is ignored: serde's own derive
//! reports malformed serde attributes.
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, Lit, Meta, Token};

/// serde's case conventions for `rename_all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    fn parse(s: &str) -> Option<RenameRule> {
        Some(match s {
            "lowercase" => RenameRule::Lower,
            "UPPERCASE" => RenameRule::Upper,
            "PascalCase" => RenameRule::Pascal,
            "camelCase" => RenameRule::Camel,
            "snake_case" => RenameRule::Snake,
            "SCREAMING_SNAKE_CASE" => RenameRule::ScreamingSnake,
            "kebab-case" => RenameRule::Kebab,
            "SCREAMING-KEBAB-CASE" => RenameRule::ScreamingKebab,
            _ => return None,
        })
    }

    /// The serialized name of a field, exactly as serde computes it.
    pub(crate) fn apply_to_field(self, field: &str) -> String {
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Pascal => {
                let mut pascal = String::new();
                let mut capitalize = true;
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        pascal.push(ch.to_ascii_uppercase());
                        capitalize = false;
                    } else {
                        pascal.push(ch);
                    }
                }
                pascal
            }
            RenameRule::Camel => {
                let pascal = RenameRule::Pascal.apply_to_field(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => pascal,
                }
            }
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
        }
    }
}

/// The container (struct) attributes that matter.
#[derive(Default)]
pub(crate) struct ContainerSerde {
    /// `rename_all = "..."` or `rename_all(serialize = "...")`.
    pub(crate) rename_all: Option<RenameRule>,
    /// `tag = "..."`: serde writes the struct name under this property.
    pub(crate) tag: Option<String>,
    /// `transparent`, `into = "..."`, `remote = "..."`: the struct does not
    /// serialize as its fields.
    pub(crate) opaque: bool,
}

/// The field attributes that matter.
#[derive(Default)]
pub(crate) struct FieldSerde {
    /// `rename = "..."` or `rename(serialize = "...")`.
    pub(crate) rename: Option<String>,
    /// `skip` or `skip_serializing`: the field is never written.
    pub(crate) skipped: bool,
    /// `skip_serializing_if = "..."`: the field is sometimes left out.
    pub(crate) skip_if: bool,
    /// `flatten`: the field's own fields are written inline.
    pub(crate) flatten: bool,
    /// `with` / `serialize_with`: the serialized form is whatever that
    /// function writes.
    pub(crate) custom: bool,
}

/// Every `name = value` / `name(...)` / `name` item of every `#[serde]`.
fn serde_metas(attrs: &[Attribute]) -> Vec<Meta> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("serde"))
        .filter_map(|a| {
            a.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
                .ok()
        })
        .flatten()
        .collect()
}

fn string_value(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.value()),
        _ => None,
    }
}

/// The value for serialization of `name = "x"` or `name(serialize = "x")`.
fn serialize_value(meta: &Meta) -> Option<String> {
    match meta {
        Meta::NameValue(nv) => string_value(&nv.value),
        Meta::List(list) => list
            .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            .ok()?
            .into_iter()
            .find_map(|m| match m {
                Meta::NameValue(nv) if nv.path.is_ident("serialize") => string_value(&nv.value),
                _ => None,
            }),
        Meta::Path(_) => None,
    }
}

impl ContainerSerde {
    /// Reads the struct's `#[serde(...)]` attributes.
    pub(crate) fn parse(attrs: &[Attribute]) -> ContainerSerde {
        let mut out = ContainerSerde::default();
        for meta in serde_metas(attrs) {
            let path = meta.path();
            if path.is_ident("rename_all") {
                out.rename_all = serialize_value(&meta).and_then(|s| RenameRule::parse(&s));
            } else if path.is_ident("tag") {
                out.tag = serialize_value(&meta);
            } else if path.is_ident("transparent")
                || path.is_ident("into")
                || path.is_ident("remote")
            {
                out.opaque = true;
            }
        }
        out
    }
}

impl FieldSerde {
    /// Reads a field's `#[serde(...)]` attributes.
    pub(crate) fn parse(attrs: &[Attribute]) -> FieldSerde {
        let mut out = FieldSerde::default();
        for meta in serde_metas(attrs) {
            let path = meta.path();
            if path.is_ident("rename") {
                out.rename = serialize_value(&meta).or(out.rename);
            } else if path.is_ident("skip") || path.is_ident("skip_serializing") {
                out.skipped = true;
            } else if path.is_ident("skip_serializing_if") {
                out.skip_if = true;
            } else if path.is_ident("flatten") {
                out.flatten = true;
            } else if path.is_ident("with") || path.is_ident("serialize_with") {
                out.custom = true;
            }
        }
        out
    }
}

/// A field's serialized name: its `rename`, else the container's
/// `rename_all` applied to its identifier (without `r#`).
pub(crate) fn serialized_name(
    ident: &syn::Ident,
    field: &FieldSerde,
    container: &ContainerSerde,
) -> String {
    if let Some(name) = &field.rename {
        return name.clone();
    }
    let raw = ident.to_string();
    let name = raw.strip_prefix("r#").unwrap_or(&raw);
    match container.rename_all {
        Some(rule) => rule.apply_to_field(name),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_convention_matches_serde() {
        let cases = [
            ("lowercase", "user_id"),
            ("UPPERCASE", "USER_ID"),
            ("PascalCase", "UserId"),
            ("camelCase", "userId"),
            ("snake_case", "user_id"),
            ("SCREAMING_SNAKE_CASE", "USER_ID"),
            ("kebab-case", "user-id"),
            ("SCREAMING-KEBAB-CASE", "USER-ID"),
        ];
        for (rule, expected) in cases {
            let rule = RenameRule::parse(rule).unwrap_or_else(|| unreachable!("{rule}"));
            assert_eq!(rule.apply_to_field("user_id"), expected, "{rule:?}");
        }
        assert_eq!(RenameRule::Camel.apply_to_field("x"), "x");
        assert_eq!(
            RenameRule::Camel.apply_to_field("created_at_utc"),
            "createdAtUtc"
        );
        assert!(RenameRule::parse("Train-Case").is_none());
    }

    #[test]
    fn reads_serialize_side_of_renames() {
        let field: syn::Field = syn::parse_quote! {
            #[serde(rename(serialize = "out", deserialize = "in"), skip_serializing_if = "Option::is_none")]
            a: Option<String>
        };
        let f = FieldSerde::parse(&field.attrs);
        assert_eq!(f.rename.as_deref(), Some("out"));
        assert!(f.skip_if && !f.skipped && !f.flatten && !f.custom);

        let item: syn::DeriveInput = syn::parse_quote! {
            #[serde(rename_all(serialize = "camelCase"), tag = "kind", deny_unknown_fields)]
            struct S { a: u8 }
        };
        let c = ContainerSerde::parse(&item.attrs);
        assert_eq!(c.rename_all, Some(RenameRule::Camel));
        assert_eq!(c.tag.as_deref(), Some("kind"));
        assert!(!c.opaque);
    }
}
