//! All integration tests, in one binary so the tree is linked once.

mod support;

mod assess;
mod diff;
mod first_contact;
mod hostile;
mod iac;
mod iam;
mod inventory;
mod layering;
mod offline;
mod org;
mod orphaned_principal;
mod remediate;
mod report;
mod trail;
mod trail_athena;
mod trail_hostile;
mod trail_integrity;
mod trail_lake;
mod trail_lookup;
mod trail_s3;
mod user_output;
