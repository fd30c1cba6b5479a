//! The closed list of change kinds the engine reports.
use serde::Serialize;

macro_rules! kinds {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// What changed between two schema versions. Serialises as the stable
        /// snake_case name returned by [`ChangeKind::as_str`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ChangeKind {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ChangeKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ChangeKind] = &[$(ChangeKind::$variant,)*];

            /// The stable snake_case name (`required_property_added`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ChangeKind::$variant => $name,)*
                }
            }
        }
    };
}

kinds! {
    /// A subschema became `false` (or something that accepts nothing).
    FalseSchemaAdded => "false_schema_added",
    /// A `false` subschema now accepts documents.
    FalseSchemaRemoved => "false_schema_removed",
    /// Fewer JSON types are accepted (`integer` is part of `number`).
    TypeNarrowed => "type_narrowed",
    /// More JSON types are accepted.
    TypeWidened => "type_widened",
    /// An `enum`/`const` now restricts the values.
    EnumAdded => "enum_added",
    /// The `enum`/`const` restriction was dropped.
    EnumRemoved => "enum_removed",
    /// An allowed value was added to `enum`/`const`.
    EnumValueAdded => "enum_value_added",
    /// An allowed value was removed from `enum`/`const`.
    EnumValueRemoved => "enum_value_removed",
    /// A value of the old `enum` is rejected by another keyword of the new schema.
    EnumValueRejected => "enum_value_rejected",
    /// A value of the new `enum` is rejected by another keyword of the old schema.
    EnumValueNewlyAccepted => "enum_value_newly_accepted",
    /// `minLength` added.
    MinLengthAdded => "min_length_added",
    /// `minLength` removed.
    MinLengthRemoved => "min_length_removed",
    /// `minLength` raised.
    MinLengthIncreased => "min_length_increased",
    /// `minLength` lowered.
    MinLengthDecreased => "min_length_decreased",
    /// `maxLength` added.
    MaxLengthAdded => "max_length_added",
    /// `maxLength` removed.
    MaxLengthRemoved => "max_length_removed",
    /// `maxLength` raised.
    MaxLengthIncreased => "max_length_increased",
    /// `maxLength` lowered.
    MaxLengthDecreased => "max_length_decreased",
    /// `pattern` added.
    PatternAdded => "pattern_added",
    /// `pattern` removed.
    PatternRemoved => "pattern_removed",
    /// `pattern` changed (judged as breaking both ways unless identical).
    PatternChanged => "pattern_changed",
    /// `format` added.
    FormatAdded => "format_added",
    /// `format` removed.
    FormatRemoved => "format_removed",
    /// `format` changed.
    FormatChanged => "format_changed",
    /// A lower bound (`minimum`/`exclusiveMinimum`) added.
    MinimumAdded => "minimum_added",
    /// The lower bound removed.
    MinimumRemoved => "minimum_removed",
    /// The lower bound raised (or made exclusive).
    MinimumIncreased => "minimum_increased",
    /// The lower bound lowered (or made inclusive).
    MinimumDecreased => "minimum_decreased",
    /// An upper bound (`maximum`/`exclusiveMaximum`) added.
    MaximumAdded => "maximum_added",
    /// The upper bound removed.
    MaximumRemoved => "maximum_removed",
    /// The upper bound raised (or made inclusive).
    MaximumIncreased => "maximum_increased",
    /// The upper bound lowered (or made exclusive).
    MaximumDecreased => "maximum_decreased",
    /// `multipleOf` added.
    MultipleOfAdded => "multiple_of_added",
    /// `multipleOf` removed.
    MultipleOfRemoved => "multiple_of_removed",
    /// `multipleOf` changed.
    MultipleOfChanged => "multiple_of_changed",
    /// `minItems` added.
    MinItemsAdded => "min_items_added",
    /// `minItems` removed.
    MinItemsRemoved => "min_items_removed",
    /// `minItems` raised.
    MinItemsIncreased => "min_items_increased",
    /// `minItems` lowered.
    MinItemsDecreased => "min_items_decreased",
    /// `maxItems` added.
    MaxItemsAdded => "max_items_added",
    /// `maxItems` removed.
    MaxItemsRemoved => "max_items_removed",
    /// `maxItems` raised.
    MaxItemsIncreased => "max_items_increased",
    /// `maxItems` lowered.
    MaxItemsDecreased => "max_items_decreased",
    /// `uniqueItems: true` added.
    UniqueItemsAdded => "unique_items_added",
    /// `uniqueItems: true` removed.
    UniqueItemsRemoved => "unique_items_removed",
    /// `minProperties` added.
    MinPropertiesAdded => "min_properties_added",
    /// `minProperties` removed.
    MinPropertiesRemoved => "min_properties_removed",
    /// `minProperties` raised.
    MinPropertiesIncreased => "min_properties_increased",
    /// `minProperties` lowered.
    MinPropertiesDecreased => "min_properties_decreased",
    /// `maxProperties` added.
    MaxPropertiesAdded => "max_properties_added",
    /// `maxProperties` removed.
    MaxPropertiesRemoved => "max_properties_removed",
    /// `maxProperties` raised.
    MaxPropertiesIncreased => "max_properties_increased",
    /// `maxProperties` lowered.
    MaxPropertiesDecreased => "max_properties_decreased",
    /// A property became required.
    RequiredPropertyAdded => "required_property_added",
    /// A property that has a `default` became required.
    RequiredPropertyWithDefaultAdded => "required_property_with_default_added",
    /// A property is no longer required.
    RequiredPropertyRemoved => "required_property_removed",
    /// A property was declared where the old model was open (any value was allowed).
    PropertyAddedToOpenModel => "property_added_to_open_model",
    /// A property was declared where the old model was closed (the name was forbidden).
    PropertyAddedToClosedModel => "property_added_to_closed_model",
    /// A property declaration was dropped and the new model is open there.
    PropertyRemovedFromOpenModel => "property_removed_from_open_model",
    /// A property declaration was dropped and the new model is closed there.
    PropertyRemovedFromClosedModel => "property_removed_from_closed_model",
    /// Undeclared properties are constrained more (e.g. `additionalProperties` true → false).
    AdditionalPropertiesNarrowed => "additional_properties_narrowed",
    /// Undeclared properties are constrained less (e.g. `additionalProperties` false → true).
    AdditionalPropertiesWidened => "additional_properties_widened",
    /// A `patternProperties` entry added.
    PatternPropertyAdded => "pattern_property_added",
    /// A `patternProperties` entry removed.
    PatternPropertyRemoved => "pattern_property_removed",
    /// A tuple position added to an array that was closed after its prefix.
    ItemAddedToClosedTuple => "item_added_to_closed_tuple",
    /// A tuple position removed from an array that is closed after its prefix.
    ItemRemovedFromClosedTuple => "item_removed_from_closed_tuple",
    /// A `dependentRequired` (or array `dependencies`) entry added or extended.
    DependentRequiredAdded => "dependent_required_added",
    /// A `dependentRequired` (or array `dependencies`) entry removed or shortened.
    DependentRequiredRemoved => "dependent_required_removed",
    /// A `dependentSchemas` (or schema `dependencies`) entry added.
    DependentSchemaAdded => "dependent_schema_added",
    /// A `dependentSchemas` (or schema `dependencies`) entry removed.
    DependentSchemaRemoved => "dependent_schema_removed",
    /// `contains` added: arrays need matching items.
    ContainsAdded => "contains_added",
    /// `contains` removed.
    ContainsRemoved => "contains_removed",
    /// `contains`, `minContains` or `maxContains` changed so that some
    /// arrays the old version accepted are rejected.
    ContainsNarrowed => "contains_narrowed",
    /// `contains`, `minContains` or `maxContains` changed so that some
    /// arrays the old version rejected are accepted.
    ContainsWidened => "contains_widened",
    /// A property name an old document can carry is rejected by the new `propertyNames`.
    PropertyNamesNarrowed => "property_names_narrowed",
    /// A property name a new document can carry is rejected by the old `propertyNames`.
    PropertyNamesWidened => "property_names_widened",
    /// An `if`/`then`/`else` condition added.
    ConditionAdded => "condition_added",
    /// An `if`/`then`/`else` condition removed.
    ConditionRemoved => "condition_removed",
    /// A `not` added.
    NotAdded => "not_added",
    /// A `not` removed.
    NotRemoved => "not_removed",
    /// An `allOf` subschema added.
    AllOfSubschemaAdded => "all_of_subschema_added",
    /// An `allOf` subschema removed.
    AllOfSubschemaRemoved => "all_of_subschema_removed",
    /// An `anyOf` alternative added (or a schema became an `anyOf`).
    AnyOfBranchAdded => "any_of_branch_added",
    /// An `anyOf` alternative removed.
    AnyOfBranchRemoved => "any_of_branch_removed",
    /// A `oneOf` alternative added.
    OneOfBranchAdded => "one_of_branch_added",
    /// A `oneOf` alternative removed.
    OneOfBranchRemoved => "one_of_branch_removed",
    /// A validation keyword the engine does not model exactly changed
    /// (a changed `if`, `$dynamicRef`, `unevaluated*` beside applicators);
    /// judged as breaking both ways.
    UnsupportedKeywordChanged => "unsupported_keyword_changed",
    /// `default` added, removed or changed (informational).
    DefaultChanged => "default_changed",
}
