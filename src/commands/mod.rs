//! One file per subcommand. Each opens with its usage text and `Args`, then
//! one `run` that parses nothing more, calls the library, and prints. No
//! command calls another: shared flags are flattened groups from `args`,
//! shared work is a library function.

pub mod apply;
pub mod approve;
pub mod assess;
pub mod audit;
pub mod collect;
pub mod completions;
pub mod diagnose;
pub mod diff;
pub mod iac;
pub mod inventory;
pub mod man;
pub mod plan;
pub mod report;
pub mod trail_scan;
pub mod verify;
pub mod verify_bundle;
