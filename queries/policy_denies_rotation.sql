-- id: policy_denies_rotation
-- title: The key policy denies turning rotation on
-- severity: high
-- controls:
--   - AWS Security Hub KMS.4
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
-- remediation: Narrow or remove the Deny in the key policy (aws kms get-key-policy --key-id KEY_ARN
--   --policy-name default), then put it back with aws kms put-key-policy; a Deny in a key policy overrides
--   every Allow, in IAM as well.
-- description: A key policy statement with Effect Deny covers kms:EnableKeyRotation or kms:RotateKeyOnDemand,
--   through the action itself, kms:*, a wildcard that matches it, or a NotAction that leaves it out.
--   Conditions are shown: a conditional Deny blocks only the callers it matches.
SELECT
  s.account_id,
  s.region,
  s.key_arn,
  COALESCE(s.sid, s.actions) AS subject,
  CONCAT('Key policy statement ', COALESCE(s.sid, '(no Sid)'), ' denies ', s.denied_rotation_actions,
         ' to ', COALESCE(s.principal, 'every principal'),
         CASE WHEN s.condition IS NULL THEN '' ELSE CONCAT(' when ', s.condition) END, '.') AS detail,
  CONCAT('Effect: Deny; ', s.actions) AS evidence
FROM policy_statements s
JOIN keys k ON k.arn = s.key_arn
WHERE s.denied_rotation_actions IS NOT NULL
  AND k.eligibility IN ('eligible', 'disabled', 'external_origin')
