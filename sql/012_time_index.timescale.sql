-- TimescaleDB: create_hypertable (002) already indexed the log by ("timestamp" DESC).
SELECT 1;
