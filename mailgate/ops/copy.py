"""Moving an installation to another database: every table copied by key, brought up to date on re-runs, checked.

The source may be a running installation: it is read in batches, each from a short read
transaction (a daemon keeps writing meanwhile, and a long one would hold SQLite's WAL from being
checkpointed). A run makes the target equal to the source as each batch was read: rows the source
no longer has go (children first), new rows go in (parents first), rows whose values differ are
updated, references that had to wait (cycles, a ticket merged into a later one) are set last, and
the tables the target's triggers write are synced after everything that fires them. Then both
sides are read again and each table's rows and sha256 compared. What changed in the source during
the run shows as a table whose source checksum moved between the copy and the check, or whose rows
waited for a row the source gained after its table was copied: the run is repeated, and the last
one, the switch-over, runs with the daemons stopped (nothing can be both copied and still written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from mailgate.errors import Refused
from mailgate.store import Store, Txn
from mailgate.store import copy as tables_sql
from mailgate.store.copy import Checksum, Key, Table, Values

BATCH = 500
BUDGET = 32 * 1024 * 1024  # bytes of mail (spool and outbox BLOBs) per batch


class Progress(Protocol):
    """Told how far a run is: one table at a time, by rows."""

    def begin(self, step: str, table: str, total: int) -> None: ...
    def advance(self, rows: int) -> None: ...
    def end(self) -> None: ...


class Silent:
    def begin(self, step: str, table: str, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass(slots=True)
class Copied:
    """What one run did to one table, and what the check found."""

    table: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    linked: int = 0  # deferred references set (most on a first run: rows inserted without them)
    waiting: int = 0  # rows naming a row the source gained after its table was copied
    read_sum: str = ""  # the source as the copy read it
    source_rows: int = 0
    source_sum: str = ""
    target_rows: int = 0
    target_sum: str = ""

    @property
    def matches(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum

    @property
    def moved(self) -> bool:
        """The source changed between the copy and the check: written while the run went."""
        return self.read_sum != self.source_sum

    @property
    def changes(self) -> int:
        return self.inserted + self.updated + self.deleted + self.linked


@dataclass(slots=True)
class Run:
    tables: list[Copied] = field(default_factory=list)

    @property
    def mismatched(self) -> list[str]:
        return [t.table for t in self.tables if not t.matches]

    @property
    def written_meanwhile(self) -> list[str]:
        """Tables the source changed during the run, or whose rows waited for a row it gained meanwhile."""
        return [t.table for t in self.tables if t.moved or t.waiting]

    @property
    def changes(self) -> int:
        return sum(t.changes for t in self.tables)


async def copy(source: Store, target: Store, *, batch: int = BATCH, progress: Progress | None = None) -> Run:
    """Make `target` (open, migrated) equal to `source`, then check every table on both sides."""
    shown = progress or Silent()
    async with source.read() as tx:
        plan = await tables_sql.tables(tx)
        counters = await tables_sql.sequences(tx)
    async with target.read() as tx:
        theirs = await tables_sql.landmarks(tx)
    async with source.read() as tx:
        ours = await tables_sql.landmarks(tx, list(theirs))
    # Copying makes the target equal to the source, deleting what the source lacks: never over
    # another installation's tickets (a wrong --to), only over an earlier copy of this one.
    if theirs and (not ours or any(theirs[id_] != row for id_, row in ours.items())):
        raise Refused("the target holds tickets of another installation: copy into an empty database"
                      " or into an earlier copy of this one")
    run = Run([Copied(t.name) for t in plan])
    done = {c.table: c for c in run.tables}
    ordinary = [t for t in plan if not t.derived]
    for table in reversed(plan):
        await _remove_gone(source, target, table, plan, batch, done[table.name])
    for table in ordinary:
        await _sync(source, target, table, table.columns, batch, done[table.name], shown)
    for table in ordinary:
        if table.deferred:
            await _sync(source, target, table, table.key + table.deferred, batch, done[table.name], None)
    for table in plan:
        if table.derived:
            await _remove_gone(source, target, table, plan, batch, done[table.name])
            await _sync(source, target, table, table.columns, batch, done[table.name], shown)
    async with target.txn() as tx:
        for table in plan:
            await tables_sql.move_sequence(tx, table, counters.get(table.name, 0))
    for table in plan:
        await check(source, target, table, batch, done[table.name], shown)
    return run


async def _remove_gone(source: Store, target: Store, table: Table, plan: list[Table], batch: int, copied: Copied) -> None:
    """Delete the target's rows of `table` whose keys the source no longer has; rows that name them let go first."""
    after: Key | None = None
    while True:
        async with source.read() as tx:
            keys = [tuple(r) for r in await tables_sql.rows(tx, table, table.key, after, limit=batch)]
        upto = keys[-1] if len(keys) == batch else None
        async with target.txn() as tx:
            have = await tables_sql.rows(tx, table, table.key, after, upto=upto)
            gone = sorted(set(have) - set(keys))
            if gone:
                if len(table.key) == 1:
                    for other in plan:
                        for ref in other.references:
                            if ref.table == table.name and ref.to == table.key[0] and ref.column in other.nullable:
                                await tables_sql.release(tx, other, ref.column, [k[0] for k in gone])
                await tables_sql.delete(tx, table, gone)
                copied.deleted += len(gone)
        if upto is None:
            return
        after = upto


