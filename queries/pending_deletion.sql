-- id: pending_deletion
-- title: A customer-managed key is scheduled for deletion
-- severity: medium
-- controls:
--   - NIST SP 800-53 SC-12
--   - PCI DSS v4.0 3.7.4
-- compliance: warning
-- remediation: If the key still protects data, cancel the deletion (aws kms cancel-key-deletion --key-id KEY_ARN,
--   then aws kms enable-key --key-id KEY_ARN); otherwise confirm that nothing depends on it before the date.
-- aws: A KMS key pending deletion reports rotation as off and KMS rejects rotation changes until the deletion is
--   cancelled; deleting it destroys the key material (AWS KMS Developer Guide, Delete an AWS KMS key:
--   https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html).
-- description: Deleting a KMS key destroys its key material and makes everything encrypted under it
--   unrecoverable; while it is pending deletion, KMS rejects rotation changes.
SELECT
  k.account_id,
  k.region,
  k.arn AS key_arn,
  CONCAT('Key ', k.arn, ' (', COALESCE(k.eligibility, 'unknown type'), ') will be deleted on ',
         COALESCE(STRFTIME(k.deletion_date, '%Y-%m-%dT%H:%M:%SZ'), 'an unknown date'), '.') AS detail,
  CONCAT('DescribeKey: KeyState = ', k.key_state, ', DeletionDate = ',
         COALESCE(STRFTIME(k.deletion_date, '%Y-%m-%dT%H:%M:%SZ'), 'none')) AS evidence
FROM keys k
WHERE k.key_state IN ('PendingDeletion', 'PendingReplicaDeletion')
  AND k.key_manager = 'CUSTOMER'
  AND k.eligibility <> 'aws_managed'
