-- Routing: queue/priority/category/tags decided by rules for a new ticket, with the trace of why.

ALTER TABLE tickets ADD COLUMN category TEXT;
-- Kept, but not shown as a ticket (tickets list hides it unless asked).
ALTER TABLE tickets ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
-- A rule (or quarantine) said: send no acknowledgement to the customer for this ticket.
ALTER TABLE tickets ADD COLUMN ack_suppressed INTEGER NOT NULL DEFAULT 0;
-- The language guessed from the first message (en fi pl hu de sv), NULL when unsure.
ALTER TABLE tickets ADD COLUMN detected_language TEXT;
CREATE INDEX tickets_queue ON tickets(queue, status);
CREATE INDEX tickets_assignee ON tickets(assignee, status);

CREATE TABLE ticket_tags (
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    tag         TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, tag)
) WITHOUT ROWID;
CREATE INDEX ticket_tags_tag ON ticket_tags(tag, ticket_id);

-- Why a ticket got its queue, priority, assignee …: the rules that matched, as JSON.
CREATE TABLE ticket_routing (
    ticket_id   INTEGER PRIMARY KEY REFERENCES tickets(id),
    decided_at  TEXT    NOT NULL,
    trace       TEXT    NOT NULL
);

-- Round-robin assignment: the agent who got the last ticket of each queue.
CREATE TABLE queue_rotation (
    queue       TEXT    PRIMARY KEY,
    last_agent  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
) WITHOUT ROWID;
