-- The projection's batch fold (src/sinks/timescale/batch-fold.ts, src/state/projection.ts): a batch's
-- events of one entity, after its last *_CREATED, are applied as one merge of their changes
-- instead of one PL/pgSQL step per event. Both are built-in functions only, so the planner
-- inlines the first and runs the second's step in C.

-- The changes of an event's payload, as sluice_fold_step (sql/010_fold_step.sql) computes
-- them: payload.changes when it is an object, else the payload without its envelope fields.
CREATE OR REPLACE FUNCTION sluice_changes(payload jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN jsonb_typeof(payload -> 'changes') = 'object' THEN payload -> 'changes'
    WHEN jsonb_typeof(payload) = 'object' THEN payload - ARRAY['entity', 'entityId', 'entity_id', 'entityType', 'entity_type', 'user', 'userName', 'user_name', 'workspace']
    ELSE '{}'::jsonb END
$$;

-- Top-level merge of objects in order (`||` of each onto the previous, from '{}').
CREATE OR REPLACE AGGREGATE sluice_merge(jsonb) (
  SFUNC = jsonb_concat,
  STYPE = jsonb,
  INITCOND = '{}'
);
