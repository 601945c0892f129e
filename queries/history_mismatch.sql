-- id: history_mismatch
-- title: ListKeyRotations and CloudTrail disagree about a rotation
-- severity: medium
-- controls:
--   - NIST SP 800-53 AU-6
--   - PCI DSS v4.0 3.7.4
-- remediation: Compare aws kms list-key-rotations --key-id KEY_ARN with the CloudTrail events named in the
--   evidence; a rotation missing from CloudTrail on a day the trail covers means the trail lost events or
--   filtered them out (check its event selectors).
-- description: A successful RotateKey or RotateKeyOnDemand event with no ListKeyRotations entry within a day of
--   it (for keys whose history was read), or a ListKeyRotations entry in the audit window, on a day for which
--   CloudTrail logs exist, with no rotation event within a day of it. An on-demand rotation logs a
--   RotateKeyOnDemand call and a RotateKey service event; linked to each other, they count as one rotation.
WITH
trail_rot AS (
  SELECT e.event_id, e.account_id, e.aws_region AS region, e.key_arn, e.event_time
  FROM events e
  WHERE e.event_name IN ('RotateKey', 'RotateKeyOnDemand') AND e.error_code IS NULL
    AND NOT (e.event_name = 'RotateKeyOnDemand' AND e.linked_event_id IS NOT NULL)
),
trail_side AS (
  SELECT
    t.event_id, t.account_id, t.region, t.key_arn, t.event_time,
    MIN(ABS(EXTRACT(EPOCH FROM r.rotation_date) - EXTRACT(EPOCH FROM t.event_time))) AS nearest_seconds
  FROM trail_rot t
  JOIN keys k ON k.arn = t.key_arn
  LEFT JOIN rotations r ON r.key_arn = t.key_arn
  WHERE k.rotation_count IS NOT NULL
  GROUP BY t.event_id, t.account_id, t.region, t.key_arn, t.event_time
),
listed AS (
  SELECT r.account_id, r.region, r.key_arn, r.rotation_date, STRFTIME(r.rotation_date, '%Y-%m-%d') AS day
  FROM rotations r
  CROSS JOIN params p
  WHERE r.rotation_date >= p.window_start AND r.rotation_date <= p.as_of
),
listed_covered AS (
  SELECT l.account_id, l.region, l.key_arn, l.rotation_date
  FROM listed l
  JOIN trail_log_days d ON d.account_id = l.account_id AND d.region = l.region AND d.day = l.day
),
list_side AS (
  SELECT
    l.account_id, l.region, l.key_arn, l.rotation_date,
    MIN(ABS(EXTRACT(EPOCH FROM t.event_time) - EXTRACT(EPOCH FROM l.rotation_date))) AS nearest_seconds
  FROM listed_covered l
  LEFT JOIN trail_rot t ON t.key_arn = l.key_arn
  GROUP BY l.account_id, l.region, l.key_arn, l.rotation_date
)
SELECT
  account_id,
  region,
  key_arn,
  CONCAT('trail ', event_id) AS subject,
  CONCAT('CloudTrail records a rotation at ', STRFTIME(event_time, '%Y-%m-%dT%H:%M:%SZ'),
         ' that ListKeyRotations does not list.') AS detail,
  CONCAT('CloudTrail event ', event_id) AS evidence
FROM trail_side
WHERE nearest_seconds IS NULL OR nearest_seconds > 86400
UNION ALL
SELECT
  account_id,
  region,
  key_arn,
  CONCAT('listed ', STRFTIME(rotation_date, '%Y-%m-%dT%H:%M:%SZ')) AS subject,
  CONCAT('ListKeyRotations lists a rotation at ', STRFTIME(rotation_date, '%Y-%m-%dT%H:%M:%SZ'),
         ' but CloudTrail, which has logs for that day, records no rotation event near it.') AS detail,
  CONCAT('ListKeyRotations RotationDate ', STRFTIME(rotation_date, '%Y-%m-%dT%H:%M:%SZ')) AS evidence
FROM list_side
WHERE nearest_seconds IS NULL OR nearest_seconds > 86400
