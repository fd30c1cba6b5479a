const _: () = {
    const _: &[u8] = ::core::include_bytes!(
        "$CARGO_MANIFEST_DIR/tests/fixtures/account.opened.v1.json"
    );
    const _: &[u8] = ::core::include_bytes!(
        "$CARGO_MANIFEST_DIR/tests/fixtures/common/ids.json"
    );
    #[automatically_derived]
    impl ::tidings::DomainEvent for AccountOpened {
        const EVENT_TYPE: &'static str = "bank.account.opened";
        const SCHEMA_VERSION: u32 = 1;
        const STREAM: &'static str = "BANK_EVENTS";
        const SCHEMA: &'static str = "{\"$defs\":{\"Timestamp\":{\"description\":\"RFC 3339 instant in UTC.\",\"format\":\"date-time\",\"type\":\"string\"},\"UserId\":{\"description\":\"User id.\",\"format\":\"uuid\",\"type\":\"string\"}},\"$id\":\"https://schemas.example.test/bank/account.opened.v1.json\",\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"additionalProperties\":false,\"properties\":{\"account_id\":{\"minLength\":1,\"type\":\"string\"},\"active\":{\"type\":\"boolean\"},\"address\":{\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"],\"type\":\"object\"},\"balance\":{\"type\":\"number\"},\"closed_at\":{\"anyOf\":[{\"$ref\":\"#/$defs/Timestamp\"},{\"type\":\"null\"}]},\"limits\":{\"additionalProperties\":{\"type\":\"integer\"},\"type\":\"object\"},\"matrix\":{\"items\":{\"items\":{\"type\":\"integer\"},\"type\":\"array\"},\"type\":\"array\"},\"note\":{\"type\":[\"string\",\"null\"]},\"number\":{\"minimum\":0,\"type\":\"integer\"},\"opened_at\":{\"$ref\":\"#/$defs/Timestamp\"},\"owner\":{\"$ref\":\"#/$defs/UserId\"},\"referrer\":{\"$ref\":\"#/$defs/UserId\",\"description\":\"Optional, never null.\"},\"tags\":{\"items\":{\"type\":\"string\"},\"type\":\"array\"}},\"required\":[\"account_id\",\"owner\",\"opened_at\",\"number\",\"balance\",\"active\",\"tags\",\"note\"],\"title\":\"AccountOpened\",\"type\":\"object\",\"x-event-type\":\"bank.account.opened\",\"x-schema-version\":1,\"x-stream\":\"BANK_EVENTS\"}";
        const SCHEMA_URI: &'static str = "https://schemas.example.test/bank/account.opened.v1.json";
        const KEY_FIELD: ::core::option::Option<&'static str> = ::core::option::Option::Some(
            "account_id",
        );
        fn entity_key(&self) -> ::core::option::Option<::std::borrow::Cow<'_, str>> {
            ::core::option::Option::Some(
                ::std::borrow::Cow::Borrowed(
                    ::core::convert::AsRef::<str>::as_ref(&self.account_id),
                ),
            )
        }
    }
    #[automatically_derived]
    impl ::tidings::upcast::ReadAnyVersion for AccountOpened {}
};
