-- Ticket life: merge, forward, ask a colleague, split.

-- A merged ticket (status 'merged') points at the one that took over its messages; correlate
-- follows the pointer, so mail with the old ticket's tokens or tag lands in the survivor.
ALTER TABLE tickets ADD COLUMN merged_into INTEGER REFERENCES tickets(id);

-- One row per person a ticket was forwarded to ([forward:…]) or a colleague was asked ([help:…]).
-- Mail to them carries a signed 'f'/'h' token naming this row; answers become internal notes.
CREATE TABLE forwards (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    kind        TEXT    NOT NULL,             -- forward | help
    asked_by    TEXT    NOT NULL,             -- the agent id who forwarded or asked
    address     TEXT    NOT NULL,             -- the recipient, lowercased
    colleague   TEXT,                         -- help: the asked agent's id
    notes       INTEGER NOT NULL DEFAULT 0,   -- internal notes were included
    outbox_id   INTEGER,
    created_at  TEXT    NOT NULL,
    answers     INTEGER NOT NULL DEFAULT 0,
    answered_at TEXT
);
CREATE INDEX forwards_ticket ON forwards(ticket_id);

-- A ticket flagged for one agent (an answer to their question came in): first in their inbox
-- listing until they act on the ticket.
CREATE TABLE ticket_flags (
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    agent       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, agent)
) WITHOUT ROWID;
CREATE INDEX ticket_flags_agent ON ticket_flags(agent);
