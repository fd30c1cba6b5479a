//! Errors of the compatibility engine.

/// Why two schemas could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompatError {
    /// A `$ref` that is not a local JSON pointer (`#`, `#/...`). Cross-file
    /// references must be bundled first (`tidings_codegen::bundle`).
    #[error("{side} schema at {at:?}: $ref {reference:?} is not local; bundle cross-file references first")]
    NonLocalRef {
        /// `old` or `new`.
        side: &'static str,
        /// Pointer of the subschema holding the `$ref`.
        at: String,
        /// The reference as written.
        reference: String,
    },
    /// A local `$ref` whose pointer names nothing in the document.
    #[error("{side} schema at {at:?}: $ref {reference:?} does not resolve")]
    UnresolvableRef {
        /// `old` or `new`.
        side: &'static str,
        /// Pointer of the subschema holding the `$ref`.
        at: String,
        /// The reference as written.
        reference: String,
    },
    /// A chain of `$ref`s that only refers to itself (`{"$ref": "#"}`).
    #[error("{side} schema at {at:?}: $ref chain loops without reaching a schema")]
    RefLoop {
        /// `old` or `new`.
        side: &'static str,
        /// Pointer where the loop starts.
        at: String,
    },
    /// A subschema that is neither an object nor a boolean, or a keyword
    /// whose value has the wrong shape.
    #[error("{side} schema at {at:?}: {reason}")]
    InvalidSchema {
        /// `old` or `new`.
        side: &'static str,
        /// Pointer of the offending value.
        at: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Subschemas nested deeper than the engine follows.
    #[error("schemas nested too deeply to compare (more than {0} levels)")]
    TooDeep(usize),
    /// The comparison exceeded its work budget (pathological combinators).
    #[error("schemas too complex to compare (more than {0} subschema comparisons)")]
    TooComplex(usize),
}
