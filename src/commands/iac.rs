//! `kmsrot iac FILE... [--policy kmsrot.toml] [--fail-on SEVERITY]
//!  [--format findings|sarif] [--out DIR] [--as-of DATE]`
//!
//! Prevention: judges the KMS keys that infrastructure-as-code would create
//! or leave behind, with the same policy as `assess`, before they exist.
//!
//! FILE is a Terraform plan (`terraform show -json plan.out`), Terraform state
//! (`terraform show -json`, or `terraform.tfstate`), a CloudFormation template
//! (JSON or YAML, short-form intrinsics included), a folder (walked for
//! .json, .yaml, .yml, .template and .tfstate files; files that are not IaC
//! are skipped), or `-` for stdin. Never calls AWS.
//!
//! Rules: `rotation_disabled` (high) a SYMMETRIC_DEFAULT key with rotation
//! false or not set; `period_out_of_range` (high) a period outside
//! 90..=2560, which AWS rejects at apply; `period_exceeds_policy` (medium) a
//! period (or AWS's default 365) above the policy's maximum. Asymmetric, HMAC,
//! imported, custom-key-store and replica keys are listed as not applicable
//! with the reason; resources being deleted are skipped; values known only at
//! apply are reported as unknown, never as compliant.
//!
//! Prints the findings (`--output table|json|csv`), or a SARIF 2.1.0 log with
//! `--format sarif`. `--out DIR` writes iac_findings.parquet, .csv, .json and
//! iac_findings.sarif.
//!
//! Exit: 1 an open finding at or above `--fail-on` (default high); 3 some
//! value is unknown until apply (nothing failed, but not everything could be
//! judged); 0 otherwise; 2 a file is invalid or not IaC (one line naming the
//! file and line) or another fatal error.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::args::{GateArgs, PolicyArgs};
use crate::context::Ctx;
use crate::error::Outcome;
use crate::frames::time::parse_until;
use crate::frames::IAC_FINDINGS;
use crate::iac::{self, Status};
use crate::output::{
    display_safe, json_rows, render_rows, write_bytes_atomic, write_frame, Format, Table,
};
use crate::policy::Severity;

#[derive(Debug, clap::Args)]
#[command(
    about = "Judge Terraform plans and state and CloudFormation templates before the keys exist"
)]
pub struct Args {
    /// Terraform plan or state JSON, CloudFormation template, folder, or `-` (stdin).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Here exemptions name a resource address or logical id.
    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub gate: GateArgs,

    /// What to print: the findings (formatted by --output), or a SARIF 2.1.0 log.
    #[arg(long, value_enum, default_value_t = IacFormat::Findings)]
    pub format: IacFormat,

    /// Also write iac_findings.parquet, .csv, .json and .sarif into this
    /// folder (new or empty; --force empties it).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Empty a non-empty --out folder first (never the root, home or current folder).
    #[arg(long, requires = "out")]
    pub force: bool,

    /// Judge exemptions' expiry as of this date instead of today.
    #[arg(long, value_name = "DATE", value_parser = parse_until)]
    pub as_of: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IacFormat {
    Findings,
    Sarif,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Outcome> {
    let policy = &ctx.policy;
    let scan = iac::scan(&args.files, policy, ctx.clock.as_of())?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let sarif = || iac::sarif::log(&scan, policy, &cwd);

    let mut frame = iac::findings_frame(&scan.findings)?;
    if let Some(dir) = &args.out {
        let inputs: Vec<&std::path::Path> = args.files.iter().map(PathBuf::as_path).collect();
        crate::output::prepare_out_dir(dir, args.force, &inputs)?;
        write_frame(dir, &IAC_FINDINGS, &mut frame)?;
        let mut bytes = serde_json::to_vec_pretty(&sarif())?;
        bytes.push(b'\n');
        write_bytes_atomic(&dir.join("iac_findings.sarif"), &bytes)?;
    }

    let mut stdout = crate::output::stdout();
    match args.format {
        IacFormat::Sarif => {
            serde_json::to_writer_pretty(&mut stdout, &sarif())?;
            writeln!(stdout)?;
        }
        // The same objects as iac_findings.json: typed, `line` null when unknown.
        IacFormat::Findings if ctx.output == Format::Json => {
            let rows = json_rows(&IAC_FINDINGS, &render_rows(&frame, &IAC_FINDINGS)?);
            serde_json::to_writer_pretty(&mut stdout, &rows)?;
            writeln!(stdout)?;
        }
        IacFormat::Findings => table(&scan, ctx.output).print(ctx.output, &mut stdout)?,
    }
    stdout.flush()?;

    eprintln!("{}", summary(&scan));
    for s in &scan.skipped {
        eprintln!(
            "skipped: {}: {}: {}",
            display_safe(&s.source_file),
            display_safe(&s.address),
            display_safe(&s.reason)
        );
    }
    if let Some(dir) = &args.out {
        eprintln!("written to {}", dir.join("iac_findings.*").display());
    }
    let failing = scan.open().any(|f| f.severity.at_least(args.gate.fail_on));
    Ok(if failing {
        Outcome::Findings
    } else if scan.unknown().next().is_some() {
        Outcome::Partial
    } else {
        Outcome::Complete
    })
}

/// The rows for stdout: as a text table the columns a reviewer reads; as CSV
/// every column of `iac_findings`.
fn table(scan: &iac::Scan, format: Format) -> Table {
    if format == Format::Table {
        let mut t = Table::new([
            "severity",
            "status",
            "rule_id",
            "resource",
            "location",
            "remediation",
            "detail",
        ]);
        for f in &scan.findings {
            let location = match f.line {
                Some(l) => format!("{}:{l}", f.source_file),
                None => f.source_file.clone(),
            };
            t.row([
                f.severity.as_str().to_string(),
                f.status.as_str().to_string(),
                f.rule_id.to_string(),
                f.resource.clone(),
                location,
                f.remediation.clone(),
                f.detail.clone(),
            ]);
        }
        return t;
    }
    let mut t = Table::new(IAC_FINDINGS.names());
    for f in &scan.findings {
        t.row([
            f.source_file.clone(),
            f.resource.clone(),
            f.resource_type.clone(),
            f.rule_id.to_string(),
            f.severity.as_str().to_string(),
            f.detail.clone(),
            f.remediation.clone(),
            f.status.as_str().to_string(),
            f.line.map(|l| l.to_string()).unwrap_or_default(),
        ]);
    }
    t
}

fn summary(scan: &iac::Scan) -> String {
    let count = |s: Status| scan.findings.iter().filter(|f| f.status == s).count();
    let mut by_sev = Vec::new();
    for sev in Severity::ALL {
        let n = scan.open().filter(|f| f.severity == sev).count();
        if n > 0 {
            by_sev.push(format!("{n} {sev}"));
        }
    }
    let open = count(Status::Open);
    let mut s = format!(
        "{} file(s) read, {} KMS resource(s) judged: {} compliant, {} open finding(s){}, {} exempted, {} not applicable, {} unknown until apply",
        scan.files.len(),
        scan.resources,
        scan.compliant.len(),
        open,
        if by_sev.is_empty() { String::new() } else { format!(" ({})", by_sev.join(", ")) },
        count(Status::Exempted),
        count(Status::NotApplicable),
        count(Status::Unknown),
    );
    if !scan.skipped.is_empty() {
        s.push_str(&format!("; {} skipped", scan.skipped.len()));
    }
    if !scan.not_iac.is_empty() {
        s.push_str(&format!(
            "; {} file(s) in folders are not IaC",
            scan.not_iac.len()
        ));
    }
    s
}
