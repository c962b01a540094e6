"""Full-text search reads words the same way on either store engine: capitals and diacritics of any
script the index folds, punctuation inside words, fields a phrase cannot cross, long texts, blanked mail.

Run on SQLite by default and on PostgreSQL with MAILGATE_TEST_POSTGRES (tests/conftest.py): the
answers asserted here are the ones both engines must give.
"""

from __future__ import annotations

from typing import Any

import pytest

from mailgate.daemon import Running
from mailgate.store import erase as erase_rows
from mailgate.store import messages as message_rows

from ..conftest import AGENTS, SUPPORT, mail
from .conftest import MakeDaemon, cli_ok, send, settle, wait_until
from .sink import Sink

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

# Mails as they arrive: a French bakery writing in capitals (Outlook users with caps lock, and
# subjects some ticketing systems upper-case), Greek and Russian customers, an Irish name with an
# apostrophe and an error code with a hyphen, a Vietnamese name with two diacritics on one letter.
MAILS = [
    ("ÉRIC LEFÈVRE <eric@boulangerie.test>", "FACTURE NÉGATIVE — URGENT",
     "Bonjour,\n\nla facture n°2026-0412 affiche un montant négatif (−12,50 €).\n\nÉric\n"),
    ("Νίκος Παπαδόπουλος <nikos@example.test>", "ΠΡΟΒΛΗΜΑ με τον εκτυπωτή",
     "Καλημέρα,\n\nο εκτυπωτής δεν τυπώνει από χθες.\n"),
    ("Ольга Смирнова <olga@example.test>", "Не работает ПРИНТЕР",
     "Здравствуйте!\n\nПринтер в бухгалтерии не печатает с понедельника.\n"),
    ("Seán O'Brien <sean@pub.test>", "Login",
     "Hi,\n\nI can't log in since the update; the app shows error code E-4012.\n\nSeán\n"),
    ("Nguyễn Thị Hồng <hong@example.test>", "Đơn hàng",
     "Chào anh,\n\nđơn hàng số 7731 chưa được giao.\n"),
]


async def ingest(running: Running) -> None:
    for n, (sender, subject, body) in enumerate(MAILS):
        address = sender.split("<")[1].rstrip(">")
        await send(running.smtp_port, mail(sender=sender, to=SUPPORT, subject=subject, body=body,
                                           message_id=f"<w{n}@customer.test>"), [SUPPORT], sender=address)
    await settle(running)


