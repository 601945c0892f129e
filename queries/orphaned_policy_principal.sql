-- id: orphaned_policy_principal
-- title: The key policy names a principal that no longer exists
-- severity: medium
-- controls:
--   - NIST SP 800-53 AC-2 (account management)
--   - NIST SP 800-53 SC-12
--   - SOC 2 CC6.2
-- compliance: failed
-- remediation: Find whom the statement was written for (your IaC, or CloudTrail for the role or user it named), then
--   replace each unique id in it with the ARN of the principal that needs the access now, or remove it:
--   aws kms get-key-policy --key-id KEY_ARN --policy-name default, edit, then aws kms put-key-policy.
-- aws: When an IAM user or role named in a resource-based policy is deleted, the policy shows its unique id (AIDA...
--   for a user, AROA... for a role) instead of its ARN, and a user or role recreated with the same name is a new
--   principal the policy does not name (IAM User Guide, AWS JSON policy elements: Principal:
--   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html; unique id prefixes:
--   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-prefixes).
-- description: A statement of a customer-managed key's policy names, in its Principal or NotPrincipal, a bare IAM
--   unique id (AROA role, AIDA user, or another documented prefix, none of which is a principal a policy can name)
--   rather than an ARN or an account. The detail says which statement (its Sid, else its position) and what it
--   allows or denies to the id. In an Allow, whoever the statement was for is locked out: a rotation automation
--   whose role was deleted and recreated under the same name can no longer call kms:EnableKeyRotation, and nothing
--   fails until it tries. In a Deny, the Deny no longer reaches its principal's successor. In a NotPrincipal, the
--   successor is no longer exempted. One finding per statement, listing every such id in it.
SELECT
  s.account_id,
  s.region,
  s.key_arn,
  COALESCE(s.sid, CONCAT('statement ', CAST(s.statement_index AS VARCHAR))) AS subject,
  CONCAT('Key policy statement ',
         COALESCE(s.sid, CONCAT('#', CAST(s.statement_index AS VARCHAR), ' (no Sid)')),
         CASE
           WHEN s.not_principal = true
             THEN CONCAT(' (Effect ', s.effect, ', ', s.actions, ') exempts through NotPrincipal ',
                         s.unique_id_principals,
                         ': a unique id, which AWS shows in place of a deleted principal''s ARN. A user or role ',
                         'recreated under the same name is a new principal and is not exempted.')
           WHEN LOWER(s.effect) = 'allow'
             THEN CONCAT(' allows ', s.actions, ' to ', s.unique_id_principals,
                         ': a unique id, which AWS shows in place of a deleted principal''s ARN. A user or role ',
                         'recreated under the same name is a new principal and is not granted these actions: ',
                         'whatever relied on this statement, such as a rotation automation, is locked out.')
           ELSE CONCAT(' (Effect ', s.effect, ') denies ', s.actions, ' to ', s.unique_id_principals,
                       ': a unique id, which AWS shows in place of a deleted principal''s ARN. A user or role ',
                       'recreated under the same name is a new principal this Deny does not reach.')
         END) AS detail,
  CONCAT('Effect: ', s.effect, '; Principal: ', COALESCE(s.principal, 'none'), '; ', s.actions,
         CASE WHEN s.condition IS NULL THEN '' ELSE CONCAT('; Condition: ', s.condition) END) AS evidence
FROM policy_statements s
JOIN keys k ON k.arn = s.key_arn
WHERE s.unique_id_principals IS NOT NULL
  AND COALESCE(k.eligibility, '') <> 'aws_managed'
