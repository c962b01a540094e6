"""compose.wire() writes the bytes itself; read back, they say what the email package's EmailMessage
said (tests/reference_compose.py): the same headers, addresses, MIME tree and decoded parts, for
every template in every language, with the names and subjects customers really send."""

from __future__ import annotations

import base64
import dataclasses
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate import commands
from mailgate.config import LANGUAGES
from mailgate.mail.parse import parse
from mailgate.models import File, ParsedMail
from mailgate.outgoing import compose
from mailgate.outgoing.relay import mailbox
from mailgate.outgoing.templates import NAMES, Templates, context, sample_context

from ..reference_compose import reference

WHEN = datetime(2026, 11, 23, 9, 30, 5, tzinfo=UTC)
ADDRESS_HEADERS = ("From", "To", "Cc", "Reply-To")

# (display name, address) as customers' From headers give them.
PEOPLE = [
    ("张伟", "zhang.wei@例子.test"),  # CJK name, IDN domain: the A-label keeps the mail 7-bit
    ("Иван Петрович Сидоров-Кузнецов", "ivan.sidorov@customer.test"),  # longer than one encoded word
    ("Zoë Łukasiewicz-Ådahl 🦊", "zoe@customer.example"),
    ("Jose\u0301 Mari\u0301a Nun\u0303ez", "jose@customer.test"),  # combining marks, as macOS writes them
    ('O\'Brien, "Danny" @ Home', "danny.obrien@customer.test"),  # quotes, comma and "@" in a name
    ("", "no.name@customer.test"),
    ("Jürgen Groß", "jürgen@bücher.test"),  # RFC 6531 UTF-8 local part: UTF-8 headers, SMTPUTF8 only
    ("Customer Service Department of a Company with a Very Long Official Name Ltd.", "cs@customer.test"),
    ("Amélie", "garbage-without-at-sign"),  # no mailbox at all: invalid-address@invalid
]
SUBJECTS = [
    "Drucker brennt – Ärger im Büro 🔥 " * 12,  # over 300 characters, mixed scripts
    "Заказ №4411 не пришёл, прошу вернуть деньги",
    "注文した商品が届きません（注文番号 4411）",
    "Printer on fire [status:closed] see https://example.test/" + "x" * 90,
    "Re: Fwd: AW: Re: invoice",
]
# Outlook writes Message-IDs longer than a folded line; a long thread carries 30 of them.
REFERENCES = tuple(f"DM6PR11MB469{i:02d}B1F2C7A1E55B3C2D5E8AC9A12@DM6PR11MB4691.namprd11.prod.outlook.com" for i in range(30))
FILES = (
    File("Rechnung März 2026 – Kopie (final) für die Buchhaltung.pdf", "application/pdf", b"%PDF-1.7\n" + bytes(range(256)) * 4),
    File("写真.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + bytes(range(200))),
    File('notes "draft".txt', "text/plain", "Grüße\r\nzweite Zeile\n".encode()),
    File("Fwd message", "message/rfc822", b"From: a@customer.test\r\nSubject: hi\r\n\r\nhello\r\n"),
    File("report-" + "q" * 120 + ".csv", "text/csv", b"a,b\r\n1,2\r\n"),
)

_EW = r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?="
_EW_RUN = re.compile(rf"{_EW}(?:\s+{_EW})+")


def header_lines(raw: bytes) -> list[tuple[str, str]]:
    """The top-level headers as (name, unfolded raw value)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    out: list[tuple[str, str]] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            out[-1] = (out[-1][0], out[-1][1] + line)
        else:
            name, _, value = line.partition(":")
            out.append((name, value.lstrip()))
    return out


def _joined(value: str) -> str:
    """RFC 2047 6.2: white space between adjacent encoded words is not shown. The email package's
    phrase reader keeps it (a display name split over words reads "Иван Петрович Сидо ров"), so a
    run of words is merged into one before reading; subjects (unstructured) need no help."""

    def merge(match: re.Match[str]) -> str:
        text = "".join(str(make_header(decode_header(w))) for w in re.findall(_EW, match.group(0)))
        return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="

    return _EW_RUN.sub(merge, value)


def mailboxes(raw: bytes) -> dict[str, list[tuple[str, str, str]]]:
    """(display name, local part, domain) per address header, read by the email package."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for name, value in header_lines(raw):
        if name in ADDRESS_HEADERS:
            parsed: Any = policy.default.header_factory(name, _joined(value))
            found[name] = [(a.display_name, a.username, a.domain) for a in parsed.addresses]
    return found


def tree(msg: EmailMessage) -> list[tuple[Any, ...]]:
    """The MIME tree in order: type, charset, disposition, file name, decoded content."""
    out: list[tuple[Any, ...]] = []
    for part in msg.walk():
        if part.is_multipart():
            out.append((part.get_content_type(),))
            continue
        disposition = part.get_content_disposition()
        content = part.get_content() if disposition is None and part.get_content_maintype() == "text" else part.get_payload(decode=True)
        out.append((part.get_content_type(), part.get_content_charset(), disposition, part.get_filename(), content))
    return out


def intended(out: compose.Outgoing) -> tuple[str, dict[str, list[tuple[str, str]]]]:
    """The subject and (display name, addr-spec) per address header a reader should see."""

    def box(name: str, address: str) -> tuple[str, str]:
        found = mailbox(compose.clean(address, 400))
        return compose.clean(name, 200), found.address if found else "invalid-address@invalid"

    people = {"From": [box(out.from_name, out.from_address)], "To": [box(out.to_name, out.to_address)]}
    if out.cc:
        people["Cc"] = [box(n, a) for n, a in out.cc]
    people["Reply-To"] = [box(out.from_name, out.reply_to)]
    return commands.neutralise(compose.clean(out.subject, 400)), people


def readable(spec: str) -> bool:
    """Whether the email package reads this addr-spec at all: "bob@example.com." (a root dot some
    clients write) passes the relay's mailbox check but is obsolete syntax it reads as nothing."""
    found: Any = policy.default.header_factory("To", spec)
    return [f"{a.username}@{a.domain}" for a in found.addresses] == [spec]


def assert_as_intended(new: bytes, out: compose.Outgoing) -> ParsedMail:
    """What came from a customer (names, the subject) and the thread's ids read back as they were,
    by the email package (policy.default) and by mailgate's own reader."""
    msg = message_from_bytes(new, policy=policy.default)
    subject, people = intended(out)
    assert str(msg["Subject"]) == subject
    read = {h: [(n, f"{u}@{d}") for n, u, d in v] for h, v in mailboxes(new).items()}
    assert read.keys() == people.keys()
    for h, v in people.items():
        if all(readable(s) for _, s in v):  # else only mailgate's reader, below, can be asked
            assert read[h] == v, h
    parent, references = compose.threading(out)
    assert str(msg["In-Reply-To"]) == (f"<{parent}>" if parent else "None")
    assert str(msg["References"]) == (" ".join(f"<{r}>" for r in references) if references else "None")
    ours = parse(new)
    assert ours.subject == subject
    assert (ours.in_reply_to, ours.references) == (parent, tuple(references))
    utf8 = not new.split(b"\r\n\r\n")[0].isascii()
    for field, h in (("from_", "From"), ("to", "To"), ("cc", "Cc"), ("reply_to", "Reply-To")):
        read = [(x.name, x.address) for x in getattr(ours, field)]
        if utf8:
            # A UTF-8 address takes mailgate's reader down the email package's path, which shows a
            # space between two encoded words (in UTF-8 headers only a name with "=?" has them) and
            # decodes a name's "=?...?=" text once more.
            read = [(n if "=?" not in m else m, s) for (n, s), (m, _) in zip(read, people.get(h, []), strict=False)]
        assert read == people.get(h, []), field
    return ours


def assert_same(old: bytes, new: bytes, *, addresses: bool = True) -> None:
    """The email package (policy.default) and mailgate's reader read both the same: every other
    header, the addresses, the MIME tree (types, charsets, file names) and each part's content.

    Not compared here, held to what was meant by assert_as_intended instead: the subject and the
    display names (the email package lost the space between two encoded words and decoded a
    customer's own "=?...?=" text), In-Reply-To and References (it encoded a Message-ID longer
    than a line as an RFC 2047 word, which no client matches), the transfer encoding (base64 for
    mostly non-Latin text) and the boundaries.
    """
    a = message_from_bytes(old, policy=policy.default)
    b = message_from_bytes(new, policy=policy.default)
    assert isinstance(a, EmailMessage) and isinstance(b, EmailMessage)
    assert sorted(a.keys()) == sorted(b.keys())
    skip = (*ADDRESS_HEADERS, "Subject", "In-Reply-To", "References", "Content-Type", "Content-Transfer-Encoding")
    for name in a.keys():
        if name not in skip:
            assert [str(v) for v in a.get_all(name, [])] == [str(v) for v in b.get_all(name, [])], name
    if addresses:
        read = mailboxes(new)
        for h, v in mailboxes(old).items():
            assert [(u, d) for _, u, d in v] == [(u, d) for _, u, d in read[h]], h
    assert a.get_content_type() == b.get_content_type()
    assert tree(a) == tree(b)
    ours_a, ours_b = parse(old), parse(new)
    for field in ("message_id", "text", "date", "html"):
        assert getattr(ours_a, field) == getattr(ours_b, field), field
    assert [(f.filename, f.content_type, f.data) for f in ours_a.attachments] == [
        (f.filename, f.content_type, f.data) for f in ours_b.attachments
    ]


def assert_well_formed(raw: bytes, out: compose.Outgoing) -> None:
    """CRLF only, no line over 998 octets, header lines within 78 unless one token is longer,
    7-bit unless an address has a UTF-8 local part."""
    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b"")
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
    for text in head.decode("utf-8").split("\r\n"):  # RFC 5322 2.1.1 counts characters; 998 above is octets
        tokens = text.split(" ")  # over 78 only for one token too long to fold, never an encoded word
        assert len(text) <= 78 or (len(tokens) == 2 and not tokens[1].startswith("=?")), text
    for line in body.split(b"\r\n"):  # encoded bodies within 76; a part's header as the top ones
        assert len(line) <= 78 or len(line.split(b" ")) == 2, line
    assert body.isascii()
    utf8 = any(
        (box := mailbox(compose.clean(address, 400))) is not None and box.utf8
        for address in (out.from_address, out.to_address, out.reply_to, *(a for _, a in out.cc))
    )
    assert head.isascii() is not utf8


