-- A timer whose handler keeps raising (a bug, or a row it cannot handle) is kept with its error
-- and, after a few tries, marked dead instead of failing again at every start.
ALTER TABLE timers ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE timers ADD COLUMN last_error TEXT;
ALTER TABLE timers ADD COLUMN dead_at TEXT;  -- set: no longer scheduled; the row stays for the operator