async def search(running: Running, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = (await cli_ok(running, "tickets", "search", *args, "--json")).json
    return found


async def numbers(running: Running, *args: str) -> list[int]:
    return sorted(h["number"] for h in (await search(running, *args))["hits"])


async def test_capitals_and_diacritics_of_every_script_fold(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS)
    await ingest(running)
    # Latin capitals lose case and accents in the subject, the sender's name and the body alike.
    for words in ("negative", "NÉGATIVE", "négative", "lefevre", "LEFÈVRE", "eric", "facture"):
        assert await numbers(running, words) == [1000], words
    # Greek and Cyrillic capitals are the same words as their small letters.
    assert await numbers(running, "προβλημα") == await numbers(running, "ΠΡΟΒΛΗΜΑ") == [1001]
    assert await numbers(running, "принтер") == await numbers(running, "ПРИНТЕР") == [1002]
    # Two marks on one letter (ễ, ồ), and Đ, a letter of its own that only changes case.
    assert await numbers(running, "nguyen", "hong") == [1004]
    assert await numbers(running, "đơn") == await numbers(running, "ĐƠN") == [1004]
    # Prefixes of folded words.
    assert await numbers(running, "lefe*") == [1000]
    assert await numbers(running, "смир*") == [1002]


async def test_punctuation_splits_words_as_in_the_index(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS)
    await ingest(running)
    # An apostrophe, a hyphen, a dot or an @ stands between two words: typed, it is a phrase of both.
    assert await numbers(running, "O'Brien") == await numbers(running, "o brien") == [1003]
    assert await numbers(running, "obrien") == []
    assert await numbers(running, "E-4012") == await numbers(running, "4012") == [1003]
    assert await numbers(running, "can't") == [1003]
    assert await numbers(running, "2026-0412") == [1000]
    assert await numbers(running, "eric@boulangerie.test") == await numbers(running, "boulangerie") == [1000]
    # A phrase is looked for within one field: the subject's last word and the body's first are
    # not neighbours, nor the sender's name and address.
    assert await numbers(running, '"facture negative"') == [1000]
    assert await numbers(running, '"urgent bonjour"') == []
    assert await numbers(running, '"lefevre eric"') == []


async def test_the_snippet_shows_the_words_as_written(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS)
    await ingest(running)
    [hit] = (await search(running, "negatif"))["hits"]
    assert "[négatif]" in hit["snippet"] and "\x02" not in hit["snippet"]
    [hit] = (await search(running, "ПЕЧАТАЕТ"))["hits"]
    assert "[печатает]" in hit["snippet"]
    # A word only in the subject: the subject is the snippet, marked.
    [hit] = (await search(running, "urgent"))["hits"]
    assert "[URGENT]" in hit["snippet"]


async def test_a_long_pasted_log_is_stored_and_its_words_found(make_daemon: MakeDaemon) -> None:
    """A customer pastes a whole log into the mail: two megabytes of text, most of its words different."""
    running = await make_daemon(AGENTS)
    lines = [f"2026-11-30T10:{i // 60 % 60:02d}:{i % 60:02d} job{i:06d} trace{i * 7919 % 1000003:07d} done"
             for i in range(45_000)]
    body = "Hello,\n\nthe nightly export stopped with a stacktrace, the log is below.\n\n" + "\n".join(lines) + "\n"
    assert len(body) > 2_000_000
    await send(running.smtp_port, mail(sender="ops@customer.test", subject="Export failed", body=body,
                                       message_id="<log1@customer.test>"), [SUPPORT], sender="ops@customer.test")
    await settle(running, timeout=60)
    assert await numbers(running, "stacktrace") == [1000]
    assert await numbers(running, "job000017") == [1000]


async def test_a_blanked_message_is_no_longer_found(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS)
    await ingest(running)
    [hit] = (await search(running, "Смирнова"))["hits"]
    async with running.store.txn() as tx:
        [trace] = await erase_rows.message_traces(tx, [hit["message_row"]])
        await message_rows.blank(tx, trace, "[erased]")
    for words in ("Смирнова", "принтер", "понедельника"):
        assert await numbers(running, words) == [], words
    assert await numbers(running, "erased") == [1002]  # the new text is what is found
    assert await numbers(running, "lefevre") == [1000]


async def test_our_acknowledgements_are_not_found(make_daemon: MakeDaemon, sink: Sink) -> None:
    running = await make_daemon(AGENTS, send_delay=0.2)
    await ingest(running)
    got = await sink.wait_for(lambda got: any("olga@example.test" in r.rcpt_tos for r in got))
    [ack] = [r for r in got if "olga@example.test" in r.rcpt_tos]

    async def stored() -> list[dict[str, Any]]:  # a sent acknowledgement becomes a message of its ticket
        ticket = (await cli_ok(running, "tickets", "show", "1002", "--json")).json
        return [m for m in ticket["messages"] if m["kind"] == "auto-reply"]

    await wait_until(stored, what="the acknowledgement stored as sent")
    # The template's words are on every ticket's acknowledgement and in none of the customers' mails.
    template = {w.strip(".,:;!?()[]#").lower() for w in ack.text().split()} - {w.lower() for m in MAILS for w in " ".join(m).split()}
    words = sorted(w for w in template if w.isalpha() and len(w) > 3)[:5]
    assert words
    for word in words:
        assert await numbers(running, word) == [], word
    # A note an agent writes is found.
    await cli_ok(running, "tickets", "note", "1001", "Καλημέρα Νίκο, a technician comes on Monday.", "--as", "aino")
    assert await numbers(running, "technician") == [1001]
