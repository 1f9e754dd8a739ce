-- Plain PostgreSQL: the same relation, columns and queries as the continuous aggregate.
-- Hours are UTC hours, as time_bucket's are: date_trunc without a zone would truncate in the
-- session's TimeZone and differ from TimescaleDB wherever the offset is not whole hours.
CREATE OR REPLACE VIEW event_counts_hourly AS
SELECT date_trunc('hour', "timestamp", 'UTC') AS hour,
       event_type,
       count(*) AS events
FROM entity_event_logs
GROUP BY 1, 2;
