use tidings::DomainEvent;

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/no_such_file.json")]
struct NotFound {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures")]
struct ADirectory {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/not_json.json")]
struct NotJson {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/array_root.json")]
struct NotAnObject {
    id: u32,
}

#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/missing_ref.json")]
struct BrokenRef {
    owner: String,
}

fn main() {}
