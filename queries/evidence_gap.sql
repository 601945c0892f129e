-- id: evidence_gap
-- title: CloudTrail does not cover the audit window for a region that holds rotatable keys
-- severity: medium
-- controls:
--   - NIST SP 800-53 AU-12
--   - NIST SP 800-53 AU-11
--   - PCI DSS v4.0 10.5.1
-- compliance: warning
-- remediation: Add the missing CloudTrail source (the trail's S3 archive: kmsrot collect --trail s3://BUCKET/PREFIX),
--   or find why the trail did not deliver logs on the missing days.
-- description: Without CloudTrail for every day of the window, the absence of RotateKey events proves nothing:
--   rotations, disables and failures on the missing days are unknown. Reported per account and region that holds
--   eligible or disabled keys.
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
           ELSE CONCAT('CloudTrail logs are missing on ', CAST(d.days_missing AS VARCHAR), ' of ',
                       CAST(d.days_in_window AS VARCHAR), ' days (', d.missing_days, ')')
         END,
         ': absence of RotateKey events there proves nothing.') AS detail,
  CASE
    WHEN d.days_missing IS NULL THEN 'no trail_days row for this account and region'
    ELSE CONCAT(CAST(d.days_with_logs AS VARCHAR), ' of ', CAST(d.days_in_window AS VARCHAR), ' days have logs')
  END AS evidence
FROM held h
LEFT JOIN trail_days d ON d.account_id = h.account_id AND d.region = h.region
WHERE d.days_missing IS NULL OR d.days_missing > 0
