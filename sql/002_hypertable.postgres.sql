-- Plain PostgreSQL: no hypertable or compression; the table of 001 serves every query.
SELECT 1;
