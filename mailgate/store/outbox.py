"""The outbox table: one rendered mail per envelope recipient, from queued to sent, failed or cancelled."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailgate.clock import iso
from mailgate.store import Row, Txn, timers
from mailgate.store.outbox_ids import reserve_id

# Mail the customer sees: stored as an outgoing message of the ticket once sent.
CUSTOMER_KINDS = frozenset({"ack", "resolved", "reply"})
STATES = ("queued", "sending", "sent", "failed", "held", "cancelled")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One outgoing mail as stored."""

    id: int
    ticket_id: int | None
    kind: str
    automatic: bool
    agent: str | None
    message_id: str
    mail_from: str
    from_name: str
    from_address: str
    in_reply_to: str | None
    rcpt_to: str
    subject: str
    text: str
    raw: bytes
    not_before: str
    created_at: str
    state: str
    attempts: int
    last_error: str | None
    sent_at: str | None
    message_row: int | None
    retries: int
    ticket_number: int | None = None  # filled in by claim_batch, for the log line of the send


def from_row(r: Row) -> OutboxRow:
    return OutboxRow(
        id=r["id"], ticket_id=r["ticket_id"], kind=r["kind"], automatic=bool(r["automatic"]), agent=r["agent"],
        message_id=r["message_id"], mail_from=r["mail_from"], from_name=r["from_name"],
        from_address=r["from_address"], in_reply_to=r["in_reply_to"], rcpt_to=r["rcpt_to"], subject=r["subject"],
        text=r["text"], raw=bytes(r["raw"]), not_before=r["not_before"], created_at=r["created_at"],
        state=r["state"], attempts=r["attempts"], last_error=r["last_error"], sent_at=r["sent_at"],
        message_row=r["message_row"], retries=r["retries"],
        ticket_number=r["ticket_number"] if "ticket_number" in r.keys() else None,
    )


@dataclass(frozen=True, slots=True)
class NewMail:
    """One rendered mail for one envelope recipient, ready for the table."""

    ticket_id: int | None
    kind: str
    automatic: bool
    agent: str | None
    message_id: str
    from_name: str
    from_address: str
    in_reply_to: str | None
    rcpt_to: str
    subject: str
    text: str
    not_before: datetime
    state: str = "queued"


@dataclass(frozen=True, slots=True)
class Acted:
    """A row an operator (or agent) acted on: requeued, cancelled, held."""

    id: int
    ticket_id: int | None
    kind: str
    rcpt_to: str
    agent: str | None = None
    text: str = ""
    last_error: str | None = None


def id_chunks(ids: list[int], size: int = 500) -> Iterator[tuple[str, list[int]]]:
    """(placeholders, ids) in slices: an operator's `xargs` list must not hit SQLite's variable limit."""
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        yield ",".join("?" * len(chunk)), chunk


async def insert(tx: Txn, mail: NewMail, *, outbox_id: int | None = None, mail_from: str = "",
                 raw: bytes = b"") -> int:
    """The row (its Message-ID indexed by a trigger), with its bytes when outbox_id came from reserve_id.

    Every mail is composed first: the VERP return path in mail_from names the reserved row id.
    """
    if outbox_id is None:
        outbox_id = await reserve_id(tx)
    await tx.execute(
        "INSERT INTO outbox (id, ticket_id, kind, automatic, agent, message_id, mail_from, from_name, from_address,"
        " in_reply_to, rcpt_to, subject, text, raw, not_before, created_at, state)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            outbox_id, mail.ticket_id, mail.kind, int(mail.automatic), mail.agent, mail.message_id, mail_from,
            mail.from_name, mail.from_address, mail.in_reply_to, mail.rcpt_to.lower(), mail.subject, mail.text, raw,
            iso(mail.not_before), tx.now_iso(), mail.state,
        ),
    )
    if raw and mail.not_before > tx.now():
        await timers.add(tx, timers.OUTBOX_RELEASE, outbox_id, mail.not_before)
    tx.touch("outbox")
    return outbox_id


async def get(tx: Txn, outbox_id: int) -> OutboxRow | None:
    row = await tx.one("SELECT * FROM outbox WHERE id = ?", (outbox_id,))
    return from_row(row) if row is not None else None


async def by_message_id(tx: Txn, message_id: str) -> OutboxRow | None:
    row = await tx.one("SELECT * FROM outbox WHERE message_id = ?", (message_id,))
    return from_row(row) if row is not None else None


async def cancel_pending(tx: Txn, ticket_id: int, agent: str | None) -> list[int]:
    """The agent's replies that have not gone yet (queued or held) become 'cancelled'; None = any agent's."""
    rows = await tx.all(
        "UPDATE outbox SET state = 'cancelled' WHERE ticket_id = ? AND kind = 'reply'"
        " AND state IN ('queued', 'held') AND (CAST(? AS TEXT) IS NULL OR agent = ?) RETURNING id",
        (ticket_id, agent, agent),
    )
    ids = [int(r["id"]) for r in rows]
    for outbox_id in ids:
        await timers.cancel(tx, timers.OUTBOX_RELEASE, outbox_id)
    return ids


