-- id: rotation_off_disabled_key
-- title: A disabled key of a rotatable type has rotation off
-- severity: medium
-- controls:
--   - CIS AWS Foundations 3.6
--   - AWS Security Hub KMS.4
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
-- remediation: If the key will be used again, enable it and then enable rotation
--   (aws kms enable-key --key-id KEY_ARN; aws kms enable-key-rotation --key-id KEY_ARN);
--   if it is retired, schedule its deletion or record an exemption.
-- aws: A disabled key does not rotate, and EnableKeyRotation on it fails with DisabledException (AWS KMS API
--   Reference, EnableKeyRotation: https://docs.aws.amazon.com/kms/latest/APIReference/API_EnableKeyRotation.html).
-- description: EnableKeyRotation fails with DisabledException on a Disabled key, so rotation must be
--   turned on after the key is enabled. A disabled key does not rotate.
SELECT
  k.account_id,
  k.region,
  k.arn AS key_arn,
  CONCAT('Key ', k.arn, ' is Disabled and its automatic rotation is off; it will not rotate when re-enabled.') AS detail,
  'DescribeKey: KeyState = Disabled; GetKeyRotationStatus: KeyRotationEnabled = false' AS evidence
FROM keys k
WHERE k.eligibility = 'disabled'
  AND k.rotation_enabled = false
