-- id: permission_failure
-- title: A principal was denied a rotation API call
-- severity: high
-- controls:
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
--   - NIST SP 800-53 AC-6
-- remediation: Find which layer denied the call (kmsrot diagnose KEY_ARN shows key-policy Deny statements and
--   the failures by principal): grant the action in the key policy and the principal's IAM policy, or stop the
--   caller if the call was not meant to happen.
-- aws: An assumed-role caller is named in CloudTrail by its session (userIdentity.arn), and the role it assumed
--   is userIdentity.sessionContext.sessionIssuer.arn, where the permissions that denied the call are attached
--   (AWS CloudTrail User Guide, CloudTrail userIdentity element:
--   https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html).
-- description: CloudTrail records calls to EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand,
--   GetKeyRotationStatus or ListKeyRotations that failed with an access denial (AccessDenied or
--   AccessDeniedException) in the audit window, grouped per key, caller, API and error code, with the count, first
--   and last time seen and the latest message. The caller of an assumed-role session is its role, so sessions
--   build-1, build-2, build-3 of one role are one finding, with the sessions in the evidence.
SELECT
  f.account_id,
  f.region,
  f.key_arn,
  CONCAT(f.caller, ' ', f.event_name, ' ', f.error_code) AS subject,
  CONCAT(f.caller, ' was denied ', f.event_name, ' (', f.error_code, ') ', CAST(f.failures AS VARCHAR), ' time(s)',
         CASE WHEN f.session_count > 0
              THEN CONCAT(' in ', CAST(f.session_count AS VARCHAR), ' session(s)') ELSE '' END,
         ', first ', STRFTIME(f.first_seen, '%Y-%m-%dT%H:%M:%SZ'),
         ', last ', STRFTIME(f.last_seen, '%Y-%m-%dT%H:%M:%SZ'), ': ', COALESCE(f.error_message, 'no message')) AS detail,
  CONCAT('CloudTrail events ', f.event_ids,
         CASE WHEN f.sessions IS NULL THEN '' ELSE CONCAT('; sessions: ', f.sessions) END,
         CASE WHEN f.key_arn_via IS NULL THEN '' ELSE CONCAT('; key named as ', f.key_arn_via) END) AS evidence
FROM call_failures f
WHERE f.access_denied = true
