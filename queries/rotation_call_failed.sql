-- id: rotation_call_failed
-- title: A rotation API call failed for a reason other than access
-- severity: medium
-- controls:
--   - PCI DSS v4.0 3.7.4
--   - NIST SP 800-53 SC-12
-- remediation: Read the error: DisabledException means enable the key first; KMSInvalidStateException means the
--   key is pending deletion or unavailable; UnsupportedOperationException means the key type cannot rotate
--   automatically (use a new key and an alias swap); ConflictException means an automatic rotation was due.
-- description: CloudTrail records failed calls to EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand,
--   GetKeyRotationStatus or ListKeyRotations in the audit window with an error other than an access denial,
--   grouped per key, principal, API and error code.
WITH failures AS (
  SELECT
    e.account_id,
    e.aws_region AS region,
    e.key_arn,
    e.principal_arn,
    e.event_name,
    e.error_code,
    COUNT(*) AS n,
    MIN(e.event_time) AS first_seen,
    MAX(e.event_time) AS last_seen,
    MAX(e.error_message) AS message,
    MAX(e.key_arn_via) AS key_via,
    STRING_AGG(e.event_id, ' ') AS event_ids
  FROM events e
  CROSS JOIN params p
  WHERE e.event_name IN ('EnableKeyRotation', 'DisableKeyRotation', 'RotateKeyOnDemand',
                         'GetKeyRotationStatus', 'ListKeyRotations')
    AND e.error_code IS NOT NULL
    AND e.error_code NOT IN ('AccessDenied', 'AccessDeniedException')
    AND e.event_time >= p.window_start
    AND e.event_time <= p.as_of
  GROUP BY e.account_id, e.aws_region, e.key_arn, e.principal_arn, e.event_name, e.error_code
)
SELECT
  f.account_id,
  f.region,
  f.key_arn,
  CONCAT(COALESCE(f.principal_arn, 'unknown principal'), ' ', f.event_name, ' ', f.error_code) AS subject,
  CONCAT(f.event_name, ' by ', COALESCE(f.principal_arn, 'an unknown principal'), ' failed with ', f.error_code, ' ',
         CAST(f.n AS VARCHAR), ' time(s), first ', STRFTIME(f.first_seen, '%Y-%m-%dT%H:%M:%SZ'),
         ', last ', STRFTIME(f.last_seen, '%Y-%m-%dT%H:%M:%SZ'), ': ', COALESCE(f.message, 'no message')) AS detail,
  CONCAT('CloudTrail events ', f.event_ids,
         CASE WHEN f.key_via IS NULL THEN '' ELSE CONCAT('; key named as ', f.key_via) END) AS evidence
FROM failures f
