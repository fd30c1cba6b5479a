use tidings::DomainEvent;

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A")]
enum Choice {
    A,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A")]
struct Tuple(u32);

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A")]
struct Unit;

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A")]
union Both {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A")]
struct Generic<T> {
    id: T,
}

fn main() {}
