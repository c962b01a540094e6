-- Outbound mail: the durable outbox, the timers table, a contact's language.

-- Every mail mailgate sends, rendered once, with one envelope recipient per row.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: VERP tokens name rows
    ticket_id    INTEGER REFERENCES tickets(id),
    kind         TEXT    NOT NULL,            -- ack | notify | resolved | reply | failed | held
    automatic    INTEGER NOT NULL,            -- 1: sent with Auto-Submitted (no person wrote it)
    agent        TEXT,                        -- the agent whose reply this is (kind 'reply')
    message_id   TEXT    NOT NULL UNIQUE,     -- without angle brackets
    mail_from    TEXT    NOT NULL,            -- envelope sender: the VERP bounce address
    from_name    TEXT    NOT NULL DEFAULT '',
    from_address TEXT    NOT NULL DEFAULT '',
    in_reply_to  TEXT,
    rcpt_to      TEXT    NOT NULL,            -- the one envelope recipient, lowercased
    subject      TEXT    NOT NULL DEFAULT '',
    text         TEXT    NOT NULL DEFAULT '', -- the plain-text body, for the ticket's message row
    raw          BLOB    NOT NULL,            -- the wire bytes handed to the relay
    not_before   TEXT    NOT NULL,            -- not sent earlier (delayed send, retry backoff)
    created_at   TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'queued',  -- queued | sending | sent | failed | held | cancelled
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    sent_at      TEXT,
    message_row  INTEGER REFERENCES messages(id)
);
CREATE INDEX outbox_due ON outbox(not_before) WHERE state = 'queued';
CREATE INDEX outbox_ticket ON outbox(ticket_id, state);
CREATE INDEX outbox_rcpt ON outbox(rcpt_to, created_at);  -- the hourly cap on automatic answers

-- Every due thing, written in the same transaction as the change that made it; the scheduler is
-- rebuilt from here at start, and a fired timer's row goes in the transaction of its effect.
CREATE TABLE timers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the scheduler loads ids above the last seen
    kind        TEXT    NOT NULL,             -- outbox.release | snooze.wake | sla.deadline ...
    ref         INTEGER NOT NULL,             -- the row it concerns (outbox id, ticket id ...)
    due_at      TEXT    NOT NULL,
    created_at  TEXT    NOT NULL
);
CREATE INDEX timers_due ON timers(due_at);
CREATE INDEX timers_ref ON timers(kind, ref);

-- The language a contact writes in (from Content-Language), for their acknowledgements.
ALTER TABLE contacts ADD COLUMN language TEXT;
