-- id: exemption_expired
-- title: An exemption has expired
-- severity: low
-- controls:
--   - NIST SP 800-53 CA-7
--   - PCI DSS v4.0 12.4.1
-- remediation: Fix the findings it covered, or renew the exemption in kmsrot.toml with a new approver and
--   expiry date.
-- aws: An alias names one key per account and Region, so an exemption given by alias or key id is resolved to the
--   key(s) it matched in this bundle (AWS KMS Developer Guide, Aliases in AWS KMS:
--   https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html).
-- description: An exemption in the policy file is past its expiry date, so it no longer applies: the findings
--   it covered are open again. One finding per key the exemption matched (by key ARN, key id, alias or alias ARN),
--   naming that key's ARN, account and Region; an expired exemption that matches no key of the bundle covers
--   nothing here and is listed in the report's exemptions instead.
SELECT
  x.account_id,
  x.region,
  x.key_arn,
  CONCAT(x.rule, ' ', x.key) AS subject,
  CONCAT('The exemption of ', x.key,
         CASE WHEN x.key = x.key_arn THEN '' ELSE CONCAT(' (here: ', x.key_arn, ')') END,
         ' from rule ', x.rule, ' expired on ', x.expires, ' (reason: ', x.reason,
         '; approved by ', x.approver, '); the findings it covered are open again.') AS detail,
  CONCAT('kmsrot.toml exemption of ', x.key, ', expires ', x.expires, '; matches ',
         CAST(x.matched_keys AS VARCHAR), ' key(s)') AS evidence
FROM exemptions x
WHERE x.expired = true
  AND x.key_arn IS NOT NULL
