-- id: rotation_call_failed
-- title: A rotation API call failed for a reason other than access
-- severity: medium
-- controls: PCI DSS v4.0 3.7.4; NIST SP 800-53 SC-12
-- remediation: Read the error: DisabledException means enable the key first; KMSInvalidStateException means the
--   key is pending deletion or unavailable; UnsupportedOperationException means the key type cannot rotate
--   automatically (use a new key and an alias swap); ConflictException means an automatic rotation was due.
-- description: CloudTrail records failed calls to EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand,
--   GetKeyRotationStatus or ListKeyRotations in the audit window with an error other than an access denial,
--   grouped per key, principal, API and error code.
SELECT
  f.account_id,
  f.region,
  f.key_arn,
  CONCAT(COALESCE(f.principal_arn, 'unknown principal'), ' ', f.event_name, ' ', f.error_code) AS subject,
  CONCAT(f.event_name, ' by ', COALESCE(f.principal_arn, 'an unknown principal'), ' failed with ', f.error_code, ' ',
         CAST(f.failed_calls AS VARCHAR), ' time(s), first ', STRFTIME(f.first_seen, '%Y-%m-%dT%H:%M:%SZ'),
         ', last ', STRFTIME(f.last_seen, '%Y-%m-%dT%H:%M:%SZ'), ': ', COALESCE(f.message, 'no message')) AS detail,
  CONCAT('CloudTrail events ', f.event_ids,
         CASE WHEN f.key_via IS NULL THEN '' ELSE CONCAT('; key named as ', f.key_via) END) AS evidence
FROM rotation_failures f
WHERE NOT f.access_denied
