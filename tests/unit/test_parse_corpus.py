"""parse() over the shared real-world corpus: never raises, and agrees with the upstream expectations."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mailgate.mail.parse import parse
from mailgate.models import MailKind, ParsedMail

from ..conftest import CORPUS

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")

_SKIP_SUFFIXES = (".json", ".yml", ".xml", ".out")


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name != "README.md" and not p.name.endswith(_SKIP_SUFFIXES) and "_decoded" not in p.name
    )


@functools.cache
def parsed(relative: str) -> ParsedMail:
    return parse((CORPUS / relative).read_bytes())


def _expected(relative: str) -> dict[str, Any]:
    path = CORPUS / relative
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def test_every_corpus_file_parses() -> None:
    files = _corpus_files()
    assert len(files) > 1000
    failures = []
    for path in files:
        try:
            result = parsed(str(path.relative_to(CORPUS)))
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            failures.append(f"{path}: {exc!r}")
            continue
        if any(d.startswith("ParseError") for d in result.defects):
            failures.append(f"{path}: {result.defects}")
    assert not failures, failures


# --- letters: exact headers, bodies and attachment hashes ---------------------------------------

LETTERS = _expected("letters/_expected.json")


@pytest.mark.parametrize("name", sorted(LETTERS))
def test_letters(name: str) -> None:
    e = LETTERS[name]
    p = parsed(f"letters/{name}")
    if "subject" in e:
        assert p.subject == e["subject"]
    for key, got in (("from", p.from_), ("to", p.to), ("cc", p.cc), ("reply_to", p.reply_to)):
        if key in e:
            assert [a.to_json() for a in got] == e[key], key
    if "message_id" in e:
        assert p.message_id == e["message_id"]
    if e.get("in_reply_to"):
        assert p.in_reply_to == e["in_reply_to"][0]
    if "references" in e:
        assert list(p.references) == e["references"]
    if "text" in e:
        # letters trims the body; we keep it as sent.
        assert p.text.strip() == e["text"].strip()
    files = e.get("attached_files", []) + e.get("inline_files", [])
    assert sorted(a.sha256 for a in p.attachments) == sorted(f["sha256"] for f in files)
    inline = {f["sha256"] for f in e.get("inline_files", [])} - {f["sha256"] for f in e.get("attached_files", [])}
    assert all(a.inline for a in p.attachments if a.sha256 in inline)
    for f in e.get("attached_files", []):
        if f.get("filename"):
            assert f["filename"] in [a.filename for a in p.attachments]


# --- zbateson/mail-mime-parser ------------------------------------------------------------------

ZBATESON = _expected("zbateson-mail-mime-parser/_expected.json")
ZB_FILES = CORPUS / "zbateson-mail-mime-parser" / "emails" / "files"
ZB_DEVIATIONS = {
    # RFC 2046 5.1.1: the CRLF before a boundary belongs to the delimiter; zbateson keeps it.
    ("emails/m0022.txt", "aaa.txt"),
    # BinHex 4.0 (application/mac-binhex40) is not decoded; we hand out the encoded bytes.
    ("emails/m2011.txt", "blueball.png"),
}


@pytest.mark.parametrize("name", sorted(ZBATESON))
def test_zbateson(name: str) -> None:
    e = ZBATESON[name]
    p = parsed(f"zbateson-mail-mime-parser/{name}")
    if "Subject" in e:
        assert p.subject == e["Subject"]
    if "Message-ID" in e:
        assert p.message_id == e["Message-ID"]
    for key, got in (("From", p.from_), ("To", p.to)):
        if key in e:
            assert got, key
            if "email" in e[key]:
                assert got[0].address == e[key]["email"]
            if "name" in e[key]:
                assert got[0].name == e[key]["name"]
    if "attachments" in e:
        # zbateson does not count inline text parts (it shows them as body) nor the signature part.
        counted = [
            a
            for a in p.attachments
            if not (a.inline and a.content_type in ("text/plain", "text/html"))
            and a.content_type not in ("application/pgp-signature", "application/pkcs7-signature")
        ]
        assert len(counted) == e["attachments"]
    for a in p.attachments:
        if a.filename and (ZB_FILES / a.filename).is_file() and (name, a.filename) not in ZB_DEVIATIONS:
            assert a.data == (ZB_FILES / a.filename).read_bytes(), a.filename
    if "text" in e:
        want = (ZB_FILES / e["text"]).read_bytes().decode("latin-1")
        assert re.sub(r"\s+", "", p.text) == re.sub(r"\s+", "", want)
    if "html" in e:
        assert p.html is not None


# --- php-mime-mail-parser -----------------------------------------------------------------------

PHP = _expected("php-mime-mail-parser/_expected.json")


@pytest.mark.parametrize("name", sorted(PHP))
def test_php_mime_mail_parser(name: str) -> None:
    e = PHP[name]
    path = f"php-mime-mail-parser/{name}"
    if not (CORPUS / path).is_file():
        path += ".eml"
    p = parsed(path)
    if "subject" in e:
        assert p.subject == e["subject"]
    text = e.get("text_body")
    if text and text["mode"] == "exact":
        assert p.text == text["value"].replace("\r\n", "\n")
    elif text and text["mode"] == "count":
        assert p.text.count(text["substring"]) == text["count"]
    for key, got in (("from_addresses", p.from_), ("to_addresses", p.to)):
        if key in e:
            assert [a.address for a in got] == [a["address"] for a in e[key]]

    # php invents "noname1", "noname2" for unnamed parts; we report None.
    def name_of(filename: str) -> str | None:
        return None if re.fullmatch(r"noname\d*", filename) else filename

    want = sorted(((name_of(a["filename"]), a["size"]) for a in e.get("attachments", [])), key=str)
    assert sorted(((a.filename, a.size) for a in p.attachments), key=str) == want


# --- zammad -------------------------------------------------------------------------------------

ZAMMAD = CORPUS / "zammad"
ZAMMAD_DEVIATIONS = {
    # Zammad itself decodes this 8-bit GB2312 display name as windows-1250 mojibake.
    ("mail046.yml", "from_display_name"),
}


def _zammad_cases() -> list[str]:
    return sorted(p.name for p in ZAMMAD.glob("*.yml") if p.with_suffix(".box").is_file()) if ZAMMAD.is_dir() else []


def _load_zammad(name: str) -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")

    class Loader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
        pass

    Loader.add_constructor("!binary", lambda loader, node: loader.construct_yaml_binary(node))
    text = (ZAMMAD / name).read_text(encoding="utf-8")
    text = re.sub(r"!ruby/\S+", "", text)  # Ruby class tags; the data under them is plain YAML
    data: dict[str, Any] = yaml.load(text, Loader=Loader)
    return data


@pytest.mark.parametrize("name", _zammad_cases())
def test_zammad(name: str) -> None:
    e = _load_zammad(name)
    p = parsed(f"zammad/{name.replace('.yml', '.box')}")
    if "subject" in e:
        assert p.subject == e["subject"]
    if "from_email" in e:
        assert p.from_ and p.from_[0].address.lower() == str(e["from_email"]).lower()
    if "from_display_name" in e and (name, "from_display_name") not in ZAMMAD_DEVIATIONS:
        assert p.from_ and p.from_[0].name == e["from_display_name"]
    if "attachments" in e:
        # Zammad stores the HTML body as "message.html" and invents names for unnamed parts
        # (from Content-ID, the subject, "image.jpg"); we leave those None.
        expected = [a.get("filename") for a in e["attachments"] if a.get("filename") != "message.html"]
        assert len(p.attachments) == len(expected)
        for a in p.attachments:
            if a.filename is not None:
                assert a.filename in expected


# --- bounces and auto-replies -------------------------------------------------------------------

SISIMAI = _expected("sisimai/_labels.json")


def _sisimai_category(key: str, labels: Any) -> str:
    if key.startswith("maildir/not/") or labels == "not-a-bounce":
        return "not"
    reasons = {entry["reason"] for entry in labels} if isinstance(labels, list) else set()
    for special in ("vacation", "feedback"):
        if special in reasons:
            return special
    if reasons == {"delivered"}:
        return "delivered"
    return "bounce"


def _sisimai_kinds(category: str) -> list[MailKind]:
    return [
        parsed(f"sisimai/{key}").kind
        for key, labels in sorted(SISIMAI.items())
        if (CORPUS / "sisimai" / key).is_file() and _sisimai_category(key, labels) == category
    ]


def test_sisimai_bounces_are_bounces() -> None:
    kinds = _sisimai_kinds("bounce")
    assert len(kinds) > 300
    rate = kinds.count(MailKind.BOUNCE) / len(kinds)
    assert rate >= 0.97, rate  # measured 362/369 = 98.1%


def test_sisimai_vacation_is_auto_reply() -> None:
    kinds = _sisimai_kinds("vacation")
    assert kinds and all(k is MailKind.AUTO_REPLY for k in kinds)


def test_sisimai_not_bounces() -> None:
    paths = [p for p in (CORPUS / "sisimai" / "maildir" / "not").rglob("*") if p.is_file()]
    kinds = [parsed(str(p.relative_to(CORPUS))).kind for p in paths]
    assert kinds
    assert kinds.count(MailKind.BOUNCE) / len(kinds) <= 0.1


DISCOURSE = _expected("discourse/_labels.json")


@pytest.mark.parametrize(
    "name", sorted(k for k, v in DISCOURSE.items() if v.get("category") in ("auto-generated", "bounce"))
)
def test_discourse_categories(name: str) -> None:
    p = parsed(f"discourse/{name}")
    if DISCOURSE[name]["category"] == "bounce":
        assert p.kind is MailKind.BOUNCE
    else:
        assert p.kind in (MailKind.AUTO_REPLY, MailKind.BULK)


def test_bounce_of_found_for_dsn_with_returned_message() -> None:
    p = parsed("flanker/messages/bounce/gmail-invalid-address.eml")
    assert p.kind is MailKind.BOUNCE
    assert p.bounce_of == "CAKsfaBUUGqVZiaMrmH3TRPfq1odQPtM7Ey5YW1SgyJJRHtAjgw@mail.gmail.com"
