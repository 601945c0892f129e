-- id: replica_follows_primary
-- title: A multi-Region replica follows its primary's rotation
-- severity: info
-- controls:
--   - AWS Security Hub KMS.4
--   - PCI DSS v4.0 3.7.4
-- compliance: warning
-- remediation: Manage rotation on the primary key (aws kms enable-key-rotation --key-id PRIMARY_ARN);
--   replicas share its setting and key material.
-- description: Multi-Region replica keys share the rotation setting of their primary; this row carries the
--   primary's status so the replica is judged by it.
SELECT
  r.account_id,
  r.region,
  r.arn AS key_arn,
  CONCAT('Replica of ', COALESCE(r.primary_key_arn, 'an unknown primary'), ': ',
         CASE
           WHEN p.arn IS NULL THEN 'the primary is not in this inventory (its region was not read), so its rotation status is unknown.'
           WHEN p.rotation_enabled = true THEN CONCAT('the primary rotates automatically every ',
                COALESCE(CAST(p.rotation_period_days AS VARCHAR), 'unknown number of'), ' days.')
           WHEN p.rotation_enabled = false THEN 'the primary has automatic rotation OFF; see its rotation_disabled finding.'
           ELSE 'the primary''s rotation status could not be read.'
         END) AS detail,
  CONCAT('primary ', COALESCE(r.primary_key_arn, 'unknown'), ' rotation_enabled = ',
         COALESCE(CAST(p.rotation_enabled AS VARCHAR), 'unknown')) AS evidence
FROM keys r
LEFT JOIN keys p ON p.arn = r.primary_key_arn
WHERE r.eligibility = 'replica'
