//! kmsrot: proves, and where a person approves, fixes AWS KMS key rotation.
//!
//! Data flows one way: sources (`aws`, `inventory`, `trail`, `iac`) → frames
//! (`frames`) → rules → actions → reports (`output`). `cli` and `commands`
//! are the only modules that know about the command line.

pub mod aws;
pub mod bundle;
pub mod cli;
pub mod commands;
pub mod diagnose;
pub mod error;
pub mod frames;
pub mod iac;
pub mod inventory;
pub mod output;
pub mod policy;
pub mod progress;
pub mod remediate;
pub mod report;
pub mod rules;
pub mod trail;
