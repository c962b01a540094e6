"""The store: every table's statements, on SQLite (store/sqlite.py) or PostgreSQL (store/pg.py).

Two engines run the same modules:
    sqlite      one file, one connection, WAL; SQL in store/sql/
    pg          several daemons on one database; SQL in store/sql_pg/, statements mapped by store/dialect.py
Both write schema_version while migrating; pg also sends NOTIFY (no table) after commits that queued work.

Every write to a table is in one module (reads join anywhere: the read models ticket_view, outbox_view,
stats, export, report; the finders erase, retention, threads, ticket_facts, sent); triggers write three:

    tickets     tickets                    messages  messages, message_ids (also triggers 0021), attachments
    parties     ticket_parties             blobs     blobs (and the files under their sha256)
    contacts    contacts, contact_addresses, contact_phones, contact_notes        tags  ticket_tags
    assignment  ticket_routing, queue_rotation; reads agent_open (triggers on tickets, 0014: _insert,
                _leave, _enter, _delete keep each assignee's count of open tickets)
    events      events                     links     ticket_links           report  report_sent
    sla         ticket_sla                 watchers  ticket_watchers        tasks   tasks
    forwards    forwards, ticket_flags     message_marks  messages.deleted_at/_by, unproven_agent
    spool       spool                      outbox    outbox                 timers  timers
    outbox_leases  outbox.state, attempts, claimed_by, lease_until (the sender's claims, leased per node)
    search      search_text (FTS5 over messages, written by triggers on messages, 0015: _insert,
                _update, _delete; search.forget_deleted only runs 'optimize')
    storms      sender_hours               imap      imap_accounts, imap_folders, imap_skipped
    schema      (reads schema_version; Store._migrate writes it and runs store/sql/)
    copy        every table but schema_version and search_text, into another store (`mailgate db copy`);
                reads sqlite_master, PRAGMA table_info / foreign_key_list; sqlite_sequence or setval()

How the SQLite-only constructs run on PostgreSQL (the rest is standard SQL both run: ON CONFLICT,
RETURNING, LIMIT in subqueries, ||, SAVEPOINT, window functions; a subquery in FROM has an alias,
a LEFT JOIN an ON, a condition is a comparison, never a bare integer):
    ? :name, INSERT OR IGNORE, LIKE, lastrowid   dialect.py maps them per statement
    instr() group_concat() json_extract()        SQL functions of the same names in sql_pg/0001
    json_group_array(json_array())               ticket_facts (json_agg/json_build_array)
    CAST(blob AS TEXT)   erase._raw_text (encode(raw, 'escape'))
    PRAGMA               sqlite.py (busy_timeout, journal_mode, synchronous, foreign_keys); erase.secure_delete and
                         stats.data_version (no-ops there), backup (SQLite only: `db backup` refuses PostgreSQL)
    BEGIN IMMEDIATE      sqlite.Store._begin; pg.PgStore.txn: BEGIN + pg_advisory_xact_lock (writers in turn)
    sqlite_master        schema.schema_of; sqlite_sequence: outbox_ids, ticket_facts (nextval on PostgreSQL)
    WITHOUT ROWID, INTEGER PRIMARY KEY AUTOINCREMENT   store/sql/ (identity columns in sql_pg/)
    FTS5                 search (MATCH, rowid, bm25, snippet, 'delete'/'optimize'; tsvector + GIN: see there)
    CREATE TRIGGER … WHEN … BEGIN … END (NEW./OLD.)   0014, 0015, 0021 (PostgreSQL: plpgsql trigger functions):
                         0021's outbox_message_id and inbound_message_id index each Message-ID in its INSERT
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailgate.clock import Clock
from mailgate.store.schema import migrations as migrations
from mailgate.store.schema import newest_schema as newest_schema
from mailgate.store.schema import schema_of as schema_of
from mailgate.store.sqlite import CommitListener as CommitListener
from mailgate.store.sqlite import DatabaseError as DatabaseError
from mailgate.store.sqlite import SchemaTooNew as SchemaTooNew
from mailgate.store.sqlite import Store as Store
from mailgate.store.sqlite import StoreUnavailable as StoreUnavailable
from mailgate.store.sqlite import TransientError as TransientError
from mailgate.store.turns import Priority as Priority
from mailgate.store.txn import Row as Row
from mailgate.store.txn import Txn as Txn

if TYPE_CHECKING:
    from mailgate.config import Config


def store_for(config: Config, clock: Clock | None = None) -> Store:
    """The store a config names (not yet open; use `async with`)."""
    storage = config.storage
    if storage.url is not None:
        from mailgate.store.pg import PgStore
        from mailgate.store.url import Location

        try:
            location = Location.of(storage.url, storage.password_file, storage.password_env)
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(f"storage.password: {exc}") from exc
        return PgStore(location, clock=clock, connect_timeout=storage.connect_timeout)
    return Store(
        config.database_path,
        synchronous=config.storage.synchronous,
        busy_timeout_ms=int(config.storage.busy_timeout * 1000),
        clock=clock,
    )


async def open_store(config: Config, clock: Clock | None = None) -> Store:
    return await store_for(config, clock).open()
