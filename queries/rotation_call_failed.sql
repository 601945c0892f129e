-- id: rotation_call_failed
-- title: A rotation API call failed for a reason other than access
-- severity: medium
-- controls:
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
-- remediation: Read the error: DisabledException means enable the key first; KMSInvalidStateException means the
--   key is pending deletion or unavailable; UnsupportedOperationException means the key type cannot rotate
--   automatically (use a new key and an alias swap); ConflictException means an automatic rotation was due.
-- aws: EnableKeyRotation fails with DisabledException on a disabled key, KMSInvalidStateException in other
--   unusable states and UnsupportedOperationException on key types that cannot rotate automatically (AWS KMS API
--   Reference, EnableKeyRotation: https://docs.aws.amazon.com/kms/latest/APIReference/API_EnableKeyRotation.html).
-- description: CloudTrail records failed calls to EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand,
--   GetKeyRotationStatus or ListKeyRotations in the audit window with an error other than an access denial,
--   grouped per key, caller (the role of an assumed-role session), API and error code.
SELECT
  f.account_id,
  f.region,
  f.key_arn,
  CONCAT(f.caller, ' ', f.event_name, ' ', f.error_code) AS subject,
  CONCAT(f.event_name, ' by ', f.caller, ' failed with ', f.error_code, ' ', CAST(f.failures AS VARCHAR), ' time(s)',
         CASE WHEN f.session_count > 0
              THEN CONCAT(' in ', CAST(f.session_count AS VARCHAR), ' session(s)') ELSE '' END,
         ', first ', STRFTIME(f.first_seen, '%Y-%m-%dT%H:%M:%SZ'),
         ', last ', STRFTIME(f.last_seen, '%Y-%m-%dT%H:%M:%SZ'), ': ', COALESCE(f.error_message, 'no message')) AS detail,
  CONCAT('CloudTrail events ', f.event_ids,
         CASE WHEN f.sessions IS NULL THEN '' ELSE CONCAT('; sessions: ', f.sessions) END,
         CASE WHEN f.key_arn_via IS NULL THEN '' ELSE CONCAT('; key named as ', f.key_arn_via) END) AS evidence
FROM call_failures f
WHERE f.access_denied = false
