-- id: never_rotated
-- title: Rotation has been on for longer than one period, yet no rotation is recorded
-- severity: high
-- controls:
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
--   - NIST SP 800-57 Part 1 (cryptoperiod)
--   - AWS Security Hub KMS.4
-- remediation: Check the key with kmsrot diagnose KEY_ARN; rotate it now with
--   aws kms rotate-key-on-demand --key-id KEY_ARN and confirm with aws kms list-key-rotations --key-id KEY_ARN.
-- description: Neither ListKeyRotations nor CloudTrail (RotateKey, RotateKeyOnDemand) records a rotation,
--   although rotation has been on for longer than the period plus the grace. Rotation is taken to be on since
--   the last successful EnableKeyRotation in CloudTrail, else since NextRotationDate minus the period, else since
--   the key's creation. Keys whose history could not be read are not judged here (see coverage).
WITH
listed AS (
  SELECT key_arn, COUNT(*) AS n FROM rotations GROUP BY key_arn
),
trailed AS (
  SELECT key_arn, COUNT(*) AS n
  FROM events
  WHERE event_name IN ('RotateKey', 'RotateKeyOnDemand') AND error_code IS NULL
  GROUP BY key_arn
),
enabled AS (
  SELECT key_arn, MAX(event_time) AS enabled_at
  FROM events
  WHERE event_name = 'EnableKeyRotation' AND error_code IS NULL
  GROUP BY key_arn
),
facts AS (
  SELECT
    k.account_id,
    k.region,
    k.arn,
    COALESCE(k.rotation_period_days, 365) AS period_days,
    CASE
      WHEN e.enabled_at IS NOT NULL THEN EXTRACT(EPOCH FROM e.enabled_at)
      WHEN k.next_rotation_date IS NOT NULL
        THEN EXTRACT(EPOCH FROM k.next_rotation_date) - COALESCE(k.rotation_period_days, 365) * 86400
      ELSE EXTRACT(EPOCH FROM k.creation_date)
    END AS on_since_epoch,
    CASE
      WHEN e.enabled_at IS NOT NULL THEN CONCAT('EnableKeyRotation on ', STRFTIME(e.enabled_at, '%Y-%m-%d'))
      WHEN k.next_rotation_date IS NOT NULL
        THEN CONCAT('NextRotationDate ', STRFTIME(k.next_rotation_date, '%Y-%m-%d'), ' minus the period')
      ELSE CONCAT('creation on ', STRFTIME(k.creation_date, '%Y-%m-%d'), ' (no EnableKeyRotation event or NextRotationDate)')
    END AS basis
  FROM keys k
  LEFT JOIN listed l ON l.key_arn = k.arn
  LEFT JOIN trailed t ON t.key_arn = k.arn
  LEFT JOIN enabled e ON e.key_arn = k.arn
  WHERE k.eligibility = 'eligible'
    AND k.rotation_enabled = true
    AND k.rotation_count IS NOT NULL
    AND l.n IS NULL
    AND t.n IS NULL
),
aged AS (
  SELECT f.*, p.grace_days, (EXTRACT(EPOCH FROM p.as_of) - f.on_since_epoch) / 86400 AS on_days
  FROM facts f
  CROSS JOIN params p
)
SELECT
  a.account_id,
  a.region,
  a.arn AS key_arn,
  CONCAT('Rotation has been on for about ', CAST(CAST(a.on_days AS BIGINT) AS VARCHAR), ' days (since ', a.basis,
         ') with a period of ', CAST(a.period_days AS VARCHAR),
         ' days, but no rotation is recorded in ListKeyRotations or CloudTrail.') AS detail,
  CONCAT('ListKeyRotations: 0 rotations; CloudTrail: no RotateKey event; rotation on since ', a.basis) AS evidence
FROM aged a
WHERE a.on_days > a.period_days + a.grace_days
