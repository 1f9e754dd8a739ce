-- GET /events/stream reads the event log per Kafka partition after a position: an index on
-- the origin makes that a range scan, and a statement-level trigger wakes the readers up
-- (NOTIFY is delivered at commit, so only durable rows ever wake anyone). The payload is the
-- schema, so that readers of one schema ignore the batches of another.
CREATE INDEX IF NOT EXISTS idx_event_origin ON entity_event_logs (source_topic, source_partition, source_offset);

CREATE OR REPLACE FUNCTION sluice_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sluice_events', TG_TABLE_SCHEMA);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sluice_events_notify ON entity_event_logs;
CREATE TRIGGER sluice_events_notify AFTER INSERT ON entity_event_logs
  FOR EACH STATEMENT EXECUTE FUNCTION sluice_notify_events();
