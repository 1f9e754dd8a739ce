-- sluice:no-transaction (a continuous aggregate cannot be created inside a transaction)
-- Hourly counts per event type, kept fresh by a refresh policy.
-- materialized_only = false (real-time aggregate): rows not yet materialized are counted
-- too, so the same query answers the same as plain PostgreSQL's view at any moment (since
-- TimescaleDB 2.13 the default is materialized-only, which hides the last minutes/hours).
-- start_offset => NULL: the policy refreshes every invalidated bucket, however old, so late
-- or replayed events (redrives, replays of old offsets) are counted too; refreshes only touch
-- invalidated ranges, so a window to the beginning costs nothing when nothing old changed.
CREATE MATERIALIZED VIEW IF NOT EXISTS event_counts_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS hour,
       event_type,
       count(*) AS events
FROM entity_event_logs
GROUP BY 1, 2
WITH NO DATA;

SELECT add_continuous_aggregate_policy('event_counts_hourly',
  start_offset => NULL,
  end_offset => INTERVAL '1 minute',
  schedule_interval => INTERVAL '1 minute',
  if_not_exists => TRUE);
