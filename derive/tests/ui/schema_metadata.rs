use tidings::DomainEvent;

// Given in both places: they must agree.
#[derive(DomainEvent)]
#[domain_event(
    schema = "tests/fixtures/camel.json",
    event_type = "shop.order.cancelled",
    version = 2,
    stream = "ORDER_EVENTS"
)]
#[allow(non_snake_case)]
struct Disagrees {
    orderId: String,
    totalCents: i64,
}

// Given in neither place.
#[derive(DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json")]
struct Missing {
    id: u32,
}

fn main() {}
