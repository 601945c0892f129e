-- id: exemption_expired
-- title: An exemption has expired
-- severity: low
-- controls:
--   - NIST SP 800-53 CA-7
--   - PCI DSS v4.0 12.4.1
-- remediation: Fix the findings it covered, or renew the exemption in kmsrot.toml with a new approver and
--   expiry date.
-- description: An exemption in the policy file is past its expiry date, so it no longer applies: the findings
--   it covered are open again.
SELECT
  k.account_id,
  k.region,
  COALESCE(k.arn, x.key) AS key_arn,
  CONCAT(x.rule, ' ', x.key) AS subject,
  CONCAT('The exemption of ', x.key, ' from rule ', x.rule, ' expired on ', x.expires, ' (reason: ', x.reason,
         '; approved by ', x.approver, '); the findings it covered are open again.') AS detail,
  CONCAT('kmsrot.toml exemption, expires ', x.expires) AS evidence
FROM exemptions x
LEFT JOIN keys k ON k.arn = x.key
WHERE x.expired = true
