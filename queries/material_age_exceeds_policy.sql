-- id: material_age_exceeds_policy
-- title: The key material is older than the policy allows, though KMS is on schedule
-- severity: medium
-- controls:
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-57 Part 1 (cryptoperiod)
--   - NIST SP 800-53 SC-12
-- remediation: Rotate the material now with aws kms rotate-key-on-demand --key-id KEY_ARN (an on-demand rotation
--   leaves the automatic schedule as it is), and restrict kms:DisableKeyRotation so rotation stays on.
-- aws: Turning automatic rotation off and on again restarts KMS's schedule from the new enable date, so the
--   material in use can outlive the policy's cryptoperiod while KMS misses no cycle (AWS KMS Developer Guide, Disable
--   automatic key rotation: https://docs.aws.amazon.com/kms/latest/developerguide/rotating-keys-disable.html).
-- description: The key's current material (since its last rotation, else since the key's creation) is older than
--   the policy's max_rotation_period_days plus grace_days, while KMS's own schedule is not late (that case is
--   missed_cycle or never_rotated). It is what a key looks like after rotation was off for a while and turned on
--   again. Judged only where ListKeyRotations was read.
WITH judged AS (
  SELECT
    k.account_id,
    k.region,
    k.arn,
    c.material_since,
    c.last_rotation,
    c.schedule_basis,
    c.due_at,
    c.next_rotation_date,
    p.grace_days,
    p.max_period_days,
    (EXTRACT(EPOCH FROM p.as_of) - EXTRACT(EPOCH FROM c.material_since)) / 86400 AS material_days,
    (EXTRACT(EPOCH FROM p.as_of) - EXTRACT(EPOCH FROM c.due_at)) / 86400 AS late_days,
    (EXTRACT(EPOCH FROM p.as_of) - EXTRACT(EPOCH FROM c.next_rotation_date)) / 86400 AS next_late_days
  FROM keys k
  JOIN key_clock c ON c.key_arn = k.arn
  CROSS JOIN params p
  WHERE k.eligibility = 'eligible'
    AND k.rotation_enabled = true
    AND c.history_read = true
    AND c.material_since IS NOT NULL
)
SELECT
  j.account_id,
  j.region,
  j.arn AS key_arn,
  CONCAT('The key material in use since ', STRFTIME(j.material_since, '%Y-%m-%d'),
         CASE WHEN j.last_rotation IS NULL THEN ' (the key''s creation; never rotated)' ELSE ' (its last rotation)' END,
         ' is ', CAST(CAST(j.material_days AS BIGINT) AS VARCHAR), ' days old; the policy allows ',
         CAST(j.max_period_days AS VARCHAR), ' days plus ', CAST(j.grace_days AS VARCHAR),
         ' of grace. KMS is not late: its schedule starts at the ', j.schedule_basis,
         ', so it will next rotate around ', STRFTIME(j.due_at, '%Y-%m-%d'), '.') AS detail,
  CONCAT('material since ', STRFTIME(j.material_since, '%Y-%m-%dT%H:%M:%SZ'), '; schedule start: ', j.schedule_basis) AS evidence
FROM judged j
WHERE j.material_days > j.max_period_days + j.grace_days
  AND (j.late_days IS NULL OR j.late_days <= j.grace_days)
  AND (j.next_late_days IS NULL OR j.next_late_days <= j.grace_days)
