//! Log file integrity validation of an S3 archive, as AWS documents it
//! ("Custom implementations of CloudTrail log file integrity validation"):
//! each digest's signature with the public key its fingerprint names, the
//! chain of previous-digest signatures and hashes, and each listed log
//! file's SHA-256 over its uncompressed content. Then the other way round:
//! every log file read that no digest lists.
//!
//! This module decides; it does no I/O. The S3 source ([`super::s3`])
//! fetches digests (with their `x-amz-meta-*` metadata) and log files (whose
//! SHA-256 the reader computes while it parses them) and hands both here.
//!
//! Outcomes, per file:
//!
//! | outcome | file | when |
//! |---|---|---|
//! | `valid` | log | a digest whose signature verifies lists it, with its hash |
//! | `altered` | log | a verified digest lists it with another hash |
//! | `missing` | log | a digest lists it; S3 does not have it |
//! | `not_in_digest` | log | no digest lists it: added later, or delivered while validation was off |
//! | `unverified` | log, digest | the digest's public key was not found (or not readable), or the file could not be read; never valid |
//! | `pending` | log | delivered after the newest digest, which is less than two hours old: its digest is not out yet |
//! | `valid` | digest | signature verifies, chained to its predecessor |
//! | `backfill` | digest | a backfill digest (`_backfill`) whose signature verifies; its log files count as listed |
//! | `chain_start` | digest | signature verifies, but it starts a new chain after an earlier digest of the same trail: logging or validation stopped between the two |
//! | `digest_missing` | digest | a verified digest names it as its predecessor (or S3 listed it), and S3 does not have it |
//! | `digest_invalid` | digest | bad signature, bad format, moved from where CloudTrail put it, or not the file its successor chained to |

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::digest::{
    self, ChainKey, DigestDoc, DigestName, PublicKey, SignatureError, HASH_ALGORITHM,
    SIGNATURE_ALGORITHM,
};
use crate::frames::time::rfc3339;

/// How long after a digest's end the next one may still be on its way:
/// CloudTrail delivers a digest about an hour after the period it covers.
const DIGEST_DUE: i64 = 2 * 3600;

/// What validation found for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Valid,
    Backfill,
    Altered,
    Missing,
    NotInDigest,
    Unverified,
    Pending,
    ChainStart,
    DigestMissing,
    DigestInvalid,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Backfill => "backfill",
            Outcome::Altered => "altered",
            Outcome::Missing => "missing",
            Outcome::NotInDigest => "not_in_digest",
            Outcome::Unverified => "unverified",
            Outcome::Pending => "pending",
            Outcome::ChainStart => "chain_start",
            Outcome::DigestMissing => "digest_missing",
            Outcome::DigestInvalid => "digest_invalid",
        }
    }

    /// Valid files, and backfill digests that verify, are the only good ones.
    pub fn is_valid(self) -> bool {
        matches!(self, Outcome::Valid | Outcome::Backfill)
    }

    /// The `log_integrity` value of the events read from a log file with
    /// this outcome.
    pub fn event_integrity(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Altered => "altered",
            _ => "unverifiable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Log,
    Digest,
}

/// One file's outcome, as `coverage.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOutcome {
    /// `s3://bucket/key`.
    pub key: String,
    pub kind: FileKind,
    pub outcome: Outcome,
    pub account_id: String,
    pub region: String,
    /// The hours it concerns: a log file's delivery hour; a digest's
    /// period; for `chain_start` and `digest_missing`, the time between the
    /// last digest before the break and the first after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Counts for one account and region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeIntegrity {
    pub account_id: String,
    pub region: String,
    pub log_files: BTreeMap<String, u64>,
    pub digest_files: BTreeMap<String, u64>,
    /// Hours covered by a verified digest that lists no log file: logging
    /// was on and there was nothing to deliver.
    pub quiet_hours: u64,
}

/// `coverage.json`'s `trail.integrity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityCoverage {
    /// The `s3://` sources validated.
    pub sources: Vec<String>,
    /// Where the public keys came from.
    pub public_keys: Vec<String>,
    /// Digests whose signature verified.
    pub signed_digests: u64,
    pub log_files: BTreeMap<String, u64>,
    pub digest_files: BTreeMap<String, u64>,
    pub by_scope: Vec<ScopeIntegrity>,
    /// Every file judged, in key order.
    pub files: Vec<FileOutcome>,
    /// What validation could not judge, and why (not a failure).
    pub limits: Vec<String>,
}

impl IntegrityCoverage {
    /// Files whose outcome is not valid.
    pub fn problems(&self) -> impl Iterator<Item = &FileOutcome> {
        self.files.iter().filter(|f| !f.outcome.is_valid())
    }

    pub fn complete(&self) -> bool {
        self.problems().next().is_none()
    }

    /// Adds another source's result.
    pub fn merge(&mut self, other: IntegrityCoverage) {
        self.sources.extend(other.sources);
        for k in other.public_keys {
            if !self.public_keys.contains(&k) {
                self.public_keys.push(k);
            }
        }
        self.signed_digests += other.signed_digests;
        for (k, n) in other.log_files {
            *self.log_files.entry(k).or_default() += n;
        }
        for (k, n) in other.digest_files {
            *self.digest_files.entry(k).or_default() += n;
        }
        for s in other.by_scope {
            match self
                .by_scope
                .iter_mut()
                .find(|x| x.account_id == s.account_id && x.region == s.region)
            {
                Some(x) => {
                    for (k, n) in s.log_files {
                        *x.log_files.entry(k).or_default() += n;
                    }
                    for (k, n) in s.digest_files {
                        *x.digest_files.entry(k).or_default() += n;
                    }
                    x.quiet_hours += s.quiet_hours;
                }
                None => self.by_scope.push(s),
            }
        }
        self.by_scope
            .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        self.files.extend(other.files);
        self.files.sort_by(|a, b| a.key.cmp(&b.key));
        self.limits.extend(other.limits);
    }

