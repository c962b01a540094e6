-- Ticket life: waiting, reopening and follow-up links, SLA clocks, richer contacts with notes.

-- Waiting ("snooze") uses tickets.snoozed_until and timers of kind 'snooze.wake' (0005_agent_mail).
-- When the ticket was last resolved: a later customer reply reopens it, or, past
-- tickets.reopen_days, opens a new linked ticket.
ALTER TABLE tickets ADD COLUMN resolved_at TEXT;

-- Tickets that belong together; kind 'follow-up': ticket_id was opened by a reply to other_id.
CREATE TABLE ticket_links (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    other_id    INTEGER NOT NULL REFERENCES tickets(id),
    kind        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    UNIQUE (ticket_id, other_id, kind)
);
CREATE INDEX ticket_links_other ON ticket_links(other_id, kind);

-- One SLA clock per ticket. It counts (business) minutes while it runs; it stops while the
-- ticket waits on the customer or is resolved. used_minutes holds what was counted before
-- running_since; the deadlines are recomputed from both whenever something changes.
CREATE TABLE ticket_sla (
    ticket_id               INTEGER PRIMARY KEY REFERENCES tickets(id),
    queue                   TEXT,
    priority                TEXT    NOT NULL,
    started_at              TEXT    NOT NULL,
    running_since           TEXT,             -- NULL: paused
    used_minutes            REAL    NOT NULL DEFAULT 0,
    first_response_minutes  INTEGER,          -- the targets in force (NULL: none)
    resolution_minutes      INTEGER,
    first_response_due      TEXT,             -- NULL while paused, met, or without target
    resolution_due          TEXT,
    first_response_at       TEXT,             -- met: an agent's reply reached the relay
    first_response_late     INTEGER,          -- 1: met after its deadline
    resolved_at             TEXT,             -- met: resolved or closed (cleared on reopen)
    resolution_late         INTEGER,
    first_response_warned   TEXT,             -- each warning and breach goes out once
    first_response_breached TEXT,
    resolution_warned       TEXT,
    resolution_breached     TEXT,
    updated_at              TEXT    NOT NULL
);

-- Contacts: who the customer is, how to reach them, what agents know about them.
ALTER TABLE contacts ADD COLUMN organization TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN title TEXT NOT NULL DEFAULT '';

CREATE TABLE contact_phones (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    phone       TEXT    NOT NULL,             -- as given, trimmed
    label       TEXT    NOT NULL DEFAULT '',  -- work, mobile ...
    created_at  TEXT    NOT NULL,
    UNIQUE (contact_id, phone)
);

-- Agents' notes on a contact; only the author edits or deletes one.
CREATE TABLE contact_notes (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    author      TEXT    NOT NULL,             -- agent id
    text        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX contact_notes_contact ON contact_notes(contact_id, created_at);
