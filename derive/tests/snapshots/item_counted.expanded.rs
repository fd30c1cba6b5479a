const _: () = {
    const _: &[u8] = ::core::include_bytes!(
        "$CARGO_MANIFEST_DIR/tests/fixtures/bare.json"
    );
    #[automatically_derived]
    impl ::tidings::DomainEvent for ItemCounted {
        const EVENT_TYPE: &'static str = "inventory.item.counted";
        const SCHEMA_VERSION: u32 = 2;
        const STREAM: &'static str = "INVENTORY_EVENTS";
        const SCHEMA: &'static str = "{\"properties\":{\"id\":{\"type\":\"integer\"},\"label\":{\"type\":\"string\"}},\"required\":[\"id\"],\"type\":\"object\"}";
        const SCHEMA_URI: &'static str = "urn:tidings:schema:inventory.item.counted:v2";
        const KEY_FIELD: ::core::option::Option<&'static str> = ::core::option::Option::Some(
            "id",
        );
        fn entity_key(&self) -> ::core::option::Option<::std::borrow::Cow<'_, str>> {
            ::core::option::Option::Some(
                ::std::borrow::Cow::Owned(::std::string::ToString::to_string(&self.id)),
            )
        }
    }
    #[automatically_derived]
    impl ::tidings::upcast::ReadAnyVersion for ItemCounted {}
};
