-- id: ineligible_key_type
-- title: The key type cannot rotate automatically
-- severity: info
-- controls:
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-57 Part 1 (cryptoperiod)
-- compliance: warning
-- remediation: Rotate by replacement: create a new key, move the alias to it (aws kms update-alias), and retire the
--   old one when nothing uses it; for imported symmetric key material, import new material and call
--   aws kms rotate-key-on-demand --key-id KEY_ARN.
-- aws: Automatic rotation exists only for symmetric encryption keys with KMS-generated material; on-demand
--   rotation also exists for symmetric keys with imported material, and for multi-Region ones once the new material
--   is imported into the primary and then each replica, but never for asymmetric or HMAC keys or keys in a custom
--   key store (AWS KMS API Reference, RotateKeyOnDemand and ImportKeyMaterial:
--   https://docs.aws.amazon.com/kms/latest/APIReference/API_ImportKeyMaterial.html).
-- description: Automatic rotation exists only for customer-managed SYMMETRIC_DEFAULT keys with AWS_KMS material.
--   Asymmetric and HMAC keys (whatever their origin, imported included), imported symmetric material (origin
--   EXTERNAL) and custom key stores need a compensating practice, reported here for visibility. For a multi-Region
--   key with imported material, on-demand rotation needs the new material imported into the primary and every
--   replica first.
SELECT
  k.account_id,
  k.region,
  k.arn AS key_arn,
  CONCAT('Key ', k.arn, ' (', COALESCE(k.key_spec, 'unknown spec'), ', origin ', COALESCE(k.origin, 'unknown'), ') ',
         CASE
           WHEN k.eligibility = 'external_origin' AND k.multi_region = true
             THEN 'is a multi-Region key with imported material: automatic rotation does not apply, and on-demand rotation only after the new material is imported into the primary and then into every replica; otherwise replace the key and move the alias.'
           WHEN k.eligibility = 'external_origin'
             THEN 'has imported key material: rotate it on demand after importing new material, or replace the key.'
           WHEN k.eligibility = 'custom_key_store'
             THEN 'lives in a custom key store: replace it with a new key and move the alias.'
           ELSE 'is asymmetric or HMAC, which KMS rotates neither automatically nor on demand: replace it with a new key and move the alias on your cryptoperiod.'
         END) AS detail,
  CONCAT('eligibility = ', k.eligibility) AS evidence
FROM keys k
WHERE k.eligibility IN ('unsupported_spec', 'external_origin', 'custom_key_store')
