-- id: evidence_gap
-- title: CloudTrail does not cover the audit window for a region that holds rotatable keys
-- severity: medium
-- controls:
--   - NIST SP 800-53 AU-12
--   - NIST SP 800-53 AU-11
--   - PCI DSS v4.0 10.5.1
-- compliance: warning
-- remediation: Add the missing CloudTrail source (the trail's S3 archive: kmsrot collect --trail s3://BUCKET/PREFIX);
--   for days without a log file, validate the archive's digest files (kmsrot collect --trail s3://BUCKET/PREFIX
--   --validate) to tell quiet days from lost ones, and find why the trail did not deliver on the days still missing.
-- aws: CloudTrail delivers a log file only when there are events to deliver, but a digest file every hour, so only
--   the digest files tell a quiet day from a lost one (AWS CloudTrail User Guide, CloudTrail digest file structure:
--   https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-digest-file-structure.html).
-- description: Without CloudTrail for every day of the window, the absence of RotateKey events proves nothing.
--   Reported per account and region that holds eligible or disabled keys: when no CloudTrail source covers it, or
--   when days of the window have no log file. A day without a log file may be quiet (no event that day) or lost.
--   Without --validate the finding does not say which, only that those days prove nothing; with --validate, a day
--   that CloudTrail's signed digests cover with no log file listed is quiet and not a gap, and the days reported
--   are those neither a log file nor a verified digest covers: logging was off, or the files are gone.
WITH held AS (
  SELECT account_id, region, COUNT(*) AS rotatable_keys
  FROM keys
  WHERE eligibility IN ('eligible', 'disabled')
  GROUP BY account_id, region
)
SELECT
  h.account_id,
  h.region,
  CAST(NULL AS VARCHAR) AS key_arn,
  CONCAT('Region ', h.region, ' of account ', h.account_id, ' holds ', CAST(h.rotatable_keys AS VARCHAR),
         ' rotatable key(s), but ',
         CASE
           WHEN d.days_missing IS NULL THEN 'no CloudTrail source covers it in the audit window'
           WHEN d.validated THEN CONCAT('neither a CloudTrail log file nor a verified digest file covers ',
                       CAST(d.days_missing AS VARCHAR), ' of ', CAST(d.days_in_window AS VARCHAR), ' days (',
                       d.missing_days, '): logging was off those days, or their files are gone')
           ELSE CONCAT('no CloudTrail log file was read for ', CAST(d.days_missing AS VARCHAR), ' of ',
                       CAST(d.days_in_window AS VARCHAR), ' days (', d.missing_days,
                       '); a day without a log file is either quiet or lost, and without digest files kmsrot',
                       ' cannot tell which')
         END,
         ': absence of RotateKey events there proves nothing.') AS detail,
  CASE
    WHEN d.days_missing IS NULL THEN 'no trail_days row for this account and region'
    WHEN d.validated THEN CONCAT(CAST(d.days_with_logs AS VARCHAR), ' of ', CAST(d.days_in_window AS VARCHAR),
                                 ' days have log files, ', CAST(d.days_quiet AS VARCHAR),
                                 ' are quiet (verified digests, no log file)')
    ELSE CONCAT(CAST(d.days_with_logs AS VARCHAR), ' of ', CAST(d.days_in_window AS VARCHAR), ' days have log files')
  END AS evidence
FROM held h
LEFT JOIN trail_days d ON d.account_id = h.account_id AND d.region = h.region
WHERE d.days_missing IS NULL OR d.days_missing > 0
