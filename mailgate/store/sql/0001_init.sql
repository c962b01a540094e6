-- Ingest core: spool, tickets, messages, contacts, attachments, events.

-- Every raw message as received, byte for byte, with its envelope: the source of truth.
CREATE TABLE spool (
    id           INTEGER PRIMARY KEY,
    sha256       TEXT    NOT NULL,
    raw          BLOB    NOT NULL,
    mail_from    TEXT    NOT NULL,            -- envelope sender; '' is the null sender
    rcpt_to      TEXT    NOT NULL,            -- JSON list of envelope recipients
    source       TEXT    NOT NULL,            -- smtp | lmtp | imap | pipe | import
    source_ref   TEXT,                        -- e.g. imap account/folder/uid
    imported     INTEGER NOT NULL DEFAULT 0,  -- old mail: never triggers automatic answers
    received_at  TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'received',  -- received | done | duplicate | dead
    attempts     INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    message_row  INTEGER REFERENCES messages(id)
);
CREATE INDEX spool_pending ON spool(id) WHERE state = 'received';
CREATE INDEX spool_sha256 ON spool(sha256);

CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL DEFAULT '',
    created_at  TEXT    NOT NULL
);

CREATE TABLE contact_addresses (
    address     TEXT    PRIMARY KEY,          -- lowercased addr-spec
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    created_at  TEXT    NOT NULL
);
CREATE INDEX contact_addresses_contact ON contact_addresses(contact_id);

CREATE TABLE tickets (
    id          INTEGER PRIMARY KEY,
    number      INTEGER NOT NULL UNIQUE,
    subject     TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'new',
    priority    TEXT    NOT NULL DEFAULT 'normal',
    queue       TEXT,
    assignee    TEXT,
    contact_id  INTEGER REFERENCES contacts(id),
    channel     TEXT    NOT NULL DEFAULT 'email',
    direction   TEXT    NOT NULL DEFAULT 'inbound',
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX tickets_updated ON tickets(updated_at);

-- Addresses that take part in a ticket: only they may thread into it by subject tag.
CREATE TABLE ticket_parties (
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    address     TEXT    NOT NULL,
    role        TEXT    NOT NULL,             -- requester | cc
    PRIMARY KEY (ticket_id, address)
) WITHOUT ROWID;

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    ticket_id     INTEGER NOT NULL REFERENCES tickets(id),
    spool_id      INTEGER REFERENCES spool(id),
    direction     TEXT    NOT NULL,           -- in | out
    message_id    TEXT    NOT NULL,
    content_key   TEXT    NOT NULL,           -- sha256 of the body bytes: same mail, other trace headers
    in_reply_to   TEXT,
    from_name     TEXT    NOT NULL DEFAULT '',
    from_address  TEXT    NOT NULL DEFAULT '',
    recipients    TEXT    NOT NULL,           -- JSON {"to": [...], "cc": [...], "reply_to": [...]}
    subject       TEXT    NOT NULL DEFAULT '',
    sent_at       TEXT,                       -- the Date header
    text          TEXT    NOT NULL DEFAULT '',
    html          TEXT,
    reply_text    TEXT    NOT NULL DEFAULT '',
    kind          TEXT    NOT NULL,           -- message | auto-reply | bounce | bulk
    bounce_of     TEXT,
    defects       TEXT    NOT NULL DEFAULT '[]',
    imported      INTEGER NOT NULL DEFAULT 0,
    thread_rule   TEXT    NOT NULL,           -- token | header | subject-tag | new
    thread_detail TEXT    NOT NULL DEFAULT '',
    created_at    TEXT    NOT NULL
);
CREATE UNIQUE INDEX messages_dedupe ON messages(message_id, content_key);
CREATE INDEX messages_ticket ON messages(ticket_id, id);

-- Every Message-ID mailgate has stored or sent, for threading by In-Reply-To/References.
CREATE TABLE message_ids (
    message_id  TEXT    PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    outbound    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Attachment contents, stored once on disk under their sha256, never under the sender's name.
CREATE TABLE blobs (
    sha256      TEXT    PRIMARY KEY,
    size        INTEGER NOT NULL,
    created_at  TEXT    NOT NULL
) WITHOUT ROWID;

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY,
    message_row   INTEGER NOT NULL REFERENCES messages(id),
    sha256        TEXT    NOT NULL REFERENCES blobs(sha256),
    filename      TEXT,
    content_type  TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    inline        INTEGER NOT NULL DEFAULT 0,
    content_id    TEXT
);
CREATE INDEX attachments_message ON attachments(message_row);

-- Every change to a ticket, in order.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    at          TEXT    NOT NULL,
    actor       TEXT    NOT NULL,             -- 'system', 'customer:<addr>', 'agent:<id>', 'cli'
    kind        TEXT    NOT NULL,
    data        TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX events_ticket ON events(ticket_id, id);
