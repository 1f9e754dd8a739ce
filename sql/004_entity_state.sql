-- Entity state (the seeds' aggregates / read models): one row per entity, maintained in the
-- same transaction as the event COPY. Contract shared by the projection, snapshots and restore.
--   state      : the entity's current fields (JSONB object), NULL never (a tombstone keeps the
--                last state with deleted = true)
--   version    : the envelope version of the last applied event (NULL if events carry none)
--   position   : the Kafka origin of the last applied event (topic, partition, offset), so that a
--                redelivered event is never applied twice
CREATE TABLE IF NOT EXISTS entity_state (
  entity           VARCHAR(100) NOT NULL,
  entity_id        VARCHAR(200) NOT NULL,
  version          BIGINT,
  state            JSONB        NOT NULL DEFAULT '{}'::jsonb,
  deleted          BOOLEAN      NOT NULL DEFAULT false,
  updated_at       TIMESTAMPTZ  NOT NULL,
  last_event_id    TEXT         NOT NULL,
  source_topic     TEXT         NOT NULL,
  source_partition INTEGER      NOT NULL,
  source_offset    BIGINT       NOT NULL,
  PRIMARY KEY (entity, entity_id)
);
