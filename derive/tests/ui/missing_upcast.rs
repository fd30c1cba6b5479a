//! A generated reader over an upcast step the generator could not write
//! (mode NONE and a new required property: docs/generate.md, *Reading older
//! versions*), as in codegen/tests/snapshots/generate_hand_written.rs, in a
//! crate that has not written `impl From<StockCountedV1> for StockCountedV2`:
//! the error names the impl to write and where.
pub mod stock_counted {
    pub struct StockCountedV1 {
        pub sku: String,
    }

    pub struct StockCountedV2 {
        pub sku: String,
        pub qty: i64,
    }

    pub fn read_as_v2(value: StockCountedV1) -> StockCountedV2 {
        let value: StockCountedV2 = ::tidings::upcast::UpcastFrom::upcast_from(value);
        value
    }
}

fn main() {}
