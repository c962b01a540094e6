-- Counts that /metrics and the watchdog read every few seconds. Rows hold the raw mail before
-- their state column, so counting by state without an index walks every blob's overflow pages
-- (0.2 s for a 500 MB spool, holding the store meanwhile); these indexes answer in microseconds.
CREATE INDEX spool_dead ON spool(id) WHERE state = 'dead';
CREATE INDEX outbox_state ON outbox(state);
