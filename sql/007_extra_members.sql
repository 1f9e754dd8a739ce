-- The top-level members of an event that no column holds (a `data` beside `payload`, unknown
-- members), as the producer wrote them: stored, never dropped. NULL when there are none.
ALTER TABLE entity_event_logs ADD COLUMN IF NOT EXISTS extra JSONB;
