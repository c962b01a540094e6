-- IMAP intake: per-folder checkpoints, per-account state for the CLI, messages left on the server.

-- Where each folder stands. Every UID <= last_uid is in the spool (or deliberately left on the
-- server); every UID <= done_uid has had its after-store action (seen/move/delete) applied.
-- last_uid moves in the same transaction as the spool rows, so a crash never skips a message.
CREATE TABLE imap_folders (
    account      TEXT    NOT NULL,
    folder       TEXT    NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL DEFAULT 0,
    done_uid     INTEGER NOT NULL DEFAULT 0,
    stored       INTEGER NOT NULL DEFAULT 0,     -- messages spooled from this folder (all UIDVALIDITYs)
    updated_at   TEXT    NOT NULL,
    PRIMARY KEY (account, folder)
) WITHOUT ROWID;

-- What each account's worker is doing, written by the daemon, read by `mailgate imap status`.
CREATE TABLE imap_accounts (
    account        TEXT    PRIMARY KEY,
    state          TEXT    NOT NULL,             -- connecting | idle | polling | fetching | backoff | auth-failed | stopped
    last_error     TEXT,
    last_error_at  TEXT,
    last_ok_at     TEXT,                         -- last complete pass over all folders
    next_try_at    TEXT,                         -- when a failed account tries again
    updated_at     TEXT    NOT NULL
) WITHOUT ROWID;

-- Messages above the size limit: left untouched on the server, reported here.
CREATE TABLE imap_skipped (
    account      TEXT    NOT NULL,
    folder       TEXT    NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    reason       TEXT    NOT NULL,
    at           TEXT    NOT NULL,
    PRIMARY KEY (account, folder, uidvalidity, uid)
) WITHOUT ROWID;
