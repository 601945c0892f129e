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
-- aws: KMS first rotates a key one rotation period after automatic rotation is enabled, and ListKeyRotations lists
--   every completed rotation (AWS KMS Developer Guide, Enable automatic key rotation:
--   https://docs.aws.amazon.com/kms/latest/developerguide/rotating-keys-enable.html).
-- description: Neither ListKeyRotations nor CloudTrail (a completed RotateKey or RotateKeyOnDemand) records a
--   rotation, although rotation has been on for longer than the period plus the policy's grace days. Rotation is
--   taken to be on since the later of the EnableKeyRotation that last turned it on (the earliest successful one
--   since the last DisableKeyRotation: a later call that only changes the period does not restart the schedule)
--   and NextRotationDate minus the period; else since the key's creation (key_clock.schedule_start). Keys whose
--   history could not be read are not judged here (see coverage).
WITH judged AS (
  SELECT
    k.account_id,
    k.region,
    k.arn,
    c.period_days,
    c.period_known,
    c.schedule_basis,
    p.grace_days,
    (EXTRACT(EPOCH FROM p.as_of) - EXTRACT(EPOCH FROM c.schedule_start)) / 86400 AS on_days,
    (EXTRACT(EPOCH FROM p.as_of) - EXTRACT(EPOCH FROM c.due_at)) / 86400 AS late_days
  FROM keys k
  JOIN key_clock c ON c.key_arn = k.arn
  CROSS JOIN params p
  WHERE k.eligibility = 'eligible'
    AND k.rotation_enabled = true
    AND c.history_read = true
    AND c.last_rotation IS NULL
)
SELECT
  j.account_id,
  j.region,
  j.arn AS key_arn,
  CONCAT('Rotation has been on for about ', CAST(CAST(j.on_days AS BIGINT) AS VARCHAR), ' days (since ',
         j.schedule_basis, ') with a period of ', CAST(j.period_days AS VARCHAR), ' days',
         CASE WHEN j.period_known THEN '' ELSE ' (period unknown; AWS default 365 assumed)' END,
         ', but no rotation is recorded in ListKeyRotations or CloudTrail.') AS detail,
  CONCAT('ListKeyRotations: 0 rotations; CloudTrail: no completed RotateKey event; rotation on since ',
         j.schedule_basis) AS evidence
FROM judged j
WHERE j.late_days > j.grace_days
