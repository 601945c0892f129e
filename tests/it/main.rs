//! All integration tests, in one binary so the tree is linked once.

mod support;

mod assess;
mod inventory;
mod trail;
mod trail_lake;
mod trail_lookup;
mod trail_s3;