def outgoing(rendered: Any, i: int, language: str) -> compose.Outgoing:
    """A mail as the writer builds one, its data turning through the cases above by i."""
    name, address = PEOPLE[i % len(PEOPLE)]
    cc = tuple(PEOPLE[(i + k) % len(PEOPLE)] for k in range(1, 4)) if i % 3 == 0 else ()
    return compose.Outgoing(
        from_name="Asiakaspalvelu – Example Support Oy", from_address="support@example.test",
        to_name=name, to_address=address, reply_to="support+r.1042.6d2b1f0e@example.test",
        subject=compose.tagged_subject(rendered.subject, "#", 1042), message_id=f"r.1042.{i}.a81f2c@example.test",
        text=rendered.text, html=rendered.html if i % 4 != 1 else None, marker="mg:1042:6d2b1f0e",
        in_reply_to=REFERENCES[-1] if i % 2 else f"<CAF{i}=x+Yq@mail.gmail.com>", references=REFERENCES[: i % 31],
        automatic=i % 5 != 0, auto_kind="auto-generated" if i % 2 else "auto-replied", language=language,
        date=WHEN, cc=cc, files=FILES[: i % (len(FILES) + 1)] if i % 2 == 0 else (),
    )


def data_for(i: int) -> dict[str, Any]:
    """Template data with a customer's real-world name and subject (sample_context for the rest)."""
    name, address = PEOPLE[i % len(PEOPLE)]
    sample = sample_context()
    ours = context(
        gateway="Example Support", number=1042, tag="#", subject=SUBJECTS[i % len(SUBJECTS)], queue="support",
        customer_name=name, customer_address=address, agent_name="Aino Äijälä", agent_id="aino",
        message_text="Hei,\n\ntulostin on tulessa. Принтер горит. 打印机着火了。\n\n-- \nZoë\n", message_from=f"{name} <{address}>",
        reply_text="Olemme asialla.\nМы работаем.", assignee="aino",
    )
    return {**sample, **{k: ours[k] for k in ("ticket", "customer", "agent", "message", "reply_text")}}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_reads_back_the_same(language: str) -> None:
    templates = Templates()
    for n, name in enumerate(NAMES):
        for variant in range(3):
            i = n * 3 + variant
            rendered = templates.render(name, language, data_for(i))
            out = outgoing(rendered, i, language)
            new = compose.wire(out)
            assert_same(reference(out), new)
            assert_as_intended(new, out)
            assert_well_formed(new, out)


