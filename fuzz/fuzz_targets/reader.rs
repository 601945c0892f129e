// The reader's source files, compiled as a small module tree of their own:
// `src/trail/` relative to this folder.
#[allow(dead_code)]
#[path = "../../src/trail"]
pub mod trail {
    pub mod gz;
    mod model;
    pub mod reader;
    pub mod record;
    pub mod scan;

    pub use model::{EventRow, Scope, Window};
}
