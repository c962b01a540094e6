"""Each agent command once by mail and once by the CLI, on two equal tickets: the same rows, events and mail.

The mail is a real agent reply with proof (to the Reply-To of the ticket's notification) over SMTP
to a running daemon; the CLI is `mailgate tickets … --as aino` against the same database. What
differs by nature is set aside: ids, numbers, times, and what only a mail has (the agent's mail
stored on the ticket, the confirmation sent back to them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailgate import config as config_mod
from mailgate.config import Config
from mailgate.daemon import Running, started

from .conftest import SUPPORT, run_cli, send, settle, write_config
from .sink import Received, Sink, relay_section, wait_mail

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

ALICE, AINO, PEKKA = "alice@customer.test", "aino@agents.test", "pekka@agents.test"
PARTNER = "ext@partner.example"
STAFF = """
[[queues]]
name = "support"
addresses = ["support@example.test"]
members = ["aino", "pekka"]

[[queues]]
name = "billing"
addresses = ["billing@example.test"]
members = ["aino", "pekka"]

[[agents]]
id = "aino"
name = "Aino Agent"
addresses = ["aino@agents.test"]

[[agents]]
id = "pekka"
name = "Pekka Agent"
addresses = ["pekka@agents.test"]
"""


@dataclass(frozen=True)
class Case:
    """One command: its subject tags and body by mail, its CLI arguments ({n}: the ticket, {other}: a second one)."""

    name: str
    tags: str
    cli: tuple[str, ...]
    body: str = ""
    other: bool = False  # the command needs a second ticket of the same customer (merge)
    second_message: bool = False  # the ticket needs a second customer message (split)
    # The mail's words are for the recipients or the task: the mail itself is kept as a note (and the
    # other agents hear of it), where the CLI's --text has no mail to keep.
    mail_kept_as_note: bool = False
    flagged: bool = False  # a partner answered Aino's forward first: acting on the ticket clears that flag


CASES = [
    Case("status", "[status:resolved]", ("status", "{n}", "resolved")),
    Case("priority", "[priority:urgent]", ("priority", "{n}", "urgent"), flagged=True),
    Case("assign", "[assign:pekka]", ("assign", "{n}", "pekka")),
    Case("queue", "[queue:billing]", ("queue", "{n}", "billing")),
    Case("tag", "[tag:+vip -spam]", ("tag", "--", "{n}", "+vip", "-spam")),
    Case("note", "[note]", ("note", "{n}", "Checked the fuse."), body="Checked the fuse."),
    Case("snooze", "[snooze:3d]", ("snooze", "{n}", "3d")),
    Case("merge", "[merge:#{other}]", ("merge", "{n}", "{other}"), other=True),
    Case("forward", f"[forward:{PARTNER}]", ("forward", "{n}", PARTNER, "--text", "Please check."),
         body="Please check.", mail_kept_as_note=True),
    Case("help", "[help:pekka]", ("help", "{n}", "pekka", "--text", "Warranty?"), body="Warranty?",
         mail_kept_as_note=True),
    Case("task", "[task:billing due:2099-01-05]",
         ("task", "{n}", "billing", "--due", "2099-01-05", "--text", "Refund the fee."), body="Refund the fee.",
         mail_kept_as_note=True),
    Case("follow", "[unfollow]", ("unfollow", "{n}")),
    Case("split", "[split]", ("split", "{n}", "{message}"), second_message=True),
]


@pytest.fixture
def eqconfig(tmp_path: Path, sink: Sink) -> Callable[[], Config]:
    return lambda: config_mod.load(write_config(tmp_path, relay_section(sink.port, send_delay=30) + STAFF))


def _wire(msg: EmailMessage) -> bytes:
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def _customer(running: Running, sink: Sink, n: int, *, in_reply_to: str | None = None) -> Received:
    """Alice writes (a new ticket, or into one by In-Reply-To); the notification Aino gets about it."""
    before = len(sink.to(AINO))
    msg = EmailMessage()
    msg["From"] = f"Alice <{ALICE}>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Printer on fire"
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = f"<c{n}@customer.test>"
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    msg.set_content(f"Hello,\n\nthe printer is on fire ({n}).\n")
    await send(running.smtp_port, _wire(msg), [SUPPORT], sender=ALICE)
    await settle(running)
    return await wait_mail(sink, AINO, "Printer on fire", before + 1)


async def _agent_answers(running: Running, notice: Received, tags: str, body: str) -> str:
    """Aino answers the notification, as a mail client does: to its Reply-To, quoting it."""
    target = notice.msg["Reply-To"].addresses[0].addr_spec
    msg = EmailMessage()
    msg["From"] = f"Aino Agent <{AINO}>"
    msg["To"] = target
    msg["Subject"] = f"{tags} Re: {notice.header('Subject')}"
    msg["Date"] = "Mon, 23 Nov 2026 10:05:00 +0000"
    msg["Message-ID"] = f"<a.{abs(hash((tags, target)))}@agents.test>"
    msg["In-Reply-To"] = msg["References"] = notice.header("Message-ID")
    quoted = "\n".join(f"> {line}" for line in notice.text().splitlines())
    msg.set_content(f"{body}\n\nOn Mon, 23 Nov 2026 at 10:00, Support <{SUPPORT}> wrote:\n\n{quoted}\n")
    await send(running.smtp_port, _wire(msg), [target], sender=AINO)
    await settle(running)
    return str(msg["Message-ID"]).strip("<>")


async def _partner_answers(running: Running, sink: Sink, number: int) -> None:
    """Aino forwards ticket #number to a partner (CLI), who answers: the ticket is flagged for her."""
    result = await run_cli(running, "tickets", "forward", str(number), PARTNER, "--as", "aino")
    assert result.exit_code == 0, result.output
    forwarded = await wait_mail(sink, PARTNER, f"#{number}]")
    msg = EmailMessage()
    msg["From"] = f"Partner <{PARTNER}>"
    msg["To"] = target = forwarded.msg["Reply-To"].addresses[0].addr_spec
    msg["Subject"] = f"Re: {forwarded.header('Subject')}"
    msg["Message-ID"] = f"<p{number}@partner.example>"
    msg["In-Reply-To"] = msg["References"] = forwarded.header("Message-ID")
    msg.set_content("Serial 4711 is under warranty.\n")
    await send(running.smtp_port, _wire(msg), [target], sender=PARTNER)
    await settle(running)
    assert await _rows(running, "SELECT 1 FROM ticket_flags f JOIN tickets t ON t.id = f.ticket_id WHERE t.number = ?",
                       (number,))


