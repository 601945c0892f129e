-- rotation_failures: failed calls of a rotation API in the audit window, one row per key,
-- principal, API and error code, with how many, when first and last, a message, how the key was
-- named when not by its ARN (key_via), and the event ids. The engine derives it once for the rules
-- that read it: permission_failure (access_denied) and rotation_call_failed (every other error).
-- Columns: src/frames.rs ROTATION_FAILURES.
WITH failures AS (
  SELECT
    e.account_id,
    e.aws_region AS region,
    e.key_arn,
    e.principal_arn,
    e.event_name,
    e.error_code,
    COUNT(*) AS failed_calls,
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
    AND e.event_time >= p.window_start
    AND e.event_time <= p.as_of
  GROUP BY e.account_id, e.aws_region, e.key_arn, e.principal_arn, e.event_name, e.error_code
)
SELECT
  f.account_id,
  f.region,
  f.key_arn,
  f.principal_arn,
  f.event_name,
  f.error_code,
  f.failed_calls,
  f.first_seen,
  f.last_seen,
  f.message,
  f.key_via,
  f.event_ids,
  f.error_code IN ('AccessDenied', 'AccessDeniedException') AS access_denied
FROM failures f
