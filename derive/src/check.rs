//! The struct against its schema: every field the struct serializes against
//! the property of the same (serialized) name.
//!
//! What is checked, from syntax alone (a derive has no type information):
//! * every required property is written by some field (skipped when the
//!   struct has a `#[serde(flatten)]` field: what it writes is unknown);
//! * no field writes a property a closed model (`additionalProperties:
//!   false` / `unevaluatedProperties: false`, no `patternProperties`)
//!   forbids, and undeclared fields fit a schema-valued
//!   `additionalProperties`;
//! * each field's type can produce what its property allows (see
//!   [`crate::rust_type::RustKind`]; unknown types such as nested structs
//!   are not checked), down through array items;
//! * `Option<T>` only for properties that may be absent or null, and with
//!   `skip_serializing_if` unless the property is nullable (`None` would be
//!   written as `null`);
//! * no `skip_serializing_if` on a required property.
//!
//! Fields with `#[serde(with / serialize_with)]` are checked for presence
//! only; a struct with `#[serde(transparent / into / remote)]` is not checked.
use std::collections::BTreeSet;

use serde_json::Value;
use syn::{FieldsNamed, Ident, Type};

use crate::errors::Errors;
use crate::rust_type::{classify, display, RustKind};
use crate::schema::{self, Kind, Loaded, Shape};
use crate::serde_attr::{serialized_name, ContainerSerde, FieldSerde};

/// Checks `fields` against the root object schema of `loaded`.
pub(crate) fn check_fields(
    name: &Ident,
    fields: &FieldsNamed,
    container: &ContainerSerde,
    loaded: &Loaded,
    errors: &mut Errors,
) {
    if container.opaque {
        return;
    }
    let root = &loaded.root;
    let model = schema::object_model(root);
    let mut seen: BTreeSet<String> = container.tag.iter().cloned().collect();
    let mut has_flatten = false;
    for field in &fields.named {
        let Some(ident) = &field.ident else { continue };
        let fs = FieldSerde::parse(&field.attrs);
        if fs.skipped {
            continue;
        }
        if fs.flatten {
            has_flatten = true;
            continue;
        }
        let wire = serialized_name(ident, &fs, container);
        let plain = ident.to_string();
        let label = if plain.strip_prefix("r#").unwrap_or(&plain) == wire {
            format!("field `{wire}`")
        } else {
            format!("field `{ident}` (serialized as `{wire}`)")
        };
        seen.insert(wire.clone());
        let property = model.properties.and_then(|p| p.get(&wire));
        let Some(property) = property else {
            if let Some(keyword) = model.closed {
                let declared: Vec<String> = model
                    .properties
                    .map(|p| p.keys().map(|k| format!("`{k}`")).collect())
                    .unwrap_or_default();
                errors.at(
                    ident.span(),
                    format!(
                        "{label}: the schema forbids undeclared properties ({keyword}: false) and does not declare `{wire}`; it declares {}",
                        if declared.is_empty() { "none".to_string() } else { declared.join(", ") }
                    ),
                );
            } else if let Some(extra) = model.additional {
                if !fs.custom {
                    let shape = schema::shape(root, extra);
                    check_value(
                        &Subject {
                            label: &label,
                            what: format!("undeclared property `{wire}` (additionalProperties)"),
                            required: false,
                            skip_if: fs.skip_if,
                        },
                        &field.ty,
                        &shape,
                        root,
                        errors,
                    );
                }
            }
            continue;
        };
        let required = model.required.contains(&wire.as_str());
        if required && fs.skip_if {
            errors.at(
                ident.span(),
                format!("{label}: `skip_serializing_if` can leave out schema property `{wire}`, which is required"),
            );
        }
        if fs.custom {
            continue;
        }
        let shape = schema::shape(root, property);
        check_value(
            &Subject {
                label: &label,
                what: format!("schema property `{wire}`"),
                required,
                skip_if: fs.skip_if,
            },
            &field.ty,
            &shape,
            root,
            errors,
        );
    }
    if !has_flatten {
        let missing: Vec<String> = model
            .required
            .iter()
            .filter(|r| !seen.contains(**r))
            .map(|r| format!("`{r}`"))
            .collect();
        match missing.as_slice() {
            [] => {}
            [one] => errors.at(
                name.span(),
                format!("`{name}` lacks the required schema property {one}: no field serializes as {one}"),
            ),
            many => errors.at(
                name.span(),
                format!(
                    "`{name}` lacks the required schema properties {}: no field serializes as them",
                    many.join(", ")
                ),
            ),
        }
    }
}

