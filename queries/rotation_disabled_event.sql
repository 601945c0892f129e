-- id: rotation_disabled_event
-- title: Someone turned automatic rotation off
-- severity: medium
-- controls:
--   - CIS AWS Foundations 3.6
--   - AWS Security Hub KMS.4
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
--   - NIST SP 800-53 CM-3
-- remediation: Confirm the change was approved; if not, re-enable rotation
--   (aws kms enable-key-rotation --key-id KEY_ARN) and restrict kms:DisableKeyRotation in the key policy.
-- aws: DisableKeyRotation is logged by CloudTrail as a management event with the caller's identity, time and
--   source address (AWS KMS Developer Guide, Logging AWS KMS API calls with CloudTrail:
--   https://docs.aws.amazon.com/kms/latest/developerguide/logging-using-cloudtrail.html).
-- description: A successful DisableKeyRotation call in the audit window, with who made it and when.
SELECT
  e.account_id,
  e.aws_region AS region,
  e.key_arn,
  e.event_id AS subject,
  CONCAT(COALESCE(e.principal_arn, 'An unknown principal'), ' disabled automatic rotation on ',
         COALESCE(e.key_arn, 'an unresolved key'), ' at ', STRFTIME(e.event_time, '%Y-%m-%dT%H:%M:%SZ'),
         CASE WHEN e.source_ip IS NULL THEN '' ELSE CONCAT(' from ', e.source_ip) END, '.') AS detail,
  CONCAT('CloudTrail event ', e.event_id, ' in ', e.source) AS evidence
FROM events e
CROSS JOIN params p
WHERE e.event_name = 'DisableKeyRotation'
  AND e.error_code IS NULL
  AND e.event_time >= p.window_start
  AND e.event_time <= p.as_of
