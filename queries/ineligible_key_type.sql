-- id: ineligible_key_type
-- title: The key type cannot rotate automatically
-- severity: info
-- controls:
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-57 Part 1 (cryptoperiod)
-- compliance: warning
-- remediation: Rotate by replacement: create a new key, move the alias to it (aws kms update-alias), and retire the
--   old one when nothing uses it; for imported material, import new material and call
--   aws kms rotate-key-on-demand --key-id KEY_ARN.
-- description: Automatic rotation exists only for customer-managed SYMMETRIC_DEFAULT keys with AWS_KMS material.
--   Asymmetric and HMAC keys, imported material (origin EXTERNAL) and custom key stores need a compensating
--   practice, reported here for visibility.
SELECT
  k.account_id,
  k.region,
  k.arn AS key_arn,
  CONCAT('Key ', k.arn, ' (', COALESCE(k.key_spec, 'unknown spec'), ', origin ', COALESCE(k.origin, 'unknown'), ') ',
         CASE k.eligibility
           WHEN 'external_origin' THEN 'has imported key material: rotate it on demand after importing new material, or replace the key.'
           WHEN 'custom_key_store' THEN 'lives in a custom key store: replace it with a new key and move the alias.'
           ELSE 'is asymmetric or HMAC: replace it with a new key and move the alias on your cryptoperiod.'
         END) AS detail,
  CONCAT('eligibility = ', k.eligibility) AS evidence
FROM keys k
WHERE k.eligibility IN ('unsupported_spec', 'external_origin', 'custom_key_store')
