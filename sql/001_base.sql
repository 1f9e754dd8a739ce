-- sluice base schema: the event log, the offsets stored with the data, the dead-letter table.
-- Runs on plain PostgreSQL and on TimescaleDB alike; 002+ add the Timescale specifics.

CREATE TABLE IF NOT EXISTS entity_event_logs (
  "timestamp"      TIMESTAMPTZ  NOT NULL,
  event_id         TEXT         NOT NULL,
  event_type       VARCHAR(100) NOT NULL,
  entity           VARCHAR(100),
  entity_id        VARCHAR(200),
  version          BIGINT,
  user_name        VARCHAR(200),
  workspace        VARCHAR(200),
  event_data       JSONB        NOT NULL,
  metadata         JSONB,
  correlation_id   TEXT,
  causation_id     TEXT,
  source_topic     TEXT         NOT NULL,
  source_partition INTEGER      NOT NULL,
  source_offset    BIGINT       NOT NULL,
  ingested_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
  -- producer duplicates (same eventId) are stored once; a hypertable's unique keys must
  -- include its time column, so the key is (event_id, timestamp) on both flavours
  PRIMARY KEY (event_id, "timestamp")
);

-- the seed's indexes, with time so that per-type / per-entity / per-user scans stay ordered
CREATE INDEX IF NOT EXISTS idx_event_type ON entity_event_logs (event_type, "timestamp" DESC);
CREATE INDEX IF NOT EXISTS idx_entity_id ON entity_event_logs (entity_id, "timestamp" DESC);
CREATE INDEX IF NOT EXISTS idx_user_name ON entity_event_logs (user_name, "timestamp" DESC);

-- Each partition's next offset, written in the same transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS sluice_offsets (
  consumer_group TEXT        NOT NULL,
  topic          TEXT        NOT NULL,
  partition      INTEGER     NOT NULL,
  next_offset    BIGINT      NOT NULL,
  updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic, partition)
);

-- Every dead-lettered message, with its reason and origin (also produced to <topic>.dlq).
CREATE TABLE IF NOT EXISTS sluice_dlq (
  id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  dead_lettered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  pipeline         TEXT        NOT NULL,
  stage            TEXT        NOT NULL,
  error_code       TEXT        NOT NULL,
  error_message    TEXT        NOT NULL,
  attempts         INTEGER     NOT NULL DEFAULT 1,
  source_topic     TEXT        NOT NULL,
  source_partition INTEGER     NOT NULL,
  source_offset    BIGINT      NOT NULL,
  message_key      BYTEA,
  message_value    BYTEA,
  message_ts       TIMESTAMPTZ,
  UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX IF NOT EXISTS idx_sluice_dlq_code ON sluice_dlq (error_code, dead_lettered_at DESC);
