"""Answers to the shared real-world corpus: every sender's name, subject, text, HTML and files, as
customers' clients wrote them, composed by compose.wire() and read back as intended (and as the
email package's composer, where it read them right)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailgate.mail.parse import parse
from mailgate.models import File
from mailgate.outgoing import compose

from ..conftest import CORPUS
from ..reference_compose import reference
from .test_wire_equivalence import assert_as_intended, assert_same, assert_well_formed, intended, mailboxes

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")

# Bounce collections: their senders are MTAs (MAILER-DAEMON) and no help desk answers them.
_BOUNCES = ("sisimai", "flufl-bounce")
_SKIP_SUFFIXES = (".json", ".yml", ".xml", ".out", ".bin", ".md", ".gitattributes")


def _mails() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*")
        if p.is_file() and p.parts[len(CORPUS.parts)] not in _BOUNCES and not p.name.endswith(_SKIP_SUFFIXES)
        and "_decoded" not in p.name
    )


def answer(relative: str) -> compose.Outgoing:
    """The answer a help desk writes to one corpus mail: to its sender and Cc, its subject, its text
    quoted, its HTML, up to three of its files."""
    mail = parse((CORPUS / relative).read_bytes())
    sender = mail.from_[0] if mail.from_ else None
    return compose.Outgoing(
        from_name="Support – Asiakaspalvelu", from_address="support@example.test",
        to_name=sender.name if sender else "", to_address=sender.address if sender else "",
        reply_to="support+r.7.d41d8c@example.test", subject=compose.tagged_subject(f"Re: {mail.subject}", "#", 7),
        message_id="r.7.corpus@example.test", text="Thanks, we are on it.\n\n" + mail.text[:3000],
        html=mail.html[:8000] if mail.html else None, marker="mg:7:d41d8c", in_reply_to=mail.message_id,
        references=mail.references, cc=tuple((a.name, a.address) for a in mail.cc[:5]),
        date=datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
        files=tuple(File(a.filename or "", a.content_type, a.data[:16384]) for a in mail.attachments[:3]),
    )


def test_answers_to_the_corpus_read_back_as_written() -> None:
    mails = _mails()
    assert len(mails) > 100
    for i, relative in enumerate(mails):
        out = answer(relative)
        new = compose.wire(out)
        assert_well_formed(new, out)
        ours = assert_as_intended(new, out)
        assert ours.text.replace("\r\n", "\n").startswith(out.text.rstrip("\n").replace("\r\n", "\n").replace("\r", "\n"))
        if i % 2:
            continue  # the reference takes ~40 times longer to write, and reading both back as long again: half of them
        try:
            old = reference(out)
        except ValueError:  # a file name the email package refuses (CR/LF): nothing to compare with
            continue
        right = {h: [(n, f"{u}@{d}") for n, u, d in v] for h, v in mailboxes(old).items()} == intended(out)[1]
        assert_same(old, new, addresses=right)
