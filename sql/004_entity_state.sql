-- Entity state (the seeds' aggregates / read models): one row per entity, maintained in the
-- same transaction as the event COPY. Contract shared by the projection, snapshots and restore.
--   state      : the entity's current fields (JSONB object), NULL never (a tombstone keeps the
--                last state with deleted = true)
--   version    : the envelope version of the last applied event (NULL if events carry none)
--   position   : the Kafka origin of the last applied event (topic, partition, offset): the
--                fold's order; a new event before it (another partition) refolds the entity.
--                Only events the log's INSERT newly stored are applied: a redelivered or
--                duplicate event is never applied twice
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

-- ---------------------------------------------------------------------------------------------
-- The fold: ONE definition of how events make an entity's state, used by the live projection,
-- state-at-time, diffs, timelines, restores and snapshots (src/state/fold.ts mirrors it in JS
-- as the tests' reference). Semantics (README, "Entity state"):
--   changes of an event  = payload.changes when it is a JSON object, else the payload without
--                          its envelope fields (entity, entityId, entity_id, entityType,
--                          entity_type, user, userName, user_name, workspace)
--   *_CREATED            : state := changes, deleted := false
--   *_DELETED            : state kept, deleted := true (a tombstone)
--   any other event      : state := state || changes (top-level merge), deleted unchanged
-- Events are folded in partition order: (source_partition, source_offset, source_topic).
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION sluice_apply_event(state jsonb, event_type text, payload jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  changes jsonb;
  kind text := upper(event_type);
BEGIN
  IF kind LIKE '%\_DELETED' THEN
    RETURN coalesce(state, '{}'::jsonb);
  END IF;
  IF jsonb_typeof(payload -> 'changes') = 'object' THEN
    changes := payload -> 'changes';
  ELSIF jsonb_typeof(payload) = 'object' THEN
    changes := payload - ARRAY['entity', 'entityId', 'entity_id', 'entityType', 'entity_type', 'user', 'userName', 'user_name', 'workspace'];
  ELSE
    changes := '{}'::jsonb;
  END IF;
  IF kind LIKE '%\_CREATED' THEN
    RETURN changes;
  END IF;
  RETURN coalesce(state, '{}'::jsonb) || changes;
END
$$;

-- The fold's accumulator: the state and tombstone, the number of events folded, and the last
-- folded event (what entity_state keeps of it).
CREATE TYPE sluice_entity_fold AS (
  state            jsonb,
  deleted          boolean,
  events           bigint,
  version          bigint,
  updated_at       timestamptz,
  last_event_id    text,
  source_topic     text,
  source_partition integer,
  source_offset    bigint
);

-- One step. The pseudo event type 'sluice:base' (never a real type: ':' is refused by the
-- envelope) starts the fold from a known row instead of the empty state: its payload is
-- {"state": ..., "deleted": ...} and its origin the row's last event (snapshots, live rows).
CREATE OR REPLACE FUNCTION sluice_fold_step(acc sluice_entity_fold, event_type text, payload jsonb,
  version bigint, ts timestamptz, event_id text, topic text, part integer, off bigint)
RETURNS sluice_entity_fold LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF event_type = 'sluice:base' THEN
    acc.state := coalesce(payload -> 'state', '{}'::jsonb);
    acc.deleted := coalesce((payload ->> 'deleted')::boolean, false);
    acc.events := 0;
  ELSE
    acc.state := sluice_apply_event(coalesce(acc.state, '{}'::jsonb), event_type, payload);
    acc.deleted := CASE
      WHEN upper(event_type) LIKE '%\_DELETED' THEN true
      WHEN upper(event_type) LIKE '%\_CREATED' THEN false
      ELSE coalesce(acc.deleted, false) END;
    acc.events := coalesce(acc.events, 0) + 1;
  END IF;
  acc.version := version;
  acc.updated_at := ts;
  acc.last_event_id := event_id;
  acc.source_topic := topic;
  acc.source_partition := part;
  acc.source_offset := off;
  RETURN acc;
END
$$;

-- sluice_fold(event_type, event_data, version, "timestamp", event_id, source_topic,
--             source_partition, source_offset ORDER BY source_partition, source_offset, source_topic)
CREATE AGGREGATE sluice_fold(text, jsonb, bigint, timestamptz, text, text, integer, bigint) (
  SFUNC = sluice_fold_step,
  STYPE = sluice_entity_fold
);

-- Every restore of entity_state (live or into an audit schema), also logged as a
-- STATE_RESTORED event in entity_event_logs (entity NULL: never projected).
CREATE TABLE IF NOT EXISTS restorations (
  restoration_id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  requested_by     TEXT        NOT NULL,
  requested_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  completed_at     TIMESTAMPTZ,
  as_of            TIMESTAMPTZ NOT NULL,
  target           TEXT        NOT NULL CHECK (target IN ('live', 'audit')),
  target_schema    TEXT        NOT NULL,
  snapshot_id      TEXT,
  entities         BIGINT,
  events_replayed  BIGINT
);
