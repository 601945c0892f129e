-- id: policy_denies_on_demand_rotation
-- title: The key policy denies on-demand rotation
-- severity: low
-- controls:
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
-- remediation: If anyone must be able to rotate the key now (after a suspected compromise, or for imported key
--   material), narrow the Deny on kms:RotateKeyOnDemand in the key policy (aws kms get-key-policy --key-id KEY_ARN
--   --policy-name default, then aws kms put-key-policy).
-- aws: On-demand rotation (RotateKeyOnDemand) is separate from automatic rotation and does not change its schedule;
--   for imported key material it is the only rotation there is (AWS KMS Developer Guide, Perform on-demand key
--   rotation: https://docs.aws.amazon.com/kms/latest/developerguide/rotating-keys-on-demand.html).
-- description: A key policy statement with Effect Deny covers kms:RotateKeyOnDemand but not
--   kms:EnableKeyRotation: automatic rotation, which KMS performs itself, is not stopped; only rotate-now requests
--   are. On a key with imported material (external_origin), any Deny of kms:RotateKeyOnDemand is reported here,
--   as it blocks the only way that material rotates.
SELECT
  s.account_id,
  s.region,
  s.key_arn,
  COALESCE(s.sid, CONCAT('statement ', CAST(s.statement_index AS VARCHAR))) AS subject,
  CONCAT('Key policy statement ',
         COALESCE(s.sid, CONCAT('#', CAST(s.statement_index AS VARCHAR), ' (no Sid)')),
         ' denies kms:RotateKeyOnDemand to ', COALESCE(s.principal, 'no named principal'),
         CASE WHEN s.condition IS NULL THEN '' ELSE CONCAT(' when ', s.condition) END,
         CASE
           WHEN k.eligibility = 'external_origin'
             THEN ': it blocks on-demand rotation, the only way imported key material rotates'
           ELSE ': it does not stop automatic rotation, which KMS performs itself; it blocks only rotate-now requests'
         END,
         CASE WHEN s.unaffected IS NULL THEN '.' ELSE CONCAT('. Callers it leaves out: ', s.unaffected, '.') END) AS detail,
  CONCAT('Effect: Deny; Principal: ', COALESCE(s.principal, 'none'), '; ', s.actions,
         CASE WHEN s.condition IS NULL THEN '' ELSE CONCAT('; Condition: ', s.condition) END) AS evidence
FROM policy_statements s
JOIN keys k ON k.arn = s.key_arn
WHERE s.denies_on_demand = true
  AND ((k.eligibility IN ('eligible', 'disabled') AND s.denies_enable = false)
       OR k.eligibility = 'external_origin')
