-- id: permission_failure
-- title: A principal was denied a rotation API call
-- severity: high
-- controls: PCI DSS v4.0 3.7.4; NIST SP 800-53 SC-12; NIST SP 800-53 AC-6
-- remediation: Find which layer denied the call (kmsrot diagnose KEY_ARN shows key-policy Deny statements and
--   the failures by principal): grant the action in the key policy and the principal's IAM policy, or stop the
--   caller if the call was not meant to happen.
-- description: CloudTrail records calls to EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand,
--   GetKeyRotationStatus or ListKeyRotations that failed with AccessDenied or AccessDeniedException in the audit
--   window, grouped per key, principal, API and error code, with the count and first and last time seen.
SELECT
  f.account_id,
  f.region,
  f.key_arn,
  CONCAT(COALESCE(f.principal_arn, 'unknown principal'), ' ', f.event_name, ' ', f.error_code) AS subject,
  CONCAT(COALESCE(f.principal_arn, 'An unknown principal'), ' was denied ', f.event_name, ' (', f.error_code, ') ',
         CAST(f.failed_calls AS VARCHAR), ' time(s), first ', STRFTIME(f.first_seen, '%Y-%m-%dT%H:%M:%SZ'),
         ', last ', STRFTIME(f.last_seen, '%Y-%m-%dT%H:%M:%SZ'), ': ', COALESCE(f.message, 'no message')) AS detail,
  CONCAT('CloudTrail events ', f.event_ids,
         CASE WHEN f.key_via IS NULL THEN '' ELSE CONCAT('; key named as ', f.key_via) END) AS evidence
FROM rotation_failures f
WHERE f.access_denied