def test_names_and_subjects_read_back_exactly() -> None:
    """What the customer wrote is what a reader shows: names, addresses, the subject and the text."""
    rendered = Templates().render("ack", "en", data_for(0))
    for i, (name, address) in enumerate(PEOPLE):
        out = outgoing(rendered, i, "en")
        out = dataclasses.replace(out, to_name=name, to_address=address, subject=SUBJECTS[i % len(SUBJECTS)])
        raw = compose.wire(out)
        read = mailboxes(raw)["To"][0]
        box = mailbox(address)
        assert read[0] == name
        assert f"{read[1]}@{read[2]}" == (box.address if box else "invalid-address@invalid")
        msg = message_from_bytes(raw, policy=policy.default)
        assert str(msg["Subject"]) == commands.neutralise(compose.clean(SUBJECTS[i % len(SUBJECTS)], 400))
        ours = parse(raw)
        assert ours.to[0].name == name and ours.subject == str(msg["Subject"])
        assert ours.text.replace("\r\n", "\n").startswith(rendered.text.rstrip("\n"))


def test_text_that_looks_like_an_encoded_word_is_shown_as_written() -> None:
    """A customer naming themselves "=?utf-8?q?Aino_Agent?=" is shown that, not "Aino Agent": the
    email package wrote such words as they were and every reader decoded them."""
    out = outgoing(Templates().render("notify_new", "en", data_for(0)), 2, "en")
    spoof = "=?utf-8?q?Aino_Agent?="
    out = dataclasses.replace(out, to_name=spoof, subject=f"from {spoof}")
    raw = compose.wire(out)
    assert mailboxes(raw)["To"][0][0] == spoof
    assert str(message_from_bytes(raw, policy=policy.default)["Subject"]) == f"from {spoof}"
    assert parse(raw).to[0].name == spoof


