-- id: history_mismatch
-- title: ListKeyRotations and CloudTrail disagree about a rotation
-- severity: medium
-- controls:
--   - NIST SP 800-53 AU-6
--   - PCI DSS v4.0 3.7.4
-- remediation: Compare aws kms list-key-rotations --key-id KEY_ARN with the CloudTrail events named in the
--   evidence; a rotation missing from CloudTrail on a day the trail covers means the trail lost events or
--   filtered them out (check its event selectors).
-- aws: ListKeyRotations lists completed rotations only, and an on-demand rotation still in progress shows as
--   OnDemandRotationStartDate in GetKeyRotationStatus (AWS KMS API Reference, RotateKeyOnDemand:
--   https://docs.aws.amazon.com/kms/latest/APIReference/API_RotateKeyOnDemand.html); CloudTrail files a log under
--   the time it delivers it, so an event can arrive in the next day's files (AWS CloudTrail User Guide, Finding your
--   CloudTrail log files: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html).
-- description: A successful RotateKey or RotateKeyOnDemand event with no ListKeyRotations entry within a day of it
--   (for keys whose history was read), leaving out the on-demand rotation the key reports as still in progress; or
--   a ListKeyRotations entry in the audit window with no rotation event within a day of it, judged only where
--   CloudTrail has log files for the rotation's day and the next (its event may be delivered the next day). An
--   on-demand rotation logs a RotateKeyOnDemand call and a RotateKey service event; linked to each other, they
--   count as one rotation.
WITH
trail_side AS (
  SELECT
    t.event_id, t.account_id, t.region, t.key_arn, t.event_time,
    MIN(ABS(EXTRACT(EPOCH FROM r.rotation_date) - EXTRACT(EPOCH FROM t.event_time))) AS nearest_seconds
  FROM trail_rotations t
  JOIN key_clock c ON c.key_arn = t.key_arn
  LEFT JOIN rotations r ON r.key_arn = t.key_arn
  WHERE c.history_read = true AND t.in_progress = false
    AND NOT (t.event_name = 'RotateKeyOnDemand' AND t.linked_event_id IS NOT NULL)
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
  WHERE d.next_day_logged = true
),
list_side AS (
  SELECT
    l.account_id, l.region, l.key_arn, l.rotation_date,
    MIN(ABS(EXTRACT(EPOCH FROM t.event_time) - EXTRACT(EPOCH FROM l.rotation_date))) AS nearest_seconds
  FROM listed_covered l
  LEFT JOIN trail_rotations t ON t.key_arn = l.key_arn
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
         ' but CloudTrail, which has log files for that day and the next, records no rotation event near it.') AS detail,
  CONCAT('ListKeyRotations RotationDate ', STRFTIME(rotation_date, '%Y-%m-%dT%H:%M:%SZ')) AS evidence
FROM list_side
WHERE nearest_seconds IS NULL OR nearest_seconds > 86400
