-- Plain PostgreSQL: the log's index on its time column, the one a hypertable gets by default
-- (create_hypertable's ("timestamp" DESC)). Without it max("timestamp"), which every state
-- dump reads for its as_of (src/sinks/s3/state-dump.ts), scanned the whole log: 50-60 ms at
-- 300,000 rows, growing with the log.
CREATE INDEX IF NOT EXISTS idx_event_time ON entity_event_logs ("timestamp" DESC);
