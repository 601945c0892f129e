// The reader's source files, compiled as a small module tree of their own.
// Paths are relative to fuzz_targets/trail/ (this inline module's folder).
#[allow(dead_code)]
pub mod trail {
    #[path = "../../../src/trail/gz.rs"]
    pub mod gz;
    #[path = "../../../src/trail/model.rs"]
    mod model;
    #[path = "../../../src/trail/reader.rs"]
    pub mod reader;
    #[path = "../../../src/trail/record.rs"]
    pub mod record;
    #[path = "../../../src/trail/scan.rs"]
    pub mod scan;

    pub use model::{EventRow, Scope, Window};
}
