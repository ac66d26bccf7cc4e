-- PostgreSQL moves its word indexes to side tables here (see its 0009); SQLite's FTS5
-- indexes already are separate tables, so there is nothing to change.
SELECT 1;
