::core::compile_error! {
    "unknown `domain_event` key `colour`; expected one of `schema`, `event_type`, `version`, `stream`, `key`, `custom_upcast`"
}
::core::compile_error! {
    "`event_type = \"bank.account.closed\"` disagrees with the schema's `\"x-event-type\": \"bank.account.opened\"` ($CARGO_MANIFEST_DIR/tests/fixtures/account.opened.v1.json); they must agree (leave the attribute out to use the schema's)"
}
::core::compile_error! {
    "`stream`: \"bank\" must start with an upper-case letter A-Z"
}
::core::compile_error! {
    "`key`: `AccountOpened` has no field `nope`; its fields are `account_id`, `owner`, `extra`"
}
::core::compile_error! {
    "field `account_id`: schema property `account_id` is `string`, but the field's type is `i64`"
}
::core::compile_error! {
    "field `owner`: schema property `owner` is required and cannot be null, but the field's type is `Option<Uuid>`; drop the `Option`, or make the property optional or nullable in the schema"
}
::core::compile_error! {
    "field `extra`: the schema forbids undeclared properties (additionalProperties: false) and does not declare `extra`; it declares `account_id`, `active`, `address`, `balance`, `closed_at`, `limits`, `matrix`, `note`, `number`, `opened_at`, `owner`, `referrer`, `tags`"
}
::core::compile_error! {
    "`AccountOpened` lacks the required schema properties `opened_at`, `number`, `balance`, `active`, `tags`, `note`: no field serializes as them"
}
