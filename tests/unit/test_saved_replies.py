"""Saved replies: which file a ticket gets (language, then a queue's own), and the listing in every language."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.config import LANGUAGES
from mailgate.outgoing import templates
from mailgate.outgoing.saved_replies import SavedReply, choose

BASE = Path("/srv/replies")


def reply(relative: str) -> SavedReply:
    *folder, file = relative.split("/")
    name, language, _ = file.split(".")
    return SavedReply(name, language, folder[0] if folder else None, BASE / relative, relative)


REPLIES = [reply(r) for r in ("refund.en.j2", "refund.fi.j2", "billing/refund.en.j2", "billing/refund.pl.j2",
                              "shipping.en.j2")]


@pytest.mark.parametrize(("languages", "queue", "file"), [
    (("fi", None, "en"), "support", "refund.fi.j2"),  # the ticket's language first
    (("de", "fi", "en"), "support", "refund.fi.j2"),  # none in German: the next the ticket names
    (("en",), "billing", "billing/refund.en.j2"),  # a queue's own before the shared one
    (("fi", "pl", "en"), "billing", "refund.fi.j2"),  # the customer's language before the queue's own file
    ((None, "pl", "en"), "billing", "billing/refund.pl.j2"),
    (("sv", None, "en"), None, "refund.en.j2"),  # no queue: only the shared ones
])
def test_choose_by_language_then_queue(languages: tuple[str | None, ...], queue: str | None, file: str) -> None:
    found = choose(REPLIES, "refund", languages, queue)
    assert found is not None and found.relative == file


def test_another_queues_own_reply_is_not_chosen() -> None:
    only_billing = [reply("billing/credit.en.j2")]
    assert choose(only_billing, "credit", ("en",), "support") is None
    assert choose(REPLIES, "nosuch", ("en",), "support") is None


def test_the_listing_renders_in_every_language() -> None:
    t = templates.Templates()
    data = templates.sample_context()
    data["outcome"] = {**data["outcome"], "listing": "replies", "ticketless": True, "replies": [
        {"name": "refund", "language": "fi", "queue": "billing", "file": "billing/refund.fi.j2",
         "first_line": "Hei {{ customer_name }},"}]}
    for language in LANGUAGES:
        text = t.render("agent_done", language, data).text
        assert "[use:" in text and "refund (fi, " in text and "billing): Hei {{ customer_name }}," in text, language
