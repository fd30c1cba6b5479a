use tidings::DomainEvent;

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "auth.user", version = 1, stream = "AUTH_EVENTS")]
struct TwoTokens {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "auth.User.created", version = 1, stream = "auth_events")]
struct UpperCaseToken {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "auth.user-x.created", version = 1, stream = "AUTH-EVENTS")]
struct Dash {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "auth.user.created", version = 1, stream = "")]
struct EmptyStream {
    id: u32,
}

// The same rules for values taken from the schema's x-* keywords.
#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bad_keywords.json")]
struct BadKeywords {
    id: String,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/wrong_keyword_types.json")]
struct WrongKeywordTypes {
    id: String,
}

fn main() {}
