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
-- aws: KMS rotates a key one rotation period after rotation was last turned on or after its last rotation, and
--   turning rotation off and on again restarts that schedule ("If you enable automatic key rotation again, AWS KMS
--   rotates the key material based on the new rotation-enable date", AWS KMS Developer Guide, Disable automatic key
--   rotation: https://docs.aws.amazon.com/kms/latest/developerguide/rotating-keys-disable.html).
-- description: The schedule starts at the latest of the last rotation (ListKeyRotations, or a completed RotateKey /
--   RotateKeyOnDemand in CloudTrail), the EnableKeyRotation that last turned rotation on (the earliest successful one
--   since the last DisableKeyRotation), and NextRotationDate minus the period (key_clock.schedule_start). The key is
--   reported when one period after that start, or NextRotationDate, is past by more than the policy's grace days.
--   The period is RotationPeriodInDays, or AWS's default of 365 when unknown. Where ListKeyRotations could not be
--   read, only a passed NextRotationDate is judged: CloudTrail alone is not a complete history. Keys with no
--   rotation recorded anywhere are reported by never_rotated, and material that is old only because rotation was
--   off for a while by material_age_exceeds_policy.
WITH judged AS (
  SELECT
    k.account_id,
    k.region,
    k.arn,
    c.history_read,
    c.last_rotation,
    c.last_rotation_source,
    c.period_days,
    c.period_known,
    c.schedule_basis,
    c.due_at,
    c.next_rotation_date,
    p.grace_days,
    (EXTRACT(EPOCH FROM p.as_of) - EXTRACT(EPOCH FROM c.due_at)) / 86400 AS late_days,
    (EXTRACT(EPOCH FROM p.as_of) - EXTRACT(EPOCH FROM c.next_rotation_date)) / 86400 AS next_late_days
  FROM keys k
  JOIN key_clock c ON c.key_arn = k.arn
  CROSS JOIN params p
  WHERE k.eligibility = 'eligible' AND k.rotation_enabled = true
),
missed AS (
  SELECT
    j.*,
    j.history_read = true AND j.last_rotation IS NOT NULL AND j.late_days > j.grace_days AS schedule_late,
    j.next_rotation_date IS NOT NULL AND j.next_late_days > j.grace_days
      AND (j.last_rotation IS NOT NULL OR j.history_read = false) AS next_date_late
  FROM judged j
)
SELECT
  m.account_id,
  m.region,
  m.arn AS key_arn,
  CONCAT(
    CASE
      WHEN m.schedule_late
        THEN CONCAT('KMS should have rotated this key by ', STRFTIME(m.due_at, '%Y-%m-%d'), ', one ',
                    CAST(m.period_days AS VARCHAR), '-day period',
                    CASE WHEN m.period_known THEN '' ELSE ' (period unknown; AWS default 365 assumed)' END,
                    ' after its ', m.schedule_basis, '; it is ', CAST(CAST(m.late_days AS BIGINT) AS VARCHAR),
                    ' days late, beyond the ', CAST(m.grace_days AS VARCHAR), ' days of grace')
      ELSE CONCAT('KMS reports NextRotationDate ', STRFTIME(m.next_rotation_date, '%Y-%m-%d'), ', ',
                  CAST(CAST(m.next_late_days AS BIGINT) AS VARCHAR), ' days ago, beyond the ',
                  CAST(m.grace_days AS VARCHAR), ' days of grace')
    END,
    CASE
      WHEN m.schedule_late AND m.next_date_late
        THEN CONCAT('; NextRotationDate ', STRFTIME(m.next_rotation_date, '%Y-%m-%d'), ' has passed too')
      ELSE ''
    END,
    CASE
      WHEN m.history_read = false THEN ' (ListKeyRotations was not read, so the rotation history is incomplete)'
      ELSE ''
    END,
    '.') AS detail,
  CONCAT('schedule start: ', m.schedule_basis,
         CASE WHEN m.last_rotation IS NULL THEN ''
              ELSE CONCAT('; last rotation ', STRFTIME(m.last_rotation, '%Y-%m-%dT%H:%M:%SZ'), ' from ',
                          m.last_rotation_source) END,
         CASE WHEN m.next_rotation_date IS NULL THEN ''
              ELSE CONCAT('; NextRotationDate ', STRFTIME(m.next_rotation_date, '%Y-%m-%dT%H:%M:%SZ')) END) AS evidence
FROM missed m
WHERE m.schedule_late OR m.next_date_late
