-- id: trail_integrity
-- title: CloudTrail log files were altered, deleted, added or not verifiable, or the digest chain broke
-- severity: high
-- controls:
--   - CIS AWS Foundations 3.2 (v3.0-v5.0; 2.2 in v1.x)
--   - AWS Security Hub CloudTrail.4
--   - NIST SP 800-53 AU-9
--   - NIST SP 800-53 AU-10
--   - PCI DSS v4.0 10.3.4
-- compliance: failed
-- remediation: Run aws cloudtrail validate-logs --trail-arn TRAIL_ARN --start-time T for the hours named, find who
--   wrote or deleted the files (S3 server access logs, CloudTrail data events on the bucket), restore them from a
--   copy if one exists, and protect the bucket (S3 Object Lock, a bucket policy that denies s3:DeleteObject and
--   s3:PutObject to all but CloudTrail). Where the chain restarted, find the StopLogging or UpdateTrail call.
-- aws: With log file integrity validation on, CloudTrail delivers every hour a digest file listing the SHA-256 of
--   each log file delivered in the hour, signed with SHA256withRSA in its x-amz-meta-signature metadata and chained
--   to the previous digest by its signature, so a log file changed, deleted or added after delivery, a digest
--   deleted, or logging stopped shows (AWS CloudTrail User Guide, Validating CloudTrail log file integrity:
--   https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-intro.html, and
--   Custom implementations of CloudTrail log file integrity validation:
--   https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-custom-validation.html).
-- description: kmsrot validated the trail's S3 archive against CloudTrail's signed digest files (--validate), as
--   AWS documents it: each digest's SHA256withRSA signature with the public key its fingerprint names, the chain of
--   previous-digest signatures and hashes, and each log file's SHA-256 over its uncompressed content. One finding per
--   account, region and kind of problem: log files altered after delivery (hash differs from the signed digest),
--   missing (listed in a digest, not in S3), not in any digest (added after the fact, or delivered while validation
--   was off), or unverified (no public key with the digest's fingerprint, or the file could not be read); digest
--   files missing from the chain or invalid (bad signature, bad format, moved); and restarts of the chain (logging
--   or validation stopped between two times). Events from such files are kept and marked in the events frame's
--   log_integrity column; rotation evidence from those hours cannot be trusted. Files whose digest is not out yet
--   (delivered in the last two hours) are pending, not a finding.
SELECT
  account_id,
  region,
  CAST(NULL AS VARCHAR) AS key_arn,
  CONCAT(file_kind, ' ', outcome) AS subject,
  CONCAT('In region ', region, ' of account ', account_id, ', ',
         CASE outcome
           WHEN 'altered' THEN CONCAT(CAST(files AS VARCHAR),
             ' CloudTrail log file(s) were changed after delivery: the SHA-256 of their content differs from the signed digest')
           WHEN 'missing' THEN CONCAT(CAST(files AS VARCHAR),
             ' CloudTrail log file(s) listed in signed digests are not in the archive: deleted after delivery')
           WHEN 'not_in_digest' THEN CONCAT(CAST(files AS VARCHAR),
             ' log file(s) in the archive are listed in no digest: added after the fact, or delivered while log file validation was off')
           WHEN 'unverified' THEN CONCAT(CAST(files AS VARCHAR), ' ', file_kind,
             ' file(s) could not be verified: no public key with the digest''s fingerprint, or the file could not be read')
           WHEN 'digest_missing' THEN CONCAT(CAST(files AS VARCHAR),
             ' digest file(s) are missing from the chain: the log files of those hours are not covered by a signature')
           WHEN 'digest_invalid' THEN CONCAT(CAST(files AS VARCHAR),
             ' digest file(s) do not verify (signature, format, or not where CloudTrail put them): the log files they list cannot be trusted')
           WHEN 'chain_start' THEN CONCAT('the digest chain restarted ', CAST(files AS VARCHAR),
             ' time(s): logging or log file validation stopped')
           ELSE CONCAT(CAST(files AS VARCHAR), ' ', file_kind, ' file(s) are ', outcome)
         END,
         ' (', hours, '): rotation evidence from those hours cannot be trusted.') AS detail,
  CONCAT(file_kind, ' files ', outcome, ': ', examples,
         '; coverage.json trail.integrity names every file with its reason') AS evidence
FROM trail_integrity_problems
WHERE outcome IN ('altered', 'missing', 'not_in_digest', 'unverified', 'digest_missing', 'digest_invalid',
                  'chain_start')
