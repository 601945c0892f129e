//! kmsrot: proves, and where a person approves, fixes AWS KMS key rotation.
//!
//! Data flows one way: sources (`aws`, `inventory`, `trail`, `iac`) → frames
//! (`frames`) → rules → actions (`remediate`) → reports (`bundle`, `report`,
//! `output`). A run's decisions (AWS access, policy, clock, output format,
//! progress) are made once into a [`context::Ctx`].
//!
//! The CLI layer is `cli` (global flags, the subcommand list, dispatch),
//! `args` (flag groups shared by subcommands), `terminal` (progress bars) and
//! `commands` (one file per subcommand). Only it knows clap and indicatif;
//! nothing below it imports it (`tests/it/layering.rs` checks).

pub mod args;
pub mod aws;
pub mod bundle;
pub mod cli;
pub mod commands;
pub mod context;
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
pub mod terminal;
pub mod trail;
