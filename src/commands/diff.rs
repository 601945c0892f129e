//! `kmsrot diff OLD_BUNDLE NEW_BUNDLE [--out DIR] [--due-within DAYS]`
//!
//! The monthly review of two assessed bundles of the same estate: keys added
//! and removed, rotation turned on or off, period and state changes, findings
//! opened, resolved and still open (matched by `finding_id`), and exemptions
//! that expired; then the forward view: the keys the old bundle showed due
//! by the new one's date and whether they rotated, and the new bundle's keys
//! overdue or due within --due-within days (default 90; 30/60/90 buckets).
//! Over organizations' bundles, also accounts added, removed, no longer read
//! and read again; keys and findings are compared only in accounts both
//! bundles read (a finding of an account not read now is "not verified",
//! never "resolved"). One row per change on stdout (`--output table|json|csv`;
//! `json` prints the whole structured diff); `--out DIR` also writes
//! `diff.md` and `diff.json`. Offline.
//!
//! Exit: 1 a finding was opened since the old bundle; 0 otherwise;
//! 2 a bundle cannot be read or has not been assessed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use crate::context::Ctx;
use crate::error::Outcome;
use crate::output::Format;
use crate::report::diff::diff;
use crate::report::Evidence;

#[derive(Debug, clap::Args)]
#[command(about = "What changed between two assessed bundles: the monthly review")]
pub struct Args {
    /// The earlier bundle.
    pub old: PathBuf,
    /// The later bundle.
    pub new: PathBuf,
    /// Also write diff.md and diff.json into this folder (new or empty,
    /// outside both bundles).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Empty a non-empty --out folder first (never the root, home or current folder).
    #[arg(long, requires = "out")]
    pub force: bool,

    /// Go on when a bundle does not match its manifest; diff.md then says so.
    #[arg(long)]
    pub allow_modified: bool,

    /// List the new bundle's keys due within this many days (buckets
    /// 30/60/90), overdue first.
    #[arg(long, value_name = "DAYS", default_value_t = crate::report::due::DEFAULT_DUE_WITHIN,
          value_parser = crate::report::due::parse_due_within)]
    pub due_within: i64,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    if let Some(dir) = &args.out {
        crate::output::refuse_overlap(dir, &[&args.old, &args.new])?;
    }
    let old = Evidence::load(&args.old, args.allow_modified)?;
    let new = Evidence::load(&args.new, args.allow_modified)?;
    let d = diff(&old, &new, args.due_within)?;
    if let Some(dir) = &args.out {
        crate::output::prepare_out_dir(dir, args.force, &[&args.old, &args.new])?;
        d.write_files(dir)?;
    }
    let mut stdout = crate::output::stdout();
    if ctx.output == Format::Json {
        serde_json::to_writer_pretty(&mut stdout, &d)?;
        writeln!(stdout)?;
    } else {
        d.table().print(ctx.output, &mut stdout)?;
    }
    stdout.flush()?;
    if !(d.accounts_added.is_empty()
        && d.accounts_removed.is_empty()
        && d.accounts_no_longer_read.is_empty())
    {
        eprintln!(
            "{} accounts added, {} removed, {} no longer read ({} keys not compared, {} findings not verified)",
            d.accounts_added.len(),
            d.accounts_removed.len(),
            d.accounts_no_longer_read.len(),
            d.keys_not_compared,
            d.findings_not_verified.len()
        );
    }
    eprintln!(
        "{} keys added, {} removed; rotation on {}, off {}; findings opened {}, resolved {}, still open {}; {} exemption(s) expired",
        d.keys_added.len(),
        d.keys_removed.len(),
        d.rotation_turned_on.len(),
        d.rotation_turned_off.len(),
        d.findings_opened.len(),
        d.findings_resolved.len(),
        d.findings_still_open.len(),
        d.exemptions_expired.len()
    );
    eprintln!("{}", d.due_line());
    Ok(if d.opened() {
        Outcome::Findings
    } else {
        Outcome::Complete
    })
}
