-- Exactly once by event id, whatever the timestamp or content of a later copy. A hypertable's
-- unique keys must contain its time column, so the log cannot hold a key on event_id alone:
-- this plain table is the key, written in the same transaction as the log's rows. A row of
-- the log exists only for an event id inserted here first; a later copy of the id (another
-- timestamp, other content, a redelivery) finds it and is dropped.
--   timestamp     : the stored copy's time (with event_id, where to find its row in the log)
--   content_hash  : md5 of the stored copy's content columns as sluice encoded them (every
--                   column but timestamp, event id and origin); compared with a later copy's
--                   only to label the duplicate (identical, restamped, differing). NULL for
--                   events stored before this migration.
--   source_*      : the stored copy's Kafka origin (logged beside a differing copy's)
CREATE TABLE IF NOT EXISTS sluice_event_ids (
  event_id         TEXT        NOT NULL PRIMARY KEY,
  "timestamp"      TIMESTAMPTZ NOT NULL,
  content_hash     BYTEA,
  source_topic     TEXT        NOT NULL,
  source_partition INTEGER     NOT NULL,
  source_offset    BIGINT      NOT NULL
);

-- events stored before: the first copy of each id (in the log's fold order) is the stored one
INSERT INTO sluice_event_ids (event_id, "timestamp", source_topic, source_partition, source_offset)
SELECT DISTINCT ON (event_id) event_id, "timestamp", source_topic, source_partition, source_offset
FROM entity_event_logs
ORDER BY event_id, source_partition, source_offset, source_topic
ON CONFLICT DO NOTHING;

-- (event_id, timestamp) no longer decides anything: its index was only a cost per row
ALTER TABLE entity_event_logs DROP CONSTRAINT IF EXISTS entity_event_logs_pkey;