    /// One line of counts per kind of file, for stderr.
    pub fn summary(&self) -> Vec<String> {
        let show = |m: &BTreeMap<String, u64>| {
            let mut parts: Vec<(usize, String)> = m
                .iter()
                .map(|(k, n)| (order(k), format!("{n} {k}")))
                .collect();
            parts.sort();
            if parts.is_empty() {
                "none".to_string()
            } else {
                parts
                    .into_iter()
                    .map(|(_, s)| s)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        vec![
            format!("integrity: log files: {}", show(&self.log_files)),
            format!(
                "integrity: digest files: {} ({} signed digests verified)",
                show(&self.digest_files),
                self.signed_digests
            ),
        ]
    }
}

/// Outcomes in the order a reader wants them: the good first.
fn order(name: &str) -> usize {
    [
        "valid",
        "backfill",
        "altered",
        "missing",
        "not_in_digest",
        "unverified",
        "pending",
        "chain_start",
        "digest_missing",
        "digest_invalid",
    ]
    .iter()
    .position(|o| *o == name)
    .unwrap_or(usize::MAX)
}

/// A log object the scan read (or tried to).
#[derive(Debug, Clone)]
pub struct LogInput {
    /// The object key, without the bucket.
    pub key: String,
    pub account: String,
    pub region: String,
    /// Its day folder.
    pub day: NaiveDate,
    /// Its name's delivery time, if AWS-named.
    pub delivered: Option<DateTime<Utc>>,
    /// SHA-256 of its uncompressed content, or why there is none.
    pub hash: Result<[u8; 32], String>,
}

/// A digest object as fetched.
#[derive(Debug, Clone)]
pub struct FetchedDigest {
    /// SHA-256 (lower-case hex) of the inflated content.
    pub sha256: String,
    pub doc: Result<DigestDoc, String>,
    /// `x-amz-meta-signature`.
    pub signature: Option<String>,
    /// `x-amz-meta-signature-algorithm`.
    pub algorithm: Option<String>,
    /// `x-amz-meta-backfill-generation-timestamp` (backfill digests only).
    pub backfill_generated: Option<String>,
}

#[derive(Debug, Clone)]
pub enum DigestFetch {
    Fetched(Box<FetchedDigest>),
    /// S3 answered NoSuchKey: listed, then gone.
    NotFound,
    /// Any other failure: denied, throttled past retries, unreadable.
    Failed(String),
}

/// A digest object listed under `CloudTrail-Digest/`.
#[derive(Debug, Clone)]
pub struct DigestInput {
    pub key: String,
    pub name: DigestName,
    pub fetch: DigestFetch,
}

/// The public keys validation may use.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys {
    /// `--public-keys FILE`: used for every region (a fingerprint names one key).
    pub file: Option<(String, Vec<PublicKey>)>,
    /// ListPublicKeys per region, or why it failed there.
    pub regions: BTreeMap<String, Result<Vec<PublicKey>, String>>,
}

impl PublicKeys {
    /// The key for a digest of `region`: AWS signs each region's digests
    /// with that region's key, so ListPublicKeys answers are per region.
    pub fn find(&self, region: &str, fingerprint: &str) -> Result<&PublicKey, String> {
        let fp = fingerprint.to_ascii_lowercase();
        if let Some((label, keys)) = &self.file {
            return keys
                .iter()
                .find(|k| k.fingerprint == fp)
                .ok_or_else(|| format!("no public key with fingerprint {fingerprint} in {label}"));
        }
        match self.regions.get(region) {
            Some(Ok(keys)) => keys.iter().find(|k| k.fingerprint == fp).ok_or_else(|| {
                format!(
                    "no public key with fingerprint {fingerprint} among those ListPublicKeys returned in {region}"
                )
            }),
            Some(Err(e)) => Err(format!("ListPublicKeys in {region} failed: {e}")),
            None => Err(format!("no public keys were read for {region}")),
        }
    }
}

/// Which days the scan listed, so only claims inside them are made.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// Log day folders from..to (None: open).
    pub log_first: Option<NaiveDate>,
    pub log_last: Option<NaiveDate>,
    /// Digest day folders from..to (None: open).
    pub digest_first: Option<NaiveDate>,
    pub digest_last: Option<NaiveDate>,
    /// Key prefixes whose listing failed: nothing under them is called missing.
    pub failed_prefixes: Vec<String>,
    /// (account, region) pairs whose log folders were walked.
    pub scopes: BTreeSet<(String, String)>,
}

impl Listed {
    fn log_day(&self, d: NaiveDate) -> bool {
        self.log_first.is_none_or(|f| d >= f) && self.log_last.is_none_or(|l| d <= l)
    }

    fn digest_day(&self, d: NaiveDate) -> bool {
        self.digest_first.is_none_or(|f| d >= f) && self.digest_last.is_none_or(|l| d <= l)
    }

    fn listing_failed(&self, key: &str) -> bool {
        self.failed_prefixes.iter().any(|p| key.starts_with(p))
    }
}

/// What validation decided.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub coverage: IntegrityCoverage,
    /// Object key (without bucket) → outcome, for every log input.
    pub logs: HashMap<String, Outcome>,
    /// Days covered by verified digests on which no listed log file was
    /// delivered, per (account, region): quiet unless a log file was read
    /// that day.
    pub quiet_days: BTreeMap<(String, String), BTreeSet<NaiveDate>>,
}

/// A predecessor a verified digest names and S3 does not have.
struct Absent {
    chain: ChainKey,
    /// End of the last digest before the gap, if any.
    from: Option<DateTime<Utc>>,
    /// Start of the digest that names it.
    to: DateTime<Utc>,
    named_by: String,
}

/// A digest's standing after its own checks.
#[derive(Debug, Clone)]
enum Standing {
    Verified,
    Unverified(String),
    Invalid(String),
    Gone,
}

struct Checked<'a> {
    input: &'a DigestInput,
    doc: Option<&'a DigestDoc>,
    fetched: Option<&'a FetchedDigest>,
    standing: Standing,
    /// Set by the chain check.
    chain_start_after: Option<DateTime<Utc>>,
}

