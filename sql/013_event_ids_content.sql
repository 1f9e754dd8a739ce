-- sluice_event_ids.content_hash is no longer written (NULL for ids stored from now on): a copy
-- of a stored id is labelled (identical, restamped, differing) by comparing its row with the
-- stored copy's log row, which the id's timestamp finds through the log's time index, only
-- when a duplicate arrives, rather than by an md5 of every event's content (src/sinks/
-- timescale/event-sink.ts). The column stays for workers of the previous version during a
-- rolling upgrade, which still write it.
COMMENT ON COLUMN sluice_event_ids.content_hash IS 'not written since sql/013: duplicates are compared with the stored log row';
