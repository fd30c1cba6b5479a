//! The roles of JSON Schema keywords: the one table the schema walkers of
//! this crate (bundler, lint rules, compatibility engine) share, so they
//! agree on where schemas are and where data is.

/// Keywords whose values are data (instances, comments), never schemas: a
/// `$ref`, `pattern` or `title` inside them is not one.
pub const DATA: [&str; 6] = [
    "enum", "const", "default", "examples", "example", "$comment",
];

/// Whether keyword `k` holds data: one of [`DATA`] or an extension keyword
/// (`x-…`, whose content the registry defines, not JSON Schema).
pub fn is_data(k: &str) -> bool {
    DATA.contains(&k) || k.starts_with("x-")
}

/// Keywords whose value maps names to schemas (`dependencies` maps to a
/// schema or, in its `dependentRequired` form, a list of names).
pub const NAMES_MAPS: [&str; 6] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "dependencies",
];

/// Whether keyword `k` maps names to schemas (see [`NAMES_MAPS`]).
pub fn is_names_map(k: &str) -> bool {
    NAMES_MAPS.contains(&k)
}