async def hold_pending(tx: Txn, ticket_id: int) -> list[Acted]:
    """Queued replies of the ticket become 'held' (their delayed-send timers go)."""
    rows = await tx.all(
        "UPDATE outbox SET state = 'held' WHERE ticket_id = ? AND kind = 'reply' AND state = 'queued'"
        " RETURNING id, ticket_id, kind, rcpt_to, agent, text",
        (ticket_id,),
    )
    held = [Acted(r["id"], r["ticket_id"], r["kind"], r["rcpt_to"], r["agent"], r["text"]) for r in rows]
    for row in held:
        await timers.cancel(tx, timers.OUTBOX_RELEASE, row.id)
    return held


async def release_held(tx: Txn, ticket_id: int, agent: str | None) -> int:
    """Held replies of the ticket (one agent's, or any) are queued again, due now."""
    count = await tx.rowcount(
        "UPDATE outbox SET state = 'queued', not_before = ? WHERE ticket_id = ? AND kind = 'reply'"
        " AND state = 'held' AND (CAST(? AS TEXT) IS NULL OR agent = ?)",
        (tx.now_iso(), ticket_id, agent, agent),
    )
    if count:
        tx.touch("outbox")
    return count


async def requeue(tx: Txn, ids: list[int]) -> list[Acted]:
    """Failed rows again and queued rows without their wait; last_error stays, a failed row's age restarts."""
    now = tx.now_iso()
    found: list[Acted] = []
    for marks, chunk in id_chunks(ids):
        rows = await tx.all(
            "UPDATE outbox SET attempts = CASE WHEN state = 'failed' THEN 0 ELSE attempts END,"
            " created_at = CASE WHEN state = 'failed' THEN ? ELSE created_at END,"
            " state = 'queued', not_before = ?, retries = retries + 1"
            f" WHERE id IN ({marks}) AND (state = 'failed' OR (state = 'queued' AND not_before > ?))"
            " RETURNING id, ticket_id, kind, rcpt_to, last_error",
            (now, now, *chunk, now),
        )
        found += [Acted(r["id"], r["ticket_id"], r["kind"], r["rcpt_to"], last_error=r["last_error"]) for r in rows]
    for row in found:
        await timers.cancel(tx, timers.OUTBOX_RELEASE, row.id)  # it is due now; the old wake-up is moot
    if found:
        tx.touch("outbox")
    return found


async def cancel(tx: Txn, ids: list[int]) -> list[Acted]:
    """These rows, when queued or held, become 'cancelled' (one being sent cannot be called back)."""
    found: list[Acted] = []
    for marks, chunk in id_chunks(ids):
        rows = await tx.all(
            f"UPDATE outbox SET state = 'cancelled' WHERE id IN ({marks}) AND state IN ('queued', 'held')"
            " RETURNING id, ticket_id, kind, rcpt_to",
            chunk,
        )
        found += [Acted(r["id"], r["ticket_id"], r["kind"], r["rcpt_to"]) for r in rows]
    for row in found:
        await timers.cancel(tx, timers.OUTBOX_RELEASE, row.id)
    return found


async def states(tx: Txn, ids: list[int]) -> dict[int, str]:
    """The state of each row that exists."""
    found: dict[int, str] = {}
    for marks, chunk in id_chunks(ids):
        for row in await tx.all(f"SELECT id, state FROM outbox WHERE id IN ({marks})", chunk):
            found[int(row["id"])] = row["state"]
    return found


async def mark_failed(tx: Txn, outbox_id: int, reason: str) -> None:
    await tx.execute("UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ?", (reason, outbox_id))


# -- the sender's records (its claims are in outbox_leases.py) -------------------------------------


async def mark_sent_many(tx: Txn, sent: Sequence[tuple[int, int | None, datetime]]) -> None:
    """These rows went, each with the message row it became (None: not a mail the ticket shows) and
    when the relay took it; one statement."""
    if not sent:
        return
    # Typed: PostgreSQL takes an untyped CASE result for text, and message_row is an integer.
    rows_cases = " ".join("WHEN ? THEN CAST(? AS BIGINT)" for _ in sent)
    at_cases = " ".join("WHEN ? THEN ?" for _ in sent)
    ids = [outbox_id for outbox_id, _, _ in sent]
    await tx.execute(
        f"UPDATE outbox SET state = 'sent', last_error = NULL, sent_at = CASE id {at_cases} END,"
        f" message_row = CASE id {rows_cases} END WHERE id IN ({', '.join('?' for _ in ids)})",
        (*(value for outbox_id, _, at in sent for value in (outbox_id, iso(at))),
         *(value for outbox_id, row, _ in sent for value in (outbox_id, row)), *ids),
    )


