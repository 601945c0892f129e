-- id: policy_denies_rotation
-- title: The key policy denies turning rotation on to everyone
-- severity: high
-- controls:
--   - AWS Security Hub KMS.4
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
-- remediation: Narrow or remove the Deny in the key policy (aws kms get-key-policy --key-id KEY_ARN
--   --policy-name default), then put it back with aws kms put-key-policy; a Deny in a key policy overrides
--   every Allow, in IAM as well.
-- aws: An explicit Deny overrides every Allow, and a Deny on Principal "*" with no Condition applies to every
--   request (IAM User Guide, Policy evaluation logic:
--   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html; AWS KMS Developer
--   Guide, Key policies: https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html).
-- description: A key policy statement with Effect Deny, Principal "*" (or {"AWS": "*"}), no NotPrincipal and no
--   Condition covers kms:EnableKeyRotation, through the action itself, kms:*, a wildcard that matches it, or a
--   NotAction that leaves it out: nobody can turn automatic rotation on. A Deny with a Condition or NotPrincipal,
--   or naming some principals, is policy_conditionally_denies_rotation; one that covers only kms:RotateKeyOnDemand
--   is policy_denies_on_demand_rotation.
SELECT
  s.account_id,
  s.region,
  s.key_arn,
  COALESCE(s.sid, CONCAT('statement ', CAST(s.statement_index AS VARCHAR))) AS subject,
  CONCAT('Key policy statement ',
         COALESCE(s.sid, CONCAT('#', CAST(s.statement_index AS VARCHAR), ' (no Sid)')), ' denies ',
         s.denied_rotation_actions,
         ' to every principal with no condition: no one can turn automatic rotation on for this key.') AS detail,
  CONCAT('Effect: Deny; Principal: ', COALESCE(s.principal, 'none'), '; ', s.actions) AS evidence
FROM policy_statements s
JOIN keys k ON k.arn = s.key_arn
WHERE s.denies_enable = true
  AND s.everyone = true
  AND s.condition IS NULL
  AND k.eligibility IN ('eligible', 'disabled')
