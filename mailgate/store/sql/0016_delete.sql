-- Deleting tickets and messages, mail in an agent's name without proof, and read state that is not a follow.

-- A ticket an agent deleted ([delete], then [confirm]): hidden from every list, restorable to the
-- status it had until retention purges it.
ALTER TABLE tickets ADD COLUMN deleted_at TEXT;
ALTER TABLE tickets ADD COLUMN deleted_from TEXT;  -- the status [restore] gives back

-- One message deleted from a thread: hidden wherever the thread is read, kept until retention.
ALTER TABLE messages ADD COLUMN deleted_at TEXT;
ALTER TABLE messages ADD COLUMN deleted_by TEXT;  -- the agent id
-- The agent a message's From names when the mail did not prove it (no signed address, no trusted
-- Authentication-Results): kept as an outside party's mail, and marked so wherever a person reads it.
ALTER TABLE messages ADD COLUMN unproven_agent TEXT;

-- following was 1 (follows) or 0 ([unfollow]); marking a ticket read wrote 0 too, which silenced the
-- agent as if they had unfollowed. NULL is now "never said": read state without a follow decision.
CREATE TABLE ticket_watchers_new (
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    agent       TEXT    NOT NULL,
    following   INTEGER,               -- 1 follows, 0 said [unfollow], NULL neither
    unread      INTEGER NOT NULL DEFAULT 0,
    read_at     TEXT,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, agent)
) WITHOUT ROWID;
-- A 0 without an [unfollow] in the ticket's events came from marking read: it said nothing.
INSERT INTO ticket_watchers_new (ticket_id, agent, following, unread, read_at, updated_at)
    SELECT w.ticket_id, w.agent,
           CASE WHEN w.following = 0 AND NOT EXISTS (
                    SELECT 1 FROM events e WHERE e.ticket_id = w.ticket_id AND e.kind = 'ticket.unfollowed'
                    AND e.actor = 'agent:' || w.agent) THEN NULL ELSE w.following END,
           w.unread, w.read_at, w.updated_at
    FROM ticket_watchers w;
DROP TABLE ticket_watchers;
ALTER TABLE ticket_watchers_new RENAME TO ticket_watchers;
CREATE INDEX ticket_watchers_agent ON ticket_watchers(agent, unread);