impl Checked<'_> {
    fn verified(&self) -> bool {
        matches!(self.standing, Standing::Verified)
    }

    fn period(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        match self.doc {
            Some(d) => (d.start, d.end),
            None => (
                self.input.name.end - Duration::hours(1),
                self.input.name.end,
            ),
        }
    }
}

fn check_digest<'a>(bucket: &str, d: &'a DigestInput, keys: &PublicKeys) -> Checked<'a> {
    let mut c = Checked {
        input: d,
        doc: None,
        fetched: None,
        standing: Standing::Gone,
        chain_start_after: None,
    };
    let f = match &d.fetch {
        DigestFetch::NotFound => return c,
        DigestFetch::Failed(e) => {
            c.standing = Standing::Unverified(format!("could not be read: {e}"));
            return c;
        }
        DigestFetch::Fetched(f) => f,
    };
    c.fetched = Some(f);
    let doc = match &f.doc {
        Ok(doc) => doc,
        Err(e) => {
            c.standing = Standing::Invalid(format!("invalid format: {e}"));
            return c;
        }
    };
    c.doc = Some(doc);
    c.standing = standing(bucket, d, f, doc, keys);
    c
}

fn standing(
    bucket: &str,
    d: &DigestInput,
    f: &FetchedDigest,
    doc: &DigestDoc,
    keys: &PublicKeys,
) -> Standing {
    // "Verify that the digest file was retrieved from its original location."
    if doc.bucket != bucket || doc.object != d.key {
        return Standing::Invalid(format!(
            "moved from its original location: the file says s3://{}/{}",
            doc.bucket, doc.object
        ));
    }
    let (Some(signature), Some(algorithm)) = (&f.signature, &f.algorithm) else {
        return Standing::Invalid(
            "no x-amz-meta-signature and x-amz-meta-signature-algorithm metadata: unsigned".into(),
        );
    };
    if algorithm != SIGNATURE_ALGORITHM {
        return Standing::Invalid(format!(
            "signature algorithm `{algorithm}` is not {SIGNATURE_ALGORITHM}"
        ));
    }
    if d.name.backfill && f.backfill_generated.is_none() {
        return Standing::Invalid(
            "a backfill digest without x-amz-meta-backfill-generation-timestamp metadata".into(),
        );
    }
    let key = match keys.find(&d.name.region, &doc.fingerprint) {
        Ok(k) => k,
        Err(why) => return Standing::Unverified(why),
    };
    let message = digest::string_to_sign(doc, &f.sha256);
    match digest::verify(&key.key, message.as_bytes(), signature) {
        Ok(()) => Standing::Verified,
        Err(SignatureError::NotHex) => {
            Standing::Invalid("x-amz-meta-signature is not hexadecimal".into())
        }
        Err(SignatureError::Mismatch) => Standing::Invalid(format!(
            "signature does not verify with public key {}",
            key.fingerprint
        )),
    }
}

/// The log files a digest lists, with their SHA-256, when its signature
/// verifies: what the reader may trust a file for while the scan goes on.
/// The full validation ([`validate`]) still judges every file at the end.
pub fn verified_listing(
    bucket: &str,
    d: &DigestInput,
    keys: &PublicKeys,
) -> Vec<(String, [u8; 32])> {
    let c = check_digest(bucket, d, keys);
    let (Standing::Verified, Some(doc)) = (&c.standing, c.doc) else {
        return Vec::new();
    };
    doc.logs
        .iter()
        .filter(|l| l.bucket == bucket && l.hash_algorithm == HASH_ALGORITHM)
        .filter_map(|l| {
            let bytes: [u8; 32] = hex::decode(&l.hash).ok()?.try_into().ok()?;
            Some((l.key.clone(), bytes))
        })
        .collect()
}