async def _sync(source: Store, target: Store, table: Table, columns: tuple[str, ...], batch: int,
                copied: Copied, progress: Progress | None) -> None:
    """Insert the source's rows the target lacks and update those that differ, in `columns` (deferred
    references aside unless asked for), one batch of keys per target transaction."""
    # The whole row is read (its checksum is the source as copied); a deferred reference is compared
    # and written only by the pass that asks for it, once every row it may name is in.
    compared = tuple(c for c in columns if c not in table.deferred) if columns == table.columns else columns
    at = [columns.index(c) for c in compared]
    read = Checksum()
    after: Key | None = None
    if progress is not None:
        async with source.read() as tx:
            progress.begin("copy", table.name, await tables_sql.count(tx, table))
    try:
        while True:
            async with source.read() as tx:
                found, last = await tables_sql.batch(tx, table, columns, after, batch, BUDGET)
            read.add(found)
            upto = None if last else table.key_of(found[-1], columns)
            wanted = [tuple(row[i] for i in at) for row in found]
            async with target.txn() as tx:
                have = await tables_sql.rows(tx, table, compared, after, upto=upto)
                if Checksum().add(wanted).hexdigest() != Checksum().add(have).hexdigest():
                    await _apply(tx, table, compared, wanted, have, copied, linking=columns != table.columns)
            if progress is not None:
                progress.advance(len(found))
            if upto is None:
                break
            after = upto
    finally:
        if progress is not None:
            progress.end()
    if columns == table.columns:
        copied.read_sum = read.hexdigest()


async def _apply(tx: Txn, table: Table, columns: tuple[str, ...], wanted: list[Values],
                 have: list[Values], copied: Copied, *, linking: bool) -> None:
    present = {table.key_of(row, columns): tables_sql.encode(row) for row in have}
    # A row the source gained since its table was copied has no place in a pass over references
    # alone (its other columns are not here): the next run copies it whole.
    new = [] if linking else [row for row in wanted if table.key_of(row, columns) not in present]
    changed = [row for row in wanted
               if present.get(table.key_of(row, columns), tables_sql.encode(row)) != tables_sql.encode(row)]
    new, changed = await _parents_in(tx, table, columns, new, changed, copied)
    if new:
        await tables_sql.insert(tx, table, columns, new)
        copied.inserted += len(new)
    if changed:
        await tables_sql.update(tx, table, columns, changed)
        if linking:
            copied.linked += len(changed)
        else:
            copied.updated += len(changed)


async def _parents_in(tx: Txn, table: Table, columns: tuple[str, ...], new: list[Values], changed: list[Values],
                      copied: Copied) -> tuple[list[Values], list[Values]]:
    """The rows whose references name rows the target has; the others wait for the next run.

    Tables are read one after another from a running daemon: a ticket opened after `tickets` was
    copied may have its messages and parties read here, and the target's foreign keys refuse them.
    """
    for ref in table.references:
        if ref.column not in columns or ref.column in table.key and ref.table == table.name:
            continue
        at = columns.index(ref.column)
        named = {row[at] for row in new + changed if row[at] is not None}
        if not named:
            continue
        missing = named - await tables_sql.present(tx, ref.table, ref.to, sorted(named))
        if missing:
            kept_new = [row for row in new if row[at] not in missing]
            kept_changed = [row for row in changed if row[at] not in missing]
            copied.waiting += len(new) + len(changed) - len(kept_new) - len(kept_changed)
            new, changed = kept_new, kept_changed
    return new, changed


async def check(source: Store, target: Store, table: Table, batch: int, copied: Copied, progress: Progress) -> None:
    """Rows and sha256 of every row, in key order, on both sides."""
    for side, store in (("source", source), ("target", target)):
        total = Checksum()
        async with store.read() as tx:
            progress.begin(f"check {side}", table.name, await tables_sql.count(tx, table))
        try:
            after: Key | None = None
            while True:
                async with store.read() as tx:
                    found, last = await tables_sql.batch(tx, table, table.columns, after, batch, BUDGET)
                total.add(found)
                progress.advance(len(found))
                if last:
                    break
                after = table.key_of(found[-1], table.columns)
        finally:
            progress.end()
        if side == "source":
            copied.source_rows, copied.source_sum = total.rows, total.hexdigest()
        else:
            copied.target_rows, copied.target_sum = total.rows, total.hexdigest()
