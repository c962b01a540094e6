-- Storm fuse: per sender and clock hour (UTC), how many mails went through as usual (a new ticket
-- or an agent notification) and how many were held over the cap (stored on the sender's ticket,
-- nobody told). The row with sender '' counts acknowledgements withheld by the installation-wide cap.
CREATE TABLE sender_hours (
    sender        TEXT    NOT NULL,           -- lowercased From address; '' = all senders (global ack cap)
    hour          TEXT    NOT NULL,           -- 'YYYY-MM-DDTHH' in UTC
    passed        INTEGER NOT NULL DEFAULT 0,
    held          INTEGER NOT NULL DEFAULT 0,
    ticket_id     INTEGER REFERENCES tickets(id),  -- where the held mail went
    released      INTEGER NOT NULL DEFAULT 0, -- an operator lifted the cap for this sender and hour
    first_held_at TEXT,
    last_held_at  TEXT,
    PRIMARY KEY (sender, hour)
) WITHOUT ROWID;
CREATE INDEX sender_hours_held ON sender_hours(hour) WHERE held > 0;
-- The installation-wide cap on acknowledgements counts them by time, across all recipients.
CREATE INDEX outbox_kind_created ON outbox(kind, created_at);
