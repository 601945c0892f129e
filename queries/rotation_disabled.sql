-- id: rotation_disabled
-- title: Automatic rotation is off on an eligible key
-- severity: high
-- controls:
--   - CIS AWS Foundations 3.6 (v3.0-v5.0; 3.8 in v1.3-v2.0, 2.8 in v1.2, 4.6 in v6.0)
--   - AWS Security Hub KMS.4
--   - AWS Config cmk-backing-key-rotation-enabled
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
-- remediation: Enable automatic rotation: kmsrot plan, approve and apply --execute, or
--   aws kms enable-key-rotation --key-id KEY_ARN --rotation-period-in-days 365
-- description: The key is a customer-managed SYMMETRIC_DEFAULT key with AWS_KMS key material in the Enabled
--   state, so AWS can rotate it, but GetKeyRotationStatus reports KeyRotationEnabled = false.
SELECT
  k.account_id,
  k.region,
  k.arn AS key_arn,
  CONCAT('Automatic rotation is off on eligible key ', k.arn,
         ', created ', COALESCE(STRFTIME(k.creation_date, '%Y-%m-%d'), 'on an unknown date'), '.') AS detail,
  'GetKeyRotationStatus: KeyRotationEnabled = false' AS evidence
FROM keys k
WHERE k.eligibility = 'eligible'
  AND k.rotation_enabled = false