/// Validates what the scan fetched from `bucket`.
pub fn validate(
    bucket: &str,
    logs: &[LogInput],
    digests: &[DigestInput],
    keys: &PublicKeys,
    listed: &Listed,
    now: DateTime<Utc>,
) -> Validation {
    let s3 = |key: &str| format!("s3://{bucket}/{key}");
    let mut checked: Vec<Checked> = digests
        .iter()
        .map(|d| check_digest(bucket, d, keys))
        .collect();
    checked.sort_by(|a, b| {
        (a.input.name.chain(), a.input.name.end, &a.input.key).cmp(&(
            b.input.name.chain(),
            b.input.name.end,
            &b.input.key,
        ))
    });
    let index: HashMap<&str, usize> = checked
        .iter()
        .enumerate()
        .map(|(i, c)| (c.input.key.as_str(), i))
        .collect();
    let mut files: Vec<FileOutcome> = Vec::new();
    let mut limits: BTreeSet<String> = BTreeSet::new();
    // Demotions of predecessors found by the chain check: index → reason.
    let mut demoted: BTreeMap<usize, String> = BTreeMap::new();
    let mut absent: BTreeMap<String, Absent> = BTreeMap::new();

    // The chain, digest by digest, with the one before it in the listing.
    for i in 0..checked.len() {
        if !checked[i].verified() {
            continue;
        }
        let Some(doc) = checked[i].doc else { continue };
        let chain = checked[i].input.name.chain();
        let earlier = (0..i)
            .rev()
            .take_while(|&j| checked[j].input.name.chain() == chain)
            .find(|&j| !matches!(checked[j].standing, Standing::Gone));
        let earlier_end = earlier.map(|j| checked[j].period().1);
        if doc.starts_chain() {
            // Backfill digests come only when needed: a new backfill chain
            // says nothing about logging having stopped.
            if !chain.backfill {
                if let Some(end) = earlier_end {
                    checked[i].chain_start_after = Some(end);
                }
            }
            continue;
        }
        let (Some(prev_bucket), Some(prev_key)) = (&doc.previous_bucket, &doc.previous_object)
        else {
            continue;
        };
        if prev_bucket != bucket {
            limits.insert(format!(
                "digests chain to s3://{prev_bucket}/, another bucket (the trail changed buckets): links into it are not checked"
            ));
            continue;
        }
        match index.get(prev_key.as_str()) {
            Some(&p) => {
                if let Some(why) = link_problem(&checked[p], doc, &checked[i].input.key) {
                    demoted.entry(p).or_insert(why);
                }
            }
            None => {
                let day = digest::folder_day(prev_key)
                    .or_else(|| digest::parse_digest_name(prev_key).map(|n| n.end.date_naive()));
                // A predecessor before the listed days is outside the scan.
                if day.is_some_and(|d| listed.digest_day(d)) && !listed.listing_failed(prev_key) {
                    absent.entry(prev_key.clone()).or_insert(Absent {
                        chain,
                        from: earlier_end,
                        to: doc.start,
                        named_by: checked[i].input.key.clone(),
                    });
                }
            }
        }
    }

    // Digest outcomes.
    let mut verified_docs: Vec<(&Checked, Outcome)> = Vec::new();
    for (i, c) in checked.iter().enumerate() {
        let name = &c.input.name;
        let (from, to) = c.period();
        let (mut outcome, mut reason) = match &c.standing {
            Standing::Verified if name.backfill => (Outcome::Backfill, None),
            Standing::Verified => match c.chain_start_after {
                Some(after) => (
                    Outcome::ChainStart,
                    Some(format!(
                        "a new digest chain: logging or log file validation stopped between {} (the last digest before) and {}",
                        rfc3339(after),
                        rfc3339(from)
                    )),
                ),
                None => (Outcome::Valid, None),
            },
            Standing::Unverified(why) => (Outcome::Unverified, Some(why.clone())),
            Standing::Invalid(why) => (Outcome::DigestInvalid, Some(why.clone())),
            Standing::Gone => (
                Outcome::DigestMissing,
                Some("listed, then gone when fetched (NoSuchKey)".into()),
            ),
        };
        if let Some(why) = demoted.get(&i) {
            outcome = Outcome::DigestInvalid;
            reason = Some(match reason {
                Some(r) => format!("{why}; {r}"),
                None => why.clone(),
            });
        }
        let (gap_from, gap_to) = match (outcome, c.chain_start_after) {
            (Outcome::ChainStart, Some(after)) => (after, from),
            _ => (from, to),
        };
        files.push(FileOutcome {
            key: s3(&c.input.key),
            kind: FileKind::Digest,
            outcome,
            account_id: name.account.clone(),
            region: name.region.clone(),
            from: Some(gap_from),
            to: Some(gap_to),
            reason,
        });
        if c.doc.is_some()
            && matches!(
                outcome,
                Outcome::Valid | Outcome::Backfill | Outcome::ChainStart
            )
        {
            verified_docs.push((c, outcome));
        }
    }
    for (key, a) in &absent {
        files.push(FileOutcome {
            key: s3(key),
            kind: FileKind::Digest,
            outcome: Outcome::DigestMissing,
            account_id: a.chain.account.clone(),
            region: a.chain.region.clone(),
            from: a.from,
            to: Some(a.to),
            reason: Some(format!(
                "not in S3; {} names it as the digest before it",
                s3(&a.named_by)
            )),
        });
    }

    // Listed log files: key → what each digest says.
    struct Listing<'a> {
        digest: &'a str,
        hash: &'a str,
        algorithm: &'a str,
        trusted: bool,
        standing: &'a Standing,
        account: &'a str,
        region: &'a str,
    }
    let mut listings: HashMap<&str, Vec<Listing>> = HashMap::new();
    let mut other_bucket = 0usize;
    for c in &checked {
        let Some(doc) = c.doc else { continue };
        let trusted = c.verified() && !demoted.contains_key(&index[c.input.key.as_str()]);
        for l in &doc.logs {
            if l.bucket != bucket {
                other_bucket += 1;
                continue;
            }
            listings.entry(l.key.as_str()).or_default().push(Listing {
                digest: &c.input.key,
                hash: &l.hash,
                algorithm: &l.hash_algorithm,
                trusted,
                standing: &c.standing,
                account: &c.input.name.account,
                region: &c.input.name.region,
            });
        }
    }
    if other_bucket > 0 {
        limits.insert(format!(
            "{other_bucket} log file(s) listed by digests are in another bucket: not checked"
        ));
    }

    // Newest digest end per (account, region), for files whose digest is
    // not out yet.
    let mut newest: HashMap<(&str, &str), DateTime<Utc>> = HashMap::new();
    for c in &checked {
        if matches!(c.standing, Standing::Gone) {
            continue;
        }
        let e = newest
            .entry((c.input.name.account.as_str(), c.input.name.region.as_str()))
            .or_insert(c.period().1);
        *e = (*e).max(c.period().1);
    }
    // Breaks, to say why a log file is not listed.
    let breaks: Vec<&FileOutcome> = files
        .iter()
        .filter(|f| matches!(f.outcome, Outcome::ChainStart | Outcome::DigestMissing))
        .collect();

    let mut log_outcomes: HashMap<String, Outcome> = HashMap::new();
    let mut log_files: Vec<FileOutcome> = Vec::new();
    for log in logs {
        let hour = log.delivered;
        let (outcome, reason) = judge_log(bucket, log, listings.get(log.key.as_str()), |l| {
            (l.digest, l.hash, l.algorithm, l.trusted, l.standing)
        });
        let (outcome, reason) = match outcome {
            Outcome::NotInDigest => {
                let newest_end = newest
                    .get(&(log.account.as_str(), log.region.as_str()))
                    .copied();
                match (newest_end, log.delivered) {
                    (Some(end), Some(at)) if at >= end && (now - end).num_seconds() < DIGEST_DUE => (
                        Outcome::Pending,
                        Some(format!(
                            "delivered after the newest digest ({}); the digest that lists it is due within two hours of that",
                            rfc3339(end)
                        )),
                    ),
                    (None, _) => (
                        Outcome::NotInDigest,
                        Some("no digest file for this account and region in the scanned days: log file validation is off for the trail, or its digests are gone".into()),
                    ),
                    (Some(_), at) => {
                        let near = at.and_then(|at| {
                            breaks.iter().find(|b| {
                                b.account_id == log.account
                                    && b.region == log.region
                                    && b.from.is_none_or(|f| at >= f)
                                    && b.to.is_none_or(|t| at <= t)
                            })
                        });
                        (
                            Outcome::NotInDigest,
                            Some(match near {
                                Some(b) => format!(
                                    "no digest lists it; it was delivered during the break at {}",
                                    b.key
                                ),
                                None => "no digest lists it: added after delivery, or delivered while log file validation was off".into(),
                            }),
                        )
                    }
                }
            }
            other => (other, reason),
        };
        log_outcomes.insert(log.key.clone(), outcome);
        log_files.push(FileOutcome {
            key: s3(&log.key),
            kind: FileKind::Log,
            outcome,
            account_id: log.account.clone(),
            region: log.region.clone(),
            from: hour,
            to: hour.map(|h| h + Duration::hours(1)),
            reason,
        });
    }

    // Listed, not read: missing, when the scan listed where it would be.
    let read: HashSet<&str> = logs.iter().map(|l| l.key.as_str()).collect();
    let mut missing: BTreeMap<&str, &Listing> = BTreeMap::new();
    for (key, ls) in &listings {
        if read.contains(key) {
            continue;
        }
        let Some(best) = ls.iter().find(|l| l.trusted).or_else(|| {
            ls.iter()
                .find(|l| matches!(l.standing, Standing::Unverified(_)))
        }) else {
            continue;
        };
        let in_scope = listed.scopes.is_empty()
            || listed
                .scopes
                .contains(&(best.account.to_string(), best.region.to_string()));
        let day_listed = digest::folder_day(key).is_some_and(|d| listed.log_day(d));
        if in_scope && day_listed && !listed.listing_failed(key) {
            missing.insert(key, best);
        }
    }
    for (key, l) in missing {
        let delivered = super::reader::aws_log_name(key).map(|n| n.delivered);
        log_files.push(FileOutcome {
            key: s3(key),
            kind: FileKind::Log,
            outcome: Outcome::Missing,
            account_id: l.account.to_string(),
            region: l.region.to_string(),
            from: delivered,
            to: delivered.map(|h| h + Duration::hours(1)),
            reason: Some(format!(
                "listed in {}{}, not in S3",
                s3(l.digest),
                if l.trusted { "" } else { " (unverified)" }
            )),
        });
    }
    files.extend(log_files);
    files.sort_by(|a, b| a.key.cmp(&b.key));

    // Quiet days: covered by verified digests, no listed log delivered.
    let mut digest_days: BTreeMap<(String, String), BTreeSet<NaiveDate>> = BTreeMap::new();
    let mut listed_days: HashSet<(&str, &str, NaiveDate)> = HashSet::new();
    let mut quiet_hours: HashMap<(String, String), u64> = HashMap::new();
    for (c, _) in &verified_docs {
        let Some(doc) = c.doc else { continue };
        let scope = (c.input.name.account.clone(), c.input.name.region.clone());
        let mut d = doc.start.date_naive();
        // A period ending at midnight does not cover the day that begins.
        let last = (doc.end - Duration::seconds(1)).date_naive();
        while d <= last {
            digest_days.entry(scope.clone()).or_default().insert(d);
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        for l in &doc.logs {
            if let Some(day) = digest::folder_day(&l.key) {
                listed_days.insert((&c.input.name.account, &c.input.name.region, day));
            }
        }
        if doc.logs.is_empty() && !c.input.name.backfill {
            *quiet_hours.entry(scope).or_default() += 1;
        }
    }
    let quiet_days = digest_days
        .into_iter()
        .map(|((a, r), days)| {
            let days = days
                .into_iter()
                .filter(|d| !listed_days.contains(&(a.as_str(), r.as_str(), *d)))
                .collect();
            ((a, r), days)
        })
        .collect();

    // Counts.
    let mut coverage = IntegrityCoverage {
        signed_digests: verified_docs.len() as u64,
        limits: limits.into_iter().collect(),
        ..IntegrityCoverage::default()
    };
    let mut scopes: BTreeMap<(String, String), ScopeIntegrity> = BTreeMap::new();
    for f in &files {
        let s = scopes
            .entry((f.account_id.clone(), f.region.clone()))
            .or_insert_with(|| ScopeIntegrity {
                account_id: f.account_id.clone(),
                region: f.region.clone(),
                ..ScopeIntegrity::default()
            });
        let name = f.outcome.as_str().to_string();
        match f.kind {
            FileKind::Log => {
                *s.log_files.entry(name.clone()).or_default() += 1;
                *coverage.log_files.entry(name).or_default() += 1;
            }
            FileKind::Digest => {
                *s.digest_files.entry(name.clone()).or_default() += 1;
                *coverage.digest_files.entry(name).or_default() += 1;
            }
        }
    }
    for ((a, r), n) in quiet_hours {
        scopes
            .entry((a.clone(), r.clone()))
            .or_insert_with(|| ScopeIntegrity {
                account_id: a,
                region: r,
                ..ScopeIntegrity::default()
            })
            .quiet_hours = n;
    }
    coverage.by_scope = scopes.into_values().collect();
    coverage.files = files;
    Validation {
        coverage,
        logs: log_outcomes,
        quiet_days,
    }
}

