//! Test support for kmsrot's integration tests and examples: an emulated
//! account seeded through the Rust SDK ([`seed`]), an emulated organization
//! of such accounts ([`org`]), CloudTrail records and archives as AWS
//! writes them ([`cloudtrail`]), and their signed digest files ([`digests`]).
//!
//! It lives in its own crate, a dev-dependency, so tests and examples share
//! it through `use`, never through `#[path]` includes, and none of it (its
//! CreateKey and ScheduleKeyDeletion calls included) is in the kmsrot binary.

pub mod cloudtrail;
pub mod digests;
pub mod org;
pub mod seed;