async def _rows(running: Running, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    async with running.store.read() as tx:
        return [dict(r) for r in await tx.all(sql, params)]


_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z| ?UTC| ?[A-Z]{3,4})?")


class Normal:
    """Turns what is expected to differ between the two tickets (ids, numbers, times) into names."""

    def __init__(self, tickets: dict[int, tuple[int, str]]) -> None:
        self.tickets = tickets  # ticket id → (number, its name in the comparison)

    def text(self, value: str) -> str:
        value = re.sub(r"on fire \(\d+\)", "on fire (k)", _TIME.sub("<time>", value))  # the customer's words
        for number, name in self.tickets.values():
            value = re.sub(rf"(?<![\d.]){number}(?!\d)", name, value)
        return re.sub(r"\b[0-9a-z]{16}\b", "<token>", value)

    def value(self, key: str, value: Any) -> Any:
        if key in ("message", "outbox", "forward", "task", "message_id", "id", "ticket_id", "merged_into",
                   "other_id", "contact_id", "spool_id"):
            if key in ("ticket_id", "merged_into") and value in self.tickets:
                return self.tickets[value][1]
            return "<id>" if value is not None else None
        if isinstance(value, dict):
            return {k: self.value(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(key, v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if key in ("number", "ticket", "into", "from") and isinstance(value, int):
            return next((name for number, name in self.tickets.values() if number == value), value)
        return value


async def _state(running: Running, ids: list[int], since: dict[str, int], normal: Normal, *,
                 agent_mail: str | None = None) -> dict[str, Any]:
    """The tickets (and what was split off them), their events and queued mail since the marks."""
    marks = ", ".join("?" for _ in ids)
    tickets = await _rows(running, f"SELECT * FROM tickets WHERE id IN ({marks}) ORDER BY id", tuple(ids))
    events = await _rows(running, f"SELECT actor, kind, data FROM events WHERE ticket_id IN ({marks}) AND id > ?"
                                  " ORDER BY id", (*ids, since["events"]))
    mail = await _rows(running, f"SELECT kind, automatic, agent, rcpt_to, subject, text FROM outbox"
                                f" WHERE ticket_id IN ({marks}) AND id > ? ORDER BY id", (*ids, since["outbox"]))
    shown = []
    for row in tickets:
        shown.append({k: normal.value(k, v) for k, v in row.items()
                      if k not in ("id", "number", "created_at", "updated_at", "subject")})
    kept = []
    for event in events:
        data = json.loads(event["data"])
        if event["kind"] in ("message.added", "agent_mail.ignored") and data.get("direction") in ("agent", None):
            continue  # the agent's own mail, stored on the ticket: only the mail path has one
        if agent_mail is not None and event["kind"] == "note.added" and data.get("message_id") == agent_mail:
            continue
        if event["kind"].startswith("mail."):
            continue  # the sender at work: when it picks the queued mail up is not the operation's doing
        kept.append((event["actor"], event["kind"], normal.value("data", data)))
    watchers = await _rows(running, f"SELECT ticket_id, agent, following, unread FROM ticket_watchers"
                                    f" WHERE ticket_id IN ({marks}) ORDER BY ticket_id, agent", tuple(ids))
    flags = await _rows(running, f"SELECT ticket_id, agent, reason FROM ticket_flags WHERE ticket_id IN ({marks})"
                                 " ORDER BY ticket_id, agent", tuple(ids))
    queued = [normal.value("mail", m) for m in mail if m["kind"] != "agent"  # "agent": the Done confirmation
              and not (agent_mail is not None and m["subject"].startswith("Internal note"))]
    return {"tickets": shown, "events": kept, "outbox": queued,
            "watchers": [normal.value("watcher", w) for w in watchers], "flags": [normal.value("flag", f) for f in flags]}


async def _marks(running: Running) -> dict[str, int]:
    [row] = await _rows(running, "SELECT (SELECT COALESCE(MAX(id), 0) FROM events) AS events,"
                                 " (SELECT COALESCE(MAX(id), 0) FROM outbox) AS outbox")
    return dict(row)


async def _ids(running: Running, first: int) -> list[int]:
    """The ticket and any ticket made from it (a split) since."""
    rows = await _rows(running, "SELECT id FROM tickets WHERE id = ? OR id IN"
                                " (SELECT ticket_id FROM ticket_links WHERE other_id = ? AND kind = 'split-from')",
                       (first, first))
    return [r["id"] for r in rows]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_command_by_mail_and_by_cli_changes_the_same(case: Case, sink: Sink,
                                                             eqconfig: Callable[[], Config]) -> None:
    async with started(eqconfig()) as running:
        # Two equal tickets (and, for merge, one more each to merge into).
        counter = iter(range(1, 100))
        by_mail = await _customer(running, sink, next(counter))
        await _customer(running, sink, next(counter))  # the CLI's twin, named by number
        for _ in range(2 if case.other else 0):
            await _customer(running, sink, next(counter))
        numbers = {r["id"]: r["number"] for r in await _rows(running, "SELECT id, number FROM tickets")}
        ids = {n: i for i, n in numbers.items()}
        mail_number, cli_number = min(numbers.values()), min(numbers.values()) + 1
        if case.second_message:
            acks = list(sink.to(ALICE))
            by_mail = await _customer(running, sink, next(counter), in_reply_to=acks[0].header("Message-ID"))
            await _customer(running, sink, next(counter), in_reply_to=acks[1].header("Message-ID"))
        names = {ids[mail_number]: (mail_number, "N"), ids[cli_number]: (cli_number, "N")}
        if case.other:
            names[ids[mail_number + 2]] = (mail_number + 2, "OTHER")
            names[ids[mail_number + 3]] = (mail_number + 3, "OTHER")

        if case.flagged:
            for number in (mail_number, cli_number):
                await _partner_answers(running, sink, number)

        before = await _marks(running)
        tags = case.tags.replace("{other}", str(mail_number + 2))
        sent = await _agent_answers(running, by_mail, tags, case.body)
        mail_ids = await _ids(running, ids[mail_number])
        if case.other:
            mail_ids.append(ids[mail_number + 2])
        numbers = {r["id"]: r["number"] for r in await _rows(running, "SELECT id, number FROM tickets")}
        for tid in mail_ids:
            names.setdefault(tid, (numbers[tid], "SPLIT"))
        mail_state = await _state(running, mail_ids, before, Normal(names),
                                  agent_mail=sent if case.mail_kept_as_note else None)

        before = await _marks(running)
        message = await _rows(running, "SELECT id FROM messages WHERE ticket_id = ? AND direction = 'in'"
                                       " ORDER BY id DESC LIMIT 1", (ids[cli_number],))
        args = [a.format(n=cli_number, other=cli_number + 2, message=message[0]["id"]) for a in case.cli]
        result = await run_cli(running, "tickets", args[0], "--as", "aino", *args[1:])
        assert result.exit_code == 0, result.output
        await settle(running)
        cli_ids = await _ids(running, ids[cli_number])
        if case.other:
            cli_ids.append(ids[cli_number + 2])
        all_numbers = {r["id"]: r["number"] for r in await _rows(running, "SELECT id, number FROM tickets")}
        for tid in mail_ids + cli_ids:
            number = all_numbers[tid]
            names[tid] = (number, names.get(tid, (number, "SPLIT"))[1])
        cli_state = await _state(running, cli_ids, before, Normal(names))
        assert mail_state["events"], "the mail changed nothing"
        assert cli_state == mail_state