/// The field being checked and what it is checked against.
struct Subject<'a> {
    /// "field `x`".
    label: &'a str,
    /// "schema property `x`".
    what: String,
    required: bool,
    skip_if: bool,
}

fn check_value(s: &Subject<'_>, ty: &Type, shape: &Shape, root: &Value, errors: &mut Errors) {
    let (label, what) = (s.label, &s.what);
    let mut kind = classify(ty);
    if let RustKind::Option(_) = kind {
        if s.required && !shape.nullable() {
            errors.spanned(
                ty,
                format!(
                    "{label}: {what} is required and cannot be null, but the field's type is `{}`; drop the `Option`, or make the property optional or nullable in the schema",
                    display(ty)
                ),
            );
            return;
        }
        if !shape.nullable() && !s.skip_if {
            errors.spanned(
                ty,
                format!(
                    "{label}: `None` serializes as `null`, which {what} ({shape}) does not allow; add `#[serde(skip_serializing_if = \"Option::is_none\")]` or allow null in the schema"
                ),
            );
            return;
        }
        while let RustKind::Option(inner) = kind {
            kind = *inner;
        }
    }
    if let Some((path, shape, hint)) = misfit(&kind, shape, root, &mut Vec::new()) {
        let place = if path.is_empty() {
            format!("{what} is")
        } else {
            let steps: Vec<&str> = path.iter().rev().copied().collect();
            format!("the {} of {what} are", steps.join(" of the "))
        };
        errors.spanned(
            ty,
            format!(
                "{label}: {place} {shape}, but the field's type is `{}`{hint}",
                display(ty)
            ),
        );
    }
}

/// Where and why `kind` cannot produce what `shape` allows: the path into
/// the property (`items`, `values`, outermost first), the shape there, and a
/// hint.
type Misfit = (Vec<&'static str>, Shape, String);

fn misfit(
    kind: &RustKind,
    shape: &Shape,
    root: &Value,
    path: &mut Vec<&'static str>,
) -> Option<Misfit> {
    let string_format = |formats: &[&str]| {
        shape.allows(Kind::String) && shape.format().is_none_or(|f| formats.contains(&f))
    };
    let fail =
        |path: &[&'static str], hint: &str| Some((path.to_vec(), shape.clone(), hint.to_string()));
    let fits = match kind {
        RustKind::Opaque => true,
        RustKind::Option(inner) => {
            if !shape.nullable() {
                let which = if path.last() == Some(&"values") {
                    "a value"
                } else {
                    "an element"
                };
                return fail(
                    path,
                    &format!(" ({which} may be `None`, written as `null`)"),
                );
            }
            return misfit(inner, shape, root, path);
        }
        RustKind::Str => shape.allows(Kind::String),
        RustKind::Uuid => string_format(&["uuid"]),
        RustKind::DateTime => string_format(&["date-time"]),
        RustKind::Date => string_format(&["date"]),
        RustKind::Time => string_format(&["time"]),
        RustKind::Integer => shape.allows(Kind::Integer),
        RustKind::Float => {
            if !shape.allows(Kind::Number) && shape.allows(Kind::Integer) {
                return fail(
                    path,
                    " (a float may have a fraction, which `integer` does not allow)",
                );
            }
            shape.allows(Kind::Number)
        }
        RustKind::Bool => shape.allows(Kind::Boolean),
        RustKind::Unit => shape.allows(Kind::Null),
        RustKind::Map(value) => {
            if !shape.allows(Kind::Object) {
                false
            } else {
                return shape.values.as_ref().and_then(|values| {
                    path.push("values");
                    let found = misfit(value, &schema::shape(root, values), root, path);
                    path.pop();
                    found
                });
            }
        }
        RustKind::Array(elem) => {
            if !shape.allows(Kind::Array) {
                false
            } else {
                return match (elem, &shape.items) {
                    (Some(elem), Some(items)) => {
                        path.push("items");
                        let found = misfit(elem, &schema::shape(root, items), root, path);
                        path.pop();
                        found
                    }
                    _ => None,
                };
            }
        }
    };
    if fits {
        None
    } else {
        fail(path, "")
    }
}