/// Does the digest `successor` (at `successor_key`) chain to `prev` as it
/// says? Its signed content records the predecessor's signature and hash.
fn link_problem(prev: &Checked, successor: &DigestDoc, successor_key: &str) -> Option<String> {
    let f = prev.fetched?;
    let mut wrong = Vec::new();
    if let (Some(want), Some(have)) = (&successor.previous_signature, &f.signature) {
        if !want.trim().eq_ignore_ascii_case(have.trim()) {
            wrong.push("signature");
        }
    }
    let algorithm_ok = successor
        .previous_hash_algorithm
        .as_deref()
        .is_none_or(|a| a == HASH_ALGORITHM);
    if let (Some(want), true) = (&successor.previous_hash, algorithm_ok) {
        if *want != f.sha256 {
            wrong.push("hash");
        }
    }
    if wrong.is_empty() {
        None
    } else {
        Some(format!(
            "its {} differs from what the next digest ({successor_key}) recorded: not the digest CloudTrail chained to",
            wrong.join(" and ")
        ))
    }
}

/// A read log file against the digests that list it.
fn judge_log<L>(
    bucket: &str,
    log: &LogInput,
    listings: Option<&Vec<L>>,
    view: impl Fn(&L) -> (&str, &str, &str, bool, &Standing),
) -> (Outcome, Option<String>) {
    let Some(ls) = listings.filter(|l| !l.is_empty()) else {
        return (Outcome::NotInDigest, None);
    };
    let hash = match &log.hash {
        Ok(h) => hex::encode(h),
        Err(why) => {
            let (digest, ..) = view(&ls[0]);
            return (
                Outcome::Unverified,
                Some(format!(
                    "listed in s3://{bucket}/{digest}, but not read: {why}"
                )),
            );
        }
    };
    let trusted: Vec<&L> = ls.iter().filter(|l| view(l).3).collect();
    if !trusted.is_empty() {
        for l in &trusted {
            let (_, want, algorithm, ..) = view(l);
            if algorithm == HASH_ALGORITHM && want == hash {
                return (Outcome::Valid, None);
            }
        }
        let (digest, want, algorithm, ..) = view(trusted[0]);
        if algorithm != HASH_ALGORITHM {
            return (
                Outcome::Unverified,
                Some(format!(
                    "s3://{bucket}/{digest} lists it with hash algorithm `{algorithm}`, not {HASH_ALGORITHM}"
                )),
            );
        }
        return (
            Outcome::Altered,
            Some(format!(
                "the SHA-256 of its uncompressed content is {hash}; s3://{bucket}/{digest} lists {want}"
            )),
        );
    }
    let (digest, want, _, _, standing) = view(&ls[0]);
    let why = match standing {
        Standing::Unverified(w) => format!("unverified: {w}"),
        Standing::Invalid(w) => format!("invalid: {w}"),
        Standing::Verified => "not the digest its successor chained to".into(),
        Standing::Gone => "gone".into(),
    };
    let matches = if want == hash {
        "matches"
    } else {
        "differs from"
    };
    (
        Outcome::Unverified,
        Some(format!(
            "listed only in s3://{bucket}/{digest}, whose signature cannot be trusted ({why}); its hash {matches} the listed one"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::digest::tests::{sign, test_key};
    use crate::trail::digest::{parse_digest, parse_digest_name, public_key_from_der};
    use chrono::TimeZone;
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::RsaPublicKey;
    use serde_json::json;
    use sha2::{Digest as _, Sha256};

    const BUCKET: &str = "trail-bucket";
    const A: &str = "111122223333";
    const R: &str = "us-east-1";
    const FP: &str = "0123456789abcdef0123456789abcdef";

    fn at(day: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, day, h, 0, 0).unwrap()
    }

    fn keys() -> PublicKeys {
        let der = RsaPublicKey::from(test_key()).to_pkcs1_der().unwrap();
        PublicKeys {
            file: None,
            regions: [(
                R.to_string(),
                Ok(vec![
                    public_key_from_der(FP, der.as_bytes(), None, None).unwrap()
                ]),
            )]
            .into_iter()
            .collect(),
        }
    }

    fn log_key(t: DateTime<Utc>) -> String {
        format!(
            "AWSLogs/{A}/CloudTrail/{R}/{}/{A}_CloudTrail_{R}_{}_abcd.json.gz",
            t.format("%Y/%m/%d"),
            t.format("%Y%m%dT%H%MZ")
        )
    }

    fn digest_key(end: DateTime<Utc>) -> String {
        format!(
            "AWSLogs/{A}/CloudTrail-Digest/{R}/{}/{A}_CloudTrail-Digest_{R}_trail_{R}_{}.json.gz",
            end.format("%Y/%m/%d"),
            end.format("%Y%m%dT%H%M%SZ")
        )
    }

    /// A content's SHA-256 for a log file.
    fn content(n: u8) -> [u8; 32] {
        Sha256::digest([n]).into()
    }

    struct Chain {
        digests: Vec<DigestInput>,
        last: Option<(String, String, String)>,
    }

    impl Chain {
        fn new() -> Self {
            Chain {
                digests: Vec::new(),
                last: None,
            }
        }

        /// An hourly digest ending at `end`, listing `logs` (key, content).
        fn push(&mut self, end: DateTime<Utc>, logs: &[(String, [u8; 32])], restart: bool) {
            let key = digest_key(end);
            let prev = if restart { None } else { self.last.clone() };
            let doc = json!({
                "awsAccountId": A,
                "digestStartTime": (end - Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "digestEndTime": end.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "digestS3Bucket": BUCKET,
                "digestS3Object": key,
                "digestPublicKeyFingerprint": FP,
                "digestSignatureAlgorithm": "SHA256withRSA",
                "previousDigestS3Bucket": prev.as_ref().map(|_| BUCKET),
                "previousDigestS3Object": prev.as_ref().map(|p| p.0.clone()),
                "previousDigestHashValue": prev.as_ref().map(|p| p.1.clone()),
                "previousDigestHashAlgorithm": prev.as_ref().map(|_| "SHA-256"),
                "previousDigestSignature": prev.as_ref().map(|p| p.2.clone()),
                "logFiles": logs.iter().map(|(k, h)| json!({
                    "s3Bucket": BUCKET, "s3Object": k, "hashValue": hex::encode(h), "hashAlgorithm": "SHA-256"
                })).collect::<Vec<_>>(),
            });
            let text = serde_json::to_vec(&doc).unwrap();
            let sha = hex::encode(Sha256::digest(&text));
            let parsed = parse_digest(&text).unwrap();
            let sig = sign(test_key(), &digest::string_to_sign(&parsed, &sha));
            self.last = Some((key.clone(), sha.clone(), sig.clone()));
            self.digests.push(DigestInput {
                name: parse_digest_name(&key).unwrap(),
                key,
                fetch: DigestFetch::Fetched(Box::new(FetchedDigest {
                    sha256: sha,
                    doc: Ok(parsed),
                    signature: Some(sig),
                    algorithm: Some("SHA256withRSA".into()),
                    backfill_generated: None,
                })),
            });
        }
    }

    fn log(t: DateTime<Utc>, n: u8) -> LogInput {
        LogInput {
            key: log_key(t),
            account: A.into(),
            region: R.into(),
            day: t.date_naive(),
            delivered: Some(t),
            hash: Ok(content(n)),
        }
    }

    fn listed() -> Listed {
        Listed {
            log_first: Some(at(1, 0).date_naive()),
            log_last: Some(at(3, 0).date_naive()),
            digest_first: Some(at(1, 0).date_naive()),
            digest_last: Some(at(4, 0).date_naive()),
            failed_prefixes: Vec::new(),
            scopes: [(A.to_string(), R.to_string())].into_iter().collect(),
        }
    }

    fn outcome(v: &Validation, key: &str) -> Outcome {
        v.coverage
            .files
            .iter()
            .find(|f| f.key.ends_with(key))
            .unwrap_or_else(|| panic!("{key} not judged"))
            .outcome
    }

    /// Day 1 and 3 have logs every hour; day 2 is quiet (digests, no logs).
    fn archive() -> (Chain, Vec<LogInput>) {
        let mut chain = Chain::new();
        let mut logs = Vec::new();
        for day in 1..=3 {
            for h in 0..24 {
                let end = at(day, h) + Duration::hours(1);
                let delivered = at(day, h) + Duration::minutes(5);
                if day == 2 {
                    chain.push(end, &[], false);
                } else {
                    let l = log(delivered, h as u8);
                    chain.push(end, &[(l.key.clone(), content(h as u8))], false);
                    logs.push(l);
                }
            }
        }
        (chain, logs)
    }

    #[test]
    fn a_whole_chain_is_valid_and_a_quiet_day_is_covered() {
        let (chain, logs) = archive();
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(10, 0));
        assert!(
            v.coverage.complete(),
            "{:?}",
            v.coverage.problems().collect::<Vec<_>>()
        );
        assert_eq!(v.coverage.log_files["valid"], 48);
        assert_eq!(v.coverage.digest_files["valid"], 72);
        assert_eq!(v.coverage.signed_digests, 72);
        assert_eq!(v.coverage.by_scope[0].quiet_hours, 24);
        let quiet = &v.quiet_days[&(A.to_string(), R.to_string())];
        assert!(quiet.contains(&at(2, 0).date_naive()));
        assert!(!quiet.contains(&at(1, 0).date_naive()));
        assert!(v.logs.values().all(|o| *o == Outcome::Valid));
    }

    #[test]
    fn altered_deleted_and_unlisted_logs_are_named() {
        let (chain, mut logs) = archive();
        // Altered: read with another hash.
        logs[3].hash = Ok(content(200));
        // Deleted: listed, not read.
        let gone = logs.remove(5).key;
        // Added later: read, listed nowhere.
        let extra = log(at(3, 10) + Duration::minutes(30), 99);
        logs.push(extra.clone());
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(10, 0));
        assert_eq!(outcome(&v, &logs[3].key), Outcome::Altered);
        assert_eq!(outcome(&v, &gone), Outcome::Missing);
        assert_eq!(outcome(&v, &extra.key), Outcome::NotInDigest);
        assert_eq!(v.logs[&extra.key].event_integrity(), "unverifiable");
        assert_eq!(v.logs[&logs[3].key].event_integrity(), "altered");
        assert!(!v.coverage.complete());
        let altered = v
            .coverage
            .files
            .iter()
            .find(|f| f.outcome == Outcome::Altered)
            .unwrap();
        assert!(
            altered.reason.as_ref().unwrap().contains("lists"),
            "{altered:?}"
        );
        assert_eq!(altered.from, logs[3].delivered);
    }

    #[test]
    fn a_deleted_digest_breaks_the_chain_and_unlists_its_logs() {
        let (mut chain, logs) = archive();
        let gone = chain.digests.remove(30);
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(10, 0));
        assert_eq!(outcome(&v, &gone.key), Outcome::DigestMissing);
        let f = v
            .coverage
            .files
            .iter()
            .find(|f| f.key.ends_with(&gone.key))
            .unwrap();
        assert!(f.reason.as_ref().unwrap().contains("names it"), "{f:?}");
        // Day 2 hour 6 had no logs; delete a day-1 digest: its log is unlisted.
        let (mut chain, logs) = archive();
        let gone = chain.digests.remove(7);
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(10, 0));
        assert_eq!(outcome(&v, &gone.key), Outcome::DigestMissing);
        assert_eq!(outcome(&v, &logs[7].key), Outcome::NotInDigest);
        let reason = v
            .coverage
            .files
            .iter()
            .find(|f| f.key.ends_with(&logs[7].key))
            .unwrap()
            .reason
            .clone()
            .unwrap();
        assert!(reason.contains("break"), "{reason}");
        // The first digest's predecessor is before the listed days: no claim.
        assert_eq!(
            v.coverage
                .files
                .iter()
                .filter(|f| f.outcome == Outcome::DigestMissing)
                .count(),
            1
        );
    }

    #[test]
    fn a_restart_is_a_chain_start_with_its_times_and_the_lost_hours_are_not_quiet() {
        let mut chain = Chain::new();
        let mut logs = Vec::new();
        for h in 0..6 {
            let l = log(at(1, h) + Duration::minutes(5), h as u8);
            chain.push(
                at(1, h) + Duration::hours(1),
                &[(l.key.clone(), content(h as u8))],
                false,
            );
            logs.push(l);
        }
        // Logging stopped from 06:00 on day 1 to 12:00 on day 3.
        for h in 12..24 {
            let l = log(at(3, h) + Duration::minutes(5), h as u8);
            chain.push(
                at(3, h) + Duration::hours(1),
                &[(l.key.clone(), content(h as u8))],
                h == 12,
            );
            logs.push(l);
        }
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(10, 0));
        let start = v
            .coverage
            .files
            .iter()
            .find(|f| f.outcome == Outcome::ChainStart)
            .unwrap();
        assert_eq!(start.from, Some(at(1, 6)));
        assert_eq!(start.to, Some(at(3, 12)));
        assert!(start.reason.as_ref().unwrap().contains("stopped between"));
        let quiet = v
            .quiet_days
            .get(&(A.to_string(), R.to_string()))
            .cloned()
            .unwrap_or_default();
        assert!(!quiet.contains(&at(2, 0).date_naive()));
        // The first digest of the range starts nothing that stopped.
        let mut chain = Chain::new();
        chain.push(at(1, 1), &[], true);
        chain.push(at(1, 2), &[], false);
        let v = validate(BUCKET, &[], &chain.digests, &keys(), &listed(), at(10, 0));
        assert!(v.coverage.complete(), "{:?}", v.coverage.files);
    }

    #[test]
    fn a_wrong_signature_or_a_foreign_key_is_never_valid() {
        let (mut chain, logs) = archive();
        if let DigestFetch::Fetched(f) = &mut chain.digests[10].fetch {
            f.signature = Some(sign(test_key(), "something else"));
        }
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(10, 0));
        let bad = &chain.digests[10].key;
        assert_eq!(outcome(&v, bad), Outcome::DigestInvalid);
        // Its log is only listed by a digest that cannot be trusted.
        assert_eq!(outcome(&v, &logs[10].key), Outcome::Unverified);
        // The next digest still verifies and chains (it recorded the real
        // signature, which differs from the forged one now in the metadata).
        assert_eq!(outcome(&v, &chain.digests[11].key), Outcome::Valid);

        // No key with that fingerprint: unverified, never valid.
        let (chain, logs) = archive();
        let none = PublicKeys {
            file: None,
            regions: [(R.to_string(), Ok(Vec::new()))].into_iter().collect(),
        };
        let v = validate(BUCKET, &logs, &chain.digests, &none, &listed(), at(10, 0));
        assert_eq!(v.coverage.digest_files["unverified"], 72);
        assert_eq!(v.coverage.log_files["unverified"], 48);
        assert!(!v.coverage.log_files.contains_key("valid"));
        assert!(
            v.quiet_days.is_empty(),
            "unverified digests prove no quiet day"
        );
        let denied = PublicKeys {
            file: None,
            regions: [(R.to_string(), Err("AccessDeniedException: no".into()))]
                .into_iter()
                .collect(),
        };
        let v = validate(BUCKET, &logs, &chain.digests, &denied, &listed(), at(10, 0));
        let f = v
            .coverage
            .files
            .iter()
            .find(|f| f.kind == FileKind::Digest)
            .unwrap();
        assert!(f
            .reason
            .as_ref()
            .unwrap()
            .contains("ListPublicKeys in us-east-1 failed"));
    }

    #[test]
    fn a_replaced_predecessor_is_caught_by_the_chain() {
        let (mut chain, logs) = archive();
        // Re-sign digest 20 with changed content: its own signature verifies,
        // but digest 21 recorded the old hash and signature.
        let DigestFetch::Fetched(f) = &mut chain.digests[20].fetch else {
            unreachable!()
        };
        let mut doc = f.doc.clone().unwrap();
        doc.logs.clear();
        f.sha256 = hex::encode(Sha256::digest(b"other content"));
        f.signature = Some(sign(test_key(), &digest::string_to_sign(&doc, &f.sha256)));
        f.doc = Ok(doc);
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(10, 0));
        assert_eq!(outcome(&v, &chain.digests[20].key), Outcome::DigestInvalid);
        assert_eq!(outcome(&v, &logs[20].key), Outcome::NotInDigest);
    }

    #[test]
    fn moved_and_unsigned_digests_are_invalid_and_new_logs_are_pending() {
        let (mut chain, logs) = archive();
        let mut moved = chain.digests[0].clone();
        moved.key = moved.key.replace("trail_", "copy_");
        moved.name = parse_digest_name(&moved.key).unwrap();
        chain.digests.push(moved.clone());
        if let DigestFetch::Fetched(f) = &mut chain.digests[1].fetch {
            f.signature = None;
        }
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(10, 0));
        assert_eq!(outcome(&v, &moved.key), Outcome::DigestInvalid);
        assert_eq!(outcome(&v, &chain.digests[1].key), Outcome::DigestInvalid);

        // A log delivered after the newest digest, less than 2 h ago.
        let (chain, mut logs) = archive();
        let fresh = log(at(4, 0) + Duration::minutes(10), 7);
        logs.push(fresh.clone());
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(4, 1));
        assert_eq!(outcome(&v, &fresh.key), Outcome::Pending);
        // Much later, it is simply not in any digest.
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(9, 0));
        assert_eq!(outcome(&v, &fresh.key), Outcome::NotInDigest);
    }

    #[test]
    fn a_backfill_digest_lists_late_files() {
        let (mut chain, mut logs) = archive();
        let late = log(at(1, 3) + Duration::minutes(20), 77);
        logs.push(late.clone());
        let mut backfill = Chain::new();
        backfill.push(at(1, 4), &[(late.key.clone(), content(77))], true);
        let mut b = backfill.digests.remove(0);
        b.key = b.key.replace(".json.gz", "_backfill.json.gz");
        b.name = parse_digest_name(&b.key).unwrap();
        // Re-sign for the new key.
        if let DigestFetch::Fetched(f) = &mut b.fetch {
            let mut doc = f.doc.clone().unwrap();
            doc.object = b.key.clone();
            f.signature = Some(sign(test_key(), &digest::string_to_sign(&doc, &f.sha256)));
            f.doc = Ok(doc);
            f.backfill_generated = Some("2025-03-05T00:00:00Z".into());
        }
        chain.digests.push(b.clone());
        let v = validate(BUCKET, &logs, &chain.digests, &keys(), &listed(), at(10, 0));
        assert_eq!(outcome(&v, &b.key), Outcome::Backfill);
        assert_eq!(outcome(&v, &late.key), Outcome::Valid);
        assert!(v.coverage.complete());
    }
}
