-- The pool a connected agent serves and the labels it offers (a JSON
-- array); NULL for an inline worker node. See that engine's
-- 0014_agent_presence.sql.

ALTER TABLE longshore_workers ADD COLUMN pool TEXT;
ALTER TABLE longshore_workers ADD COLUMN labels TEXT;
