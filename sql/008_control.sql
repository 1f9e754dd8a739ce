-- The operator's control plane (docs/api.md): the audit of mutating requests, the state of
-- dead letters (redrive, discard), the group-wide desired pauses, offset moves and the
-- workers' heartbeats.

-- Every mutating API request: who, what, with which body, and how it ended.
CREATE TABLE IF NOT EXISTS sluice_audit (
  id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at           TIMESTAMPTZ NOT NULL DEFAULT now(),
  actor        TEXT        NOT NULL,              -- token name, jwt:<sub>, or anonymous
  auth_method  TEXT        NOT NULL,              -- token | jwt | anonymous | none (refused)
  method       TEXT        NOT NULL,
  route        TEXT        NOT NULL,              -- the route pattern, e.g. /admin/pause
  url          TEXT        NOT NULL,
  body         TEXT,                              -- the request body as JSON text (capped)
  status_code  INTEGER     NOT NULL,
  outcome      TEXT        NOT NULL,              -- ok | refused | failed
  detail       JSONB,                             -- what the request did (counts, offsets...)
  request_id   TEXT        NOT NULL,
  worker       TEXT        NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_sluice_audit_at ON sluice_audit (at DESC);

-- Dead letters: headers of the original message, and what became of each one.
--   status       : dead (as dead-lettered) | redriving (claimed by a redrive, being produced)
--                  | redriven | discarded
--   redrive_of   : a dead letter made by a redriven message: the dead letter it was redriven
--                  from (its `sluice-redrive-of` header)
ALTER TABLE sluice_dlq
  ADD COLUMN IF NOT EXISTS message_headers JSONB,
  ADD COLUMN IF NOT EXISTS status          TEXT NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'redriving', 'redriven', 'discarded')),
  ADD COLUMN IF NOT EXISTS status_at       TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS status_by       TEXT,
  ADD COLUMN IF NOT EXISTS redrive_request TEXT,
  ADD COLUMN IF NOT EXISTS redriven_to     TEXT,
  ADD COLUMN IF NOT EXISTS redriven_partition INTEGER,
  ADD COLUMN IF NOT EXISTS discard_reason  TEXT,
  ADD COLUMN IF NOT EXISTS redrive_of      BIGINT;
CREATE INDEX IF NOT EXISTS idx_sluice_dlq_status ON sluice_dlq (status, id);
CREATE INDEX IF NOT EXISTS idx_sluice_dlq_origin ON sluice_dlq (source_topic, source_partition, id);

-- The group's desired pauses (as Kafka Connect persists a connector's pause): one row per
-- paused partition, or partition -1 and topic '*' for "everything". Every worker applies them
-- to the partitions it owns, now and after each rebalance.
CREATE TABLE IF NOT EXISTS sluice_control_pauses (
  consumer_group TEXT        NOT NULL,
  topic          TEXT        NOT NULL,
  partition      INTEGER     NOT NULL,
  paused_by      TEXT        NOT NULL,
  paused_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic, partition)
);

-- Offset moves of paused partitions; the partition's owner seeks to to_offset.
CREATE TABLE IF NOT EXISTS sluice_offset_moves (
  id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  consumer_group TEXT        NOT NULL,
  topic          TEXT        NOT NULL,
  partition      INTEGER     NOT NULL,
  from_offset    BIGINT,
  to_offset      BIGINT      NOT NULL,
  requested_by   TEXT        NOT NULL,
  requested_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_sluice_offset_moves_group ON sluice_offset_moves (consumer_group, id);

-- Each worker's heartbeat: its assignment, positions, lag and pauses (GET /admin/status).
CREATE TABLE IF NOT EXISTS sluice_workers (
  consumer_group TEXT        NOT NULL,
  worker         TEXT        NOT NULL,
  host           TEXT        NOT NULL,
  pid            INTEGER     NOT NULL,
  started_at     TIMESTAMPTZ NOT NULL,
  heartbeat_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  status         JSONB       NOT NULL,
  PRIMARY KEY (consumer_group, worker)
);
