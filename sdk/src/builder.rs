//! What generated payload builders report when a payload cannot be built.
//!
//! Every generated struct has `X::builder()`: one setter per field, named
//! after it (a misspelt field does not compile), each taking any value that
//! converts into the field's type with `TryInto` (a constrained string
//! checks its `minLength`, `maxLength` or `pattern` there), and `build()`,
//! which returns the value or a [`BuildError`] naming the first field that
//! is required but unset or was given a value its schema forbids
//! (`docs/generate.md`, *Building payloads*).
use std::fmt;

/// Why one field of a builder holds no usable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// The field is required (no default) and its setter was not called.
    Missing,
    /// The value given to the setter does not convert into the field's
    /// type: the conversion's message (`longer than 120 characters`).
    Invalid(String),
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldProblem::Missing => f.write_str("required, but its setter was not called"),
            FieldProblem::Invalid(why) => write!(f, "value refused: {why}"),
        }
    }
}

/// A generated builder could not build its value: which type, which field
/// (its setter's name) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build `{type_name}`: field `{field}`: {problem}")]
pub struct BuildError {
    /// The Rust type being built (`UserCreatedV2`).
    pub type_name: &'static str,
    /// The field, as its setter is named (`display_name`).
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: FieldProblem,
}

/// A setter's value converted into its field's type (generated setters
/// call it): the conversion's error becomes [`FieldProblem::Invalid`].
///
/// # Errors
/// [`FieldProblem::Invalid`] with the conversion's message.
pub fn convert<V, T>(value: V) -> Result<T, FieldProblem>
where
    V: TryInto<T>,
    V::Error: fmt::Display,
{
    value
        .try_into()
        .map_err(|e| FieldProblem::Invalid(e.to_string()))
}

/// A field's value out of its builder slot (generated `build()` calls it),
/// or the [`BuildError`] naming `type_name` and `field`.
///
/// # Errors
/// The slot's problem, with the type and field.
pub fn take<T>(
    slot: Result<T, FieldProblem>,
    type_name: &'static str,
    field: &'static str,
) -> Result<T, BuildError> {
    slot.map_err(|problem| BuildError {
        type_name,
        field,
        problem,
    })
}