def test_long_message_ids_stay_whole() -> None:
    """An Outlook Message-ID longer than a line is written as itself: the email package encoded it
    as an RFC 2047 word, which no client matches against its sent mail, so the thread broke."""
    out = outgoing(Templates().render("reply", "en", data_for(1)), 1, "en")
    raw = compose.wire(out)
    head = raw.split(b"\r\n\r\n")[0]
    assert b"=?" not in head.split(b"\r\nIn-Reply-To:")[1]
    ours = parse(raw)
    assert ours.in_reply_to == REFERENCES[-1] and ours.references[-1] == REFERENCES[-1]


def test_hostile_file_names_are_carried_not_injected() -> None:
    """A stored file name with CR/LF made the email package raise (the whole transaction failed);
    here it goes percent-encoded (RFC 2231) and reads back as it was."""
    names = ["a\r\nContent-Type: text/html\r\n\r\n<script>.pdf", "tab\there.txt", "", "x" * 1200 + ".pdf", "ü" * 300]
    out = outgoing(Templates().render("files", "en", data_for(0)), 0, "en")
    files = tuple(File(n, "application/pdf", b"%PDF") for n in names)
    raw = compose.wire(dataclasses.replace(out, files=files))
    msg = message_from_bytes(raw, policy=policy.default)
    assert [p.get_filename() for p in msg.iter_attachments()] == names
    assert len(list(msg.walk())) == 4 + len(files)  # mixed, alternative, text, html, the files
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998


_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=120)
_WORDS = st.lists(st.sampled_from(["Zoë", "张伟", "=?", "?=", '"', "\\", ",", "@", "Jr.", "a" * 80, "🦊", "é", " ", "Иван"]),
                  max_size=30).map("".join)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(name=st.one_of(_TEXT, _WORDS), subject=st.one_of(_TEXT, _WORDS), body=_TEXT, html=st.one_of(st.none(), _TEXT),
       filename=_TEXT, address=st.sampled_from([a for _, a in PEOPLE]))
def test_any_name_subject_and_body(name: str, subject: str, body: str, html: str | None, filename: str, address: str) -> None:
    """Random data: the new bytes read back as intended; the reference agrees wherever it was right."""
    out = compose.Outgoing(
        from_name=name, from_address="support@example.test", to_name=name, to_address=address,
        reply_to="support+r.1@example.test", subject=subject, message_id="r.1.x@example.test", text=body, html=html,
        marker="mg:1", cc=((name, "cc@customer.test"),), date=WHEN, files=(File(filename, "text/plain", body.encode()),),
    )
    new = compose.wire(out)
    assert_well_formed(new, out)
    assert_as_intended(new, out)
    try:
        old = reference(out)
    except ValueError:  # the email package refuses a file name with CR/LF: nothing to compare with
        return
    # A display name with quotes the email package misfolds can swallow the address: compared only where it read right.
    _, people = intended(out)
    right = {h: [(n, f"{u}@{d}") for n, u, d in v] for h, v in mailboxes(old).items()} == people
    assert_same(old, new, addresses=right)
