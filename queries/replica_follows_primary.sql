-- id: replica_follows_primary
-- title: A multi-Region replica follows its primary's rotation
-- severity: info
-- controls:
--   - AWS Security Hub KMS.4
--   - PCI DSS v4.0 3.7.4
-- compliance: warning
-- remediation: Manage rotation on the primary key (aws kms enable-key-rotation --key-id PRIMARY_ARN);
--   replicas share its setting and key material.
-- aws: Multi-Region replicas share the automatic rotation setting and key material of their primary; rotation
--   is set on the primary (AWS KMS Developer Guide, Rotating multi-Region keys:
--   https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-update.html).
-- description: Multi-Region replica keys share the rotation setting of their primary; this row carries the
--   primary's status, or, when the primary is not in this inventory, the replica's own GetKeyRotationStatus, which
--   reads the shared setting (rotation_disabled reports it when it is off).
SELECT
  r.account_id,
  r.region,
  r.arn AS key_arn,
  CONCAT('Replica of ', COALESCE(r.primary_key_arn, 'an unknown primary'), ': ',
         CASE
           WHEN p.rotation_enabled = true THEN CONCAT('the primary rotates automatically every ',
                COALESCE(CAST(p.rotation_period_days AS VARCHAR), 'unknown number of'), ' days.')
           WHEN p.rotation_enabled = false
             THEN 'the primary has automatic rotation OFF; see its rotation_disabled finding.'
           WHEN r.key_state NOT IN ('Enabled', 'Disabled')
             THEN CONCAT('the replica is ', COALESCE(r.key_state, 'in an unknown state'),
                         ', so its own status does not show the shared setting.')
           WHEN r.rotation_enabled IS NULL THEN 'neither the primary''s nor the replica''s rotation status could be read.'
           ELSE CONCAT(
                CASE WHEN p.arn IS NULL THEN 'the primary is not in this inventory'
                     ELSE 'the primary''s status could not be read' END,
                '; the replica''s own status shows the shared setting ',
                CASE WHEN r.rotation_enabled = true
                     THEN CONCAT('ON, every ', COALESCE(CAST(r.rotation_period_days AS VARCHAR), 'unknown number of'), ' days.')
                     ELSE 'OFF (see rotation_disabled).' END)
         END) AS detail,
  CONCAT('primary ', COALESCE(r.primary_key_arn, 'unknown'), ' rotation_enabled = ',
         COALESCE(CAST(p.rotation_enabled AS VARCHAR), 'not in inventory'),
         '; replica rotation_enabled = ', COALESCE(CAST(r.rotation_enabled AS VARCHAR), 'unknown')) AS evidence
FROM keys r
LEFT JOIN keys p ON p.arn = r.primary_key_arn
WHERE r.eligibility = 'replica'