async def mark_retry(tx: Txn, outbox_id: int, retry_at: datetime, error: str) -> None:
    """Queued again for `retry_at`, with the timer that wakes the sender then."""
    await tx.execute(
        "UPDATE outbox SET state = 'queued', not_before = ?, last_error = ?, lease_until = NULL WHERE id = ?",
        (iso(retry_at), error, outbox_id),
    )
    await timers.add(tx, timers.OUTBOX_RELEASE, outbox_id, retry_at)


async def mark_plain(tx: Txn, outbox_id: int, state: str, note: str) -> None:
    """Only the state and a note, when recording the outcome in full failed."""
    await tx.execute(
        "UPDATE outbox SET state = ?, last_error = ?, sent_at = CASE WHEN ? = 'sent' THEN ? END WHERE id = ?",
        (state, note, state, tx.now_iso(), outbox_id),
    )


# -- what agent mail asks of our sent mail --------------------------------------------------------


async def in_reply_to_of(tx: Txn, message_id: str, ticket_id: int) -> str | None:
    """What our mail with this Message-ID answered (a notification keeps the customer message it is about)."""
    value = await tx.value("SELECT in_reply_to FROM outbox WHERE message_id = ? AND ticket_id = ?",
                           (message_id, ticket_id))
    return str(value) if value else None


async def not_before(tx: Txn, outbox_id: int) -> str:
    """When the queued mail may leave (the undo delay of an agent's reply)."""
    return str(await tx.value("SELECT not_before FROM outbox WHERE id = ?", (outbox_id,)))


async def kind_of(tx: Txn, message_id: str) -> str | None:
    value = await tx.value("SELECT kind FROM outbox WHERE message_id = ? LIMIT 1", (message_id,))
    return None if value is None else str(value)


async def any_of_kinds(tx: Txn, message_ids: Sequence[str], kinds: Sequence[str]) -> bool:
    """Whether one of these Message-IDs is a mail of ours of one of these kinds."""
    ids = ", ".join("?" for _ in message_ids)
    marks = ", ".join("?" for _ in kinds)
    return bool(await tx.value(f"SELECT 1 FROM outbox WHERE message_id IN ({ids}) AND kind IN ({marks}) LIMIT 1",
                               (*message_ids, *kinds)))


async def subject_of(tx: Txn, message_id: str) -> str | None:
    """The subject of our mail with this Message-ID (bare or in angle brackets)."""
    value = await tx.value("SELECT subject FROM outbox WHERE message_id IN (?, ?) ORDER BY id DESC LIMIT 1",
                           (message_id, f"<{message_id}>"))
    return None if value is None else str(value)


async def count_since(tx: Txn, kind: str, rcpt_to: str, since: str) -> int:
    """How many mails of this kind went to this address since then."""
    return int(await tx.value("SELECT COUNT(*) FROM outbox WHERE kind = ? AND rcpt_to = ? AND created_at > ?",
                              (kind, rcpt_to, since)) or 0)


# -- counts the storm fuse and the operator read ----------------------------------------------------


async def ack_counts(tx: Txn, recipient: str, now: datetime, *, minute: bool, hour: bool) -> tuple[int, int, int]:
    """Acknowledgements (not cancelled): to `recipient` in the last hour, to anyone in the last minute
    and hour (0 for a window not asked for); one statement, each count through its own index."""
    ack = "FROM outbox WHERE kind = 'ack' AND created_at > ? AND state != 'cancelled'"
    parts, params = [f"(SELECT COUNT(*) {ack} AND rcpt_to = ?)"], [iso(now - timedelta(hours=1)), recipient.lower()]
    for wanted, window in ((minute, timedelta(minutes=1)), (hour, timedelta(hours=1))):
        parts.append(f"(SELECT COUNT(*) {ack})" if wanted else "0")
        params += [iso(now - window)] if wanted else []
    row = await tx.one(f"SELECT {', '.join(parts)}", params)
    assert row is not None
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


# -- what retention and erasure remove --------------------------------------------------------------

# Finished mail retention may delete.
AGED = "state IN ('sent', 'cancelled', 'failed') AND created_at < ?"


async def delete_aged(tx: Txn, cutoff: str, batch: int) -> int:
    """Delete at most `batch` finished rows created before cutoff; how many were."""
    return await tx.rowcount(f"DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE {AGED} LIMIT ?)",
                             (cutoff, batch))


async def unlink_messages(tx: Txn, ids: Sequence[int]) -> None:
    """Rows recorded as these messages forget them (the messages are about to go)."""
    await tx.execute(f"UPDATE outbox SET message_row = NULL WHERE message_row IN ({','.join('?' for _ in ids)})", ids)


async def drop(tx: Txn, ids: Sequence[int]) -> int:
    """Delete outgoing mail and the timers that would release it; how many mails went."""
    await timers.drop(tx, timers.OUTBOX_RELEASE, ids)
    return await tx.rowcount(f"DELETE FROM outbox WHERE id IN ({','.join('?' for _ in ids)})", ids)
