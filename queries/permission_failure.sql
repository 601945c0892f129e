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
-- description: CloudTrail records calls to EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand,
--   GetKeyRotationStatus or ListKeyRotations that failed with AccessDenied or AccessDeniedException in the audit
--   window, grouped per key, principal, API and error code, with the count and first and last time seen.
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
    AND e.error_code IN ('AccessDenied', 'AccessDeniedException')
    AND e.event_time >= p.window_start
    AND e.event_time <= p.as_of
  GROUP BY e.account_id, e.aws_region, e.key_arn, e.principal_arn, e.event_name, e.error_code
)
SELECT
  f.account_id,
  f.region,
  f.key_arn,
  CONCAT(COALESCE(f.principal_arn, 'unknown principal'), ' ', f.event_name, ' ', f.error_code) AS subject,
  CONCAT(COALESCE(f.principal_arn, 'An unknown principal'), ' was denied ', f.event_name, ' (', f.error_code, ') ',
         CAST(f.n AS VARCHAR), ' time(s), first ', STRFTIME(f.first_seen, '%Y-%m-%dT%H:%M:%SZ'),
         ', last ', STRFTIME(f.last_seen, '%Y-%m-%dT%H:%M:%SZ'), ': ', COALESCE(f.message, 'no message')) AS detail,
  CONCAT('CloudTrail events ', f.event_ids,
         CASE WHEN f.key_via IS NULL THEN '' ELSE CONCAT('; key named as ', f.key_via) END) AS evidence
FROM failures f
