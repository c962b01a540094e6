-- Ticket life: tasks for another queue, watchers and per-agent read state.

-- A task one queue asks of another, linked to a ticket, with a deadline ([task:QUEUE due:…]).
-- Its members answer by mail to a signed 't' address (token: task id, agent id); [done] closes it.
-- A timer row of kind 'task.due' reminds once when it is overdue (reminded_at says it did).
CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    queue       TEXT    NOT NULL,             -- the queue asked
    text        TEXT    NOT NULL,
    due_at      TEXT    NOT NULL,             -- UTC, the store's timestamp format
    status      TEXT    NOT NULL DEFAULT 'open',  -- open | done
    created_by  TEXT    NOT NULL,             -- agent id
    created_at  TEXT    NOT NULL,
    done_by     TEXT,
    done_at     TEXT,
    reminded_at TEXT
);
CREATE INDEX tasks_ticket ON tasks(ticket_id, status);
CREATE INDEX tasks_queue ON tasks(queue, status);

-- A task's answers are internal notes on its ticket; this says which task they answer.
ALTER TABLE messages ADD COLUMN task_id INTEGER REFERENCES tasks(id);

-- One row per agent who has touched a ticket: following (1) or not any more ([unfollow]: 0),
-- and whether a customer wrote since the agent last acted on it. No row: never read, not following.
CREATE TABLE ticket_watchers (
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    agent       TEXT    NOT NULL,
    following   INTEGER NOT NULL DEFAULT 1,
    unread      INTEGER NOT NULL DEFAULT 0,
    read_at     TEXT,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, agent)
) WITHOUT ROWID;
CREATE INDEX ticket_watchers_agent ON ticket_watchers(agent, unread);
