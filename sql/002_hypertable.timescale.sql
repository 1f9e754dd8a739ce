-- TimescaleDB only: hypertable on the time column, compression segmented by entity.
SELECT create_hypertable('entity_event_logs', by_range('timestamp', INTERVAL '1 day'),
                         if_not_exists => TRUE, migrate_data => TRUE);

ALTER TABLE entity_event_logs SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'entity_id',
  timescaledb.compress_orderby = '"timestamp" DESC, event_id'
);

SELECT add_compression_policy('entity_event_logs', INTERVAL '7 days', if_not_exists => TRUE);
