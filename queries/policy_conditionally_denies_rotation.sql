-- id: policy_conditionally_denies_rotation
-- title: The key policy denies turning rotation on to some callers
-- severity: medium
-- controls:
--   - AWS Security Hub KMS.4
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
-- compliance: warning
-- remediation: Check that the callers who manage rotation are among those the statement leaves out (named in the
--   detail); if not, narrow the Deny (aws kms get-key-policy --key-id KEY_ARN --policy-name default, then
--   aws kms put-key-policy).
-- aws: A Deny with a Condition applies only to requests the condition matches (a data perimeter on
--   aws:PrincipalOrgID is the common case), and NotPrincipal exempts the principals it names (IAM User Guide, IAM JSON
--   policy elements: Condition: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html;
--   NotPrincipal: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html).
-- description: A key policy statement with Effect Deny covers kms:EnableKeyRotation but not for every caller: it
--   has a Condition, a NotPrincipal, or names some principals only. The detail quotes the condition and names the
--   callers it leaves able to turn rotation on. At most medium: whether it blocks the people who manage rotation
--   depends on who they are.
SELECT
  s.account_id,
  s.region,
  s.key_arn,
  COALESCE(s.sid, CONCAT('statement ', CAST(s.statement_index AS VARCHAR))) AS subject,
  CONCAT('Key policy statement ',
         COALESCE(s.sid, CONCAT('#', CAST(s.statement_index AS VARCHAR), ' (no Sid)')), ' denies ',
         s.denied_rotation_actions, ' to ', COALESCE(s.principal, 'no named principal'),
         CASE WHEN s.condition IS NULL THEN '' ELSE CONCAT(' when ', s.condition) END,
         '. It leaves able to make those calls: ', COALESCE(s.unaffected, 'no one'), '.') AS detail,
  CONCAT('Effect: Deny; Principal: ', COALESCE(s.principal, 'none'), '; ', s.actions,
         CASE WHEN s.condition IS NULL THEN '' ELSE CONCAT('; Condition: ', s.condition) END) AS evidence
FROM policy_statements s
JOIN keys k ON k.arn = s.key_arn
WHERE s.denies_enable = true
  AND NOT (s.everyone = true AND s.condition IS NULL)
  AND k.eligibility IN ('eligible', 'disabled')
