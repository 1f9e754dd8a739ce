-- The snapshot index: one row per snapshot object in S3, written in the same transaction as
-- the partition's stored offset (for snapshots that arrive as events) or after the upload
-- completed (for snapshots sluice makes itself on SNAPSHOT_TRIGGERED).
--   kind        : 'inline' (SNAPSHOT_CREATED carried it), 'chunked' (SNAPSHOT_CHUNK messages),
--                 'state' (sluice dumped entity_state itself: gzip'd NDJSON, one entity_state
--                 row per line, as row_to_json gives it)
--   covers      : for 'state' snapshots, the event-log position the dump covers: a JSON array of
--                 {topic, partition, offset} (next offsets of sluice_offsets read in the dump's
--                 repeatable-read transaction; every event before them is in the dump)
--   as_of       : for 'state' snapshots, max("timestamp") of the events the dump covers
CREATE TABLE IF NOT EXISTS snapshots (
  snapshot_id   TEXT        PRIMARY KEY,
  object_key    TEXT        NOT NULL,
  kind          TEXT        NOT NULL CHECK (kind IN ('inline', 'chunked', 'state')),
  created_at    TIMESTAMPTZ NOT NULL,
  created_by    TEXT,
  trigger_event TEXT,
  version       BIGINT,
  counts        JSONB       NOT NULL DEFAULT '{}'::jsonb,
  checksum      TEXT        NOT NULL, -- 'sha256:<hex>' of the stored bytes
  size_bytes    BIGINT      NOT NULL,
  etag          TEXT,
  covers        JSONB,
  as_of         TIMESTAMPTZ,
  source_topic     TEXT,
  source_partition INTEGER,
  source_offset    BIGINT,
  indexed_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_snapshots_created ON snapshots (created_at DESC);
CREATE INDEX IF NOT EXISTS idx_snapshots_as_of ON snapshots (as_of DESC) WHERE kind = 'state';

-- Multipart uploads sluice has started and not finished: a crash or rebalance leaves them
-- here, and the worker aborts them (S3 AbortMultipartUpload) before restarting a snapshot.
CREATE TABLE IF NOT EXISTS snapshot_uploads (
  snapshot_id   TEXT        PRIMARY KEY,
  object_key    TEXT        NOT NULL,
  upload_id     TEXT        NOT NULL,
  started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  source_topic     TEXT,
  source_partition INTEGER,
  source_offset    BIGINT
);
