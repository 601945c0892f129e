//! `kmsrot report BUNDLE --out DIR [--as-of DATE] [--account ID] [--due-within DAYS] [--sign-with KEY] [--upload s3://BUCKET/PREFIX [--object-lock-days N]]`
//!
//! The auditor-facing report of an assessed bundle. Offline unless signing or
//! uploading is asked for:
//!
//!   report.md, report.html   summary, findings by rule with their controls,
//!                            keys coming due (overdue first, 30/60/90-day
//!                            buckets up to --due-within, default 90),
//!                            per-key detail and history, charts (inline SVG),
//!                            coverage and gaps, exemptions, the method
//!   keys/rotations/events/findings .csv .parquet .json   the frames
//!   asff/ACCOUNT-REGION-N.json   Security Hub BatchImportFindings bodies, one
//!                            per account and region, at most 100 findings
//!                            each; asff/README.md says how to send them
//!   findings.ocsf.json       OCSF 1.3.0 Compliance Finding events
//!   manifest.json[.sig]      the bundle's manifest (and signature)
//!   coverage.json, rules/*.sql   what was read; the rules that ran
//!   SHA256SUMS               every file written (`sha256sum -c SHA256SUMS`)
//!
//! `--as-of` fixes the date rotation ages are measured at (default: the
//! assessment's as-of, so a report is reproducible). `--account ID` renders
//! one account of an organization's bundle (`collect --accounts ...`): its
//! keys, findings, coverage and frames only.
//!
//! `--sign-with KEY` signs the SHA-256 of the bundle's manifest.json with an
//! asymmetric KMS key (Sign, RSASSA_PSS_SHA_256, MessageType DIGEST), writing
//! manifest.json.sig and manifest.json.sig.json into the bundle; `kmsrot
//! verify-bundle` checks it. `--upload s3://BUCKET/PREFIX` puts the report
//! under PREFIX/ and the bundle under PREFIX/bundle/, with Object Lock
//! retention (`--object-lock-mode`, `--object-lock-days`) where the bucket has
//! Object Lock enabled, and plainly (said on stderr) where it has not.
//!
//! The bundle is verified against its manifest first: a file changed,
//! added, removed or replaced by a link is an error naming it, unless
//! `--allow-modified`, when the report opens with "this bundle does not match
//! its manifest". `--out` must be new or empty (`--force` empties it) and
//! outside the bundle.
//!
//! Exit: 0 written and coverage complete; 3 written, coverage partial;
//! 2 the bundle cannot be read, does not match its manifest or has not been
//! assessed, or signing or uploading failed.

use std::path::PathBuf;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::bundle;
use crate::context::Ctx;
use crate::error::Outcome;
use crate::frames::time::{parse_until, rfc3339};
use crate::report::{self, publish, publish::LockMode};

#[derive(Debug, clap::Args)]
#[command(about = "Write the auditor's report of an assessed bundle")]
pub struct Args {
    /// The bundle folder, after `kmsrot assess`.
    pub bundle: PathBuf,

    /// Folder to write the report into (created if absent; must be empty,
    /// outside the bundle).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Empty a non-empty --out folder first (never the root, home or current folder).
    #[arg(long)]
    pub force: bool,

    /// Go on when the bundle does not match its manifest; the report then says so.
    #[arg(long)]
    pub allow_modified: bool,

    /// Measure rotation ages at this date (default: the assessment's as-of).
    #[arg(long, value_name = "DATE", value_parser = parse_until)]
    pub as_of: Option<DateTime<Utc>>,

    /// The keys coming due section: keys due within this many days (buckets
    /// 30/60/90), overdue keys first.
    #[arg(long, value_name = "DAYS", default_value_t = report::due::DEFAULT_DUE_WITHIN,
          value_parser = report::due::parse_due_within)]
    pub due_within: i64,

    /// Sign the bundle's manifest with this asymmetric KMS key (id, ARN or alias).
    #[arg(long, value_name = "KEY")]
    pub sign_with: Option<String>,

    /// Upload the report and the bundle to s3://BUCKET/PREFIX.
    #[arg(long, value_name = "S3_URL")]
    pub upload: Option<String>,

    /// Object Lock retention for uploaded objects, in days.
    #[arg(long, value_name = "N", default_value_t = 365, requires = "upload",
          value_parser = clap::value_parser!(i64).range(1..=36500))]
    pub object_lock_days: i64,

    /// Object Lock mode for uploaded objects.
    #[arg(long, value_enum, default_value_t = LockMode::Compliance, requires = "upload")]
    pub object_lock_mode: LockMode,

    /// Render one account of an organization's bundle: its keys, findings
    /// and coverage only (the frames beside the report are that account's).
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub account: Option<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    // Before anything is signed or written: the report never goes into the
    // evidence it reads, nor among an earlier run's files.
    crate::output::prepare_out_dir(&args.out, args.force, &[&args.bundle])?;
    if let Some(key) = &args.sign_with {
        let info = publish::sign_sealed(ctx.aws().await?, &args.bundle, key).await?;
        eprintln!(
            "signed {} (SHA-256 {}) with {}",
            args.bundle.join(bundle::MANIFEST).display(),
            info.digest_sha256,
            crate::output::display_safe(&info.key_id)
        );
    }
    let written = report::write_bundle_report_for(
        &args.bundle,
        &args.out,
        ctx.clock.requested_as_of(),
        args.account.as_deref(),
        args.force,
        args.allow_modified,
        args.due_within,
    )?;
    eprintln!("{}", written.summary_line());
    if let Some(url) = &args.upload {
        let files = publish::report_and_bundle_files(&written, &args.bundle)?;
        let up = publish::upload(
            ctx.aws().await?,
            url,
            &files,
            args.object_lock_days,
            args.object_lock_mode,
        )
        .await?;
        match (&up.locked_until, &up.mode) {
            (Some(until), Some(mode)) => eprintln!(
                "uploaded {} objects to {url} with Object Lock {mode} until {}",
                up.objects,
                rfc3339(*until)
            ),
            _ => eprintln!(
                "uploaded {} objects to {url}; {}",
                up.objects,
                up.note.as_deref().unwrap_or("no retention")
            ),
        }
    }
    Ok(written.outcome())
}
