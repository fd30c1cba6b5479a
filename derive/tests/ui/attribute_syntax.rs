use tidings::DomainEvent;

#[derive(DomainEvent)]
struct NoAttribute {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(event_type = "a.b.c", version = 1, stream = "A")]
struct NoSchema {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A", colour = "blue", a::b = 1)]
struct UnknownKeys {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A")]
#[domain_event(stream = "B", version = 2)]
struct Duplicates {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = a, version = 1, stream = "A")]
struct NotALiteral {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = "1", stream = 5, key = true)]
struct WrongLiterals {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 0, stream = "A")]
struct VersionZero {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = -1, stream = "A")]
struct VersionNegative {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 4294967296, stream = "A")]
struct VersionTooLarge {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event = "tests/fixtures/bare.json"]
struct NotAList {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A")]
struct OnAField {
    #[domain_event(key)]
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A", custom_upcast = true)]
struct UpcastWithValue {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A", custom_upcast, custom_upcast)]
struct UpcastTwice {
    id: u32,
}

fn main() {}
