//! What a field's Rust type serializes to, judged from its syntax alone.
//!
//! A derive sees tokens, not types: `String` is taken to be
//! `std::string::String` and a type it does not know (a nested struct, an
//! enum, a newtype) is [`RustKind::Opaque`], compatible with every schema.
//! Only the last path segment is read, so `uuid::Uuid`, `::uuid::Uuid` and
//! `Uuid` are the same.
use quote::ToTokens;
use syn::{GenericArgument, PathArguments, Type};

/// The JSON a Rust type serializes to, as far as its syntax tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RustKind {
    /// Unknown (nested structs, enums, user types) or any JSON
    /// (`serde_json::Value`): not checked.
    Opaque,
    /// `String`, `str`, `char`, and `Box`/`Arc`/`Rc`/`Cow` of them.
    Str,
    /// `Uuid`: a string, format `uuid`.
    Uuid,
    /// `OffsetDateTime`, `PrimitiveDateTime`, `UtcDateTime`, chrono's
    /// `DateTime<_>` / `NaiveDateTime`, jiff's `Timestamp`: a string,
    /// format `date-time`.
    DateTime,
    /// `Date`, `NaiveDate`: a string, format `date`.
    Date,
    /// `Time`, `NaiveTime`: a string, format `time`.
    Time,
    /// `i8`...`i128`, `u8`...`u128`, `isize`, `usize`, `NonZero*`.
    Integer,
    /// `f32`, `f64`.
    Float,
    /// `bool`.
    Bool,
    /// `Vec<T>`, `VecDeque`, `HashSet`, `BTreeSet`, `[T; N]`, `[T]`,
    /// tuples...; the element kind when there is one element type.
    Array(Option<Box<RustKind>>),
    /// `HashMap`, `BTreeMap`, `IndexMap`, `serde_json::Map`; the value
    /// kind.
    Map(Box<RustKind>),
    /// `()`.
    Unit,
    /// `Option<T>`: `null` or `T` (or absent, with `skip_serializing_if`).
    Option(Box<RustKind>),
}

/// The first type argument of the last segment (`Vec<T>` -> `T`).
fn first_type_arg(args: &PathArguments) -> Option<&Type> {
    match args {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

const INTEGERS: &[&str] = &[
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "NonZeroI8",
    "NonZeroI16",
    "NonZeroI32",
    "NonZeroI64",
    "NonZeroI128",
    "NonZeroIsize",
    "NonZeroU8",
    "NonZeroU16",
    "NonZeroU32",
    "NonZeroU64",
    "NonZeroU128",
    "NonZeroUsize",
    "NonZero",
];

/// Whether `name` is a primitive integer or `NonZero*` type name.
pub(crate) fn is_integer_name(name: &str) -> bool {
    INTEGERS.contains(&name)
}

/// Classifies a field type.
pub(crate) fn classify(ty: &Type) -> RustKind {
    match ty {
        Type::Reference(r) => classify(&r.elem),
        Type::Paren(p) => classify(&p.elem),
        Type::Group(g) => classify(&g.elem),
        Type::Slice(s) => RustKind::Array(Some(Box::new(classify(&s.elem)))),
        Type::Array(a) => RustKind::Array(Some(Box::new(classify(&a.elem)))),
        Type::Tuple(t) if t.elems.is_empty() => RustKind::Unit,
        Type::Tuple(_) => RustKind::Array(None),
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return RustKind::Opaque;
            };
            let name = last.ident.to_string();
            let arg = first_type_arg(&last.arguments);
            let inner = |k: fn(Box<RustKind>) -> RustKind| match arg {
                Some(t) => k(Box::new(classify(t))),
                None => RustKind::Opaque,
            };
            match name.as_str() {
                "Option" => inner(RustKind::Option),
                "Box" | "Arc" | "Rc" | "Cow" => arg.map_or(RustKind::Opaque, classify),
                "String" | "str" | "char" => RustKind::Str,
                "Uuid" => RustKind::Uuid,
                "OffsetDateTime" | "PrimitiveDateTime" | "UtcDateTime" | "DateTime"
                | "NaiveDateTime" | "Timestamp" => RustKind::DateTime,
                "Date" | "NaiveDate" => RustKind::Date,
                "Time" | "NaiveTime" => RustKind::Time,
                "f32" | "f64" => RustKind::Float,
                "bool" => RustKind::Bool,
                "Vec" | "VecDeque" | "LinkedList" | "HashSet" | "BTreeSet" | "BinaryHeap"
                | "IndexSet" => inner(|k| RustKind::Array(Some(k))),
                "HashMap" | "BTreeMap" | "IndexMap" | "Map" => {
                    let value = match &last.arguments {
                        PathArguments::AngleBracketed(a) => a
                            .args
                            .iter()
                            .filter_map(|g| match g {
                                GenericArgument::Type(t) => Some(t),
                                _ => None,
                            })
                            .nth(1),
                        _ => None,
                    };
                    RustKind::Map(Box::new(value.map_or(RustKind::Opaque, classify)))
                }
                n if is_integer_name(n) => RustKind::Integer,
                _ => RustKind::Opaque,
            }
        }
        _ => RustKind::Opaque,
    }
}

/// A type as written, compactly (`Option<Vec<String>>`, `&'static str`;
/// `tidings_codegen::rust_text::compact`).
pub(crate) fn display(ty: &impl ToTokens) -> String {
    tidings_codegen::rust_text::compact(&ty.to_token_stream().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(src: &str) -> RustKind {
        classify(&syn::parse_str::<Type>(src).unwrap_or_else(|e| unreachable!("{src}: {e}")))
    }

    #[test]
    fn classifies_by_syntax() {
        use RustKind::*;
        assert_eq!(kind("String"), Str);
        assert_eq!(kind("&'static str"), Str);
        assert_eq!(kind("std::borrow::Cow<'static, str>"), Str);
        assert_eq!(kind("Box<str>"), Str);
        assert_eq!(kind("uuid::Uuid"), Uuid);
        assert_eq!(kind("time::OffsetDateTime"), DateTime);
        assert_eq!(kind("chrono::DateTime<chrono::Utc>"), DateTime);
        assert_eq!(kind("u64"), Integer);
        assert_eq!(kind("std::num::NonZeroU32"), Integer);
        assert_eq!(kind("f32"), Float);
        assert_eq!(kind("bool"), Bool);
        assert_eq!(kind("Vec<u8>"), Array(Some(Box::new(Integer))));
        assert_eq!(kind("[String; 3]"), Array(Some(Box::new(Str))));
        assert_eq!(kind("(u8, String)"), Array(None));
        assert_eq!(kind("BTreeMap<String, u8>"), Map(Box::new(Integer)));
        assert_eq!(
            kind("serde_json::Map<String, Value>"),
            Map(Box::new(Opaque))
        );
        assert_eq!(kind("serde_json::Value"), Opaque);
        assert_eq!(kind("Address"), Opaque);
        assert_eq!(kind("()"), Unit);
        assert_eq!(
            kind("Option<Option<i32>>"),
            Option(Box::new(Option(Box::new(Integer))))
        );
    }

    #[test]
    fn displays_types_compactly() {
        for src in [
            "Option<Vec<String>>",
            "&'static str",
            "std::borrow::Cow<'static, str>",
            "[u8; 4]",
            "HashMap<String, (u8, bool)>",
        ] {
            let ty: Type = syn::parse_str(src).unwrap_or_else(|e| unreachable!("{src}: {e}"));
            assert_eq!(display(&ty), src);
        }
    }
}
