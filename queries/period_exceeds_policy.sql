-- id: period_exceeds_policy
-- title: The rotation period is longer than the policy allows
-- severity: medium
-- controls:
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
--   - NIST SP 800-57 Part 1 (cryptoperiod)
-- remediation: Shorten the period: aws kms enable-key-rotation --key-id KEY_ARN --rotation-period-in-days DAYS
--   (kmsrot plan proposes this change for approval).
-- aws: RotationPeriodInDays is 90 to 2560 days (365 by default), set with EnableKeyRotation and reported by
--   GetKeyRotationStatus (AWS KMS API Reference, EnableKeyRotation:
--   https://docs.aws.amazon.com/kms/latest/APIReference/API_EnableKeyRotation.html).
-- description: GetKeyRotationStatus reports a RotationPeriodInDays above the policy's max_rotation_period_days.
SELECT
  k.account_id,
  k.region,
  k.arn AS key_arn,
  CONCAT('Rotation period is ', CAST(k.rotation_period_days AS VARCHAR), ' days; the policy allows at most ',
         CAST(p.max_period_days AS VARCHAR), '.') AS detail,
  CONCAT('GetKeyRotationStatus: RotationPeriodInDays = ', CAST(k.rotation_period_days AS VARCHAR)) AS evidence
FROM keys k
CROSS JOIN params p
WHERE k.eligibility IN ('eligible', 'disabled')
  AND k.rotation_enabled = true
  AND k.rotation_period_days > p.max_period_days
