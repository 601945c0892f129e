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
--   aws kms enable-key-rotation --key-id KEY_ARN --rotation-period-in-days 365 (for a multi-Region replica, on its
--   primary: the ARN named in the detail).
-- aws: Automatic rotation is supported on customer-managed symmetric encryption keys with KMS-generated material,
--   and multi-Region replicas share their primary's setting, so a replica's own GetKeyRotationStatus reads the
--   shared setting (AWS KMS Developer Guide, Rotate AWS KMS keys:
--   https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html).
-- description: The key is a customer-managed SYMMETRIC_DEFAULT key with AWS_KMS key material in the Enabled
--   state, so AWS can rotate it, but GetKeyRotationStatus reports KeyRotationEnabled = false. A multi-Region
--   replica whose primary is not in the inventory (its Region was not read) is reported when the replica's own
--   status reads false, naming the primary to fix; a replica pending deletion reads false whatever the setting and
--   is not judged.
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
UNION ALL
SELECT
  r.account_id,
  r.region,
  r.arn AS key_arn,
  CONCAT('Automatic rotation is off on multi-Region primary key ', r.primary_key_arn, ': its replica ', r.arn,
         ' in ', r.region, ' reads KeyRotationEnabled = false, the setting it shares with the primary, which is not',
         ' in this inventory. Enable rotation on the primary ', r.primary_key_arn, '.') AS detail,
  CONCAT('GetKeyRotationStatus on the replica: KeyRotationEnabled = false; primary ', r.primary_key_arn,
         CASE WHEN p.arn IS NULL THEN ' not in the inventory' ELSE ' status not read' END) AS evidence
FROM keys r
LEFT JOIN keys p ON p.arn = r.primary_key_arn
WHERE r.eligibility = 'replica'
  AND r.rotation_enabled = false
  AND r.key_state IN ('Enabled', 'Disabled')
  AND r.primary_key_arn IS NOT NULL
  AND (p.arn IS NULL OR p.rotation_enabled IS NULL)
