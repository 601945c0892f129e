-- id: missed_cycle
-- title: Rotation is on but the key missed its rotation cycle
-- severity: high
-- controls:
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
--   - NIST SP 800-57 Part 1 (cryptoperiod)
--   - AWS Security Hub KMS.4
-- remediation: Find out why KMS did not rotate the key (kmsrot diagnose KEY_ARN); rotate it now with
--   aws kms rotate-key-on-demand --key-id KEY_ARN, and check that its rotation period is what you expect.
-- description: The last recorded rotation (the later of ListKeyRotations and CloudTrail RotateKey /
--   RotateKeyOnDemand) is older than the rotation period plus the policy's grace days, or NextRotationDate is
--   past by more than the grace. The period is RotationPeriodInDays, or AWS's default of 365 when unknown.
--   Keys with no rotation recorded anywhere are reported by never_rotated instead.
WITH
listed AS (
  SELECT key_arn, MAX(rotation_date) AS last_listed
  FROM rotations
  GROUP BY key_arn
),
trailed AS (
  SELECT key_arn, MAX(event_time) AS last_trailed
  FROM events
  WHERE event_name IN ('RotateKey', 'RotateKeyOnDemand') AND error_code IS NULL
  GROUP BY key_arn
),
facts AS (
  SELECT
    k.account_id,
    k.region,
    k.arn,
    k.next_rotation_date,
    COALESCE(k.rotation_period_days, 365) AS period_days,
    CASE WHEN k.rotation_period_days IS NULL THEN ' (period unknown; AWS default 365 assumed)' ELSE '' END AS period_note,
    CASE
      WHEN t.last_trailed IS NULL THEN l.last_listed
      WHEN l.last_listed IS NULL THEN t.last_trailed
      WHEN l.last_listed >= t.last_trailed THEN l.last_listed
      ELSE t.last_trailed
    END AS last_rotation,
    CASE
      WHEN t.last_trailed IS NULL THEN 'ListKeyRotations'
      WHEN l.last_listed IS NULL THEN 'CloudTrail'
      WHEN l.last_listed >= t.last_trailed THEN 'ListKeyRotations'
      ELSE 'CloudTrail'
    END AS basis
  FROM keys k
  LEFT JOIN listed l ON l.key_arn = k.arn
  LEFT JOIN trailed t ON t.key_arn = k.arn
  WHERE k.eligibility = 'eligible' AND k.rotation_enabled = true
),
aged AS (
  SELECT
    f.*,
    p.grace_days,
    (EXTRACT(EPOCH FROM p.as_of) - EXTRACT(EPOCH FROM f.last_rotation)) / 86400 AS age_days,
    (EXTRACT(EPOCH FROM p.as_of) - EXTRACT(EPOCH FROM f.next_rotation_date)) / 86400 AS overdue_days
  FROM facts f
  CROSS JOIN params p
  WHERE f.last_rotation IS NOT NULL
)
SELECT
  a.account_id,
  a.region,
  a.arn AS key_arn,
  CONCAT('Last rotation ', STRFTIME(a.last_rotation, '%Y-%m-%d'), ' (', a.basis, ') is ',
         CAST(CAST(a.age_days AS BIGINT) AS VARCHAR), ' days old; the period is ',
         CAST(a.period_days AS VARCHAR), ' days', a.period_note, ' plus ', CAST(a.grace_days AS VARCHAR),
         ' days of grace',
         CASE WHEN a.overdue_days > a.grace_days
              THEN CONCAT('; NextRotationDate ', STRFTIME(a.next_rotation_date, '%Y-%m-%d'), ' has passed')
              ELSE '' END,
         '.') AS detail,
  CONCAT('last rotation ', STRFTIME(a.last_rotation, '%Y-%m-%dT%H:%M:%SZ'), ' from ', a.basis) AS evidence
FROM aged a
WHERE a.age_days > a.period_days + a.grace_days
   OR (a.overdue_days IS NOT NULL AND a.overdue_days > a.grace_days)
