"""Addresses with quoted local parts, and Japanese mail whose charset label does not match its bytes."""

from __future__ import annotations

import base64

import pytest

from mailgate.mail.addresses import addresses, lenient_addresses
from mailgate.mail.charsets import decode_bytes, decode_words
from mailgate.mail.parse import parse
from mailgate.models import Address

# --- quoted local parts (RFC 5322 section 3.4.1) ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"First Last"@example.com', [Address("", '"First Last"@example.com')]),
        ('Ann Lee <"ann lee"@example.org>', [Address("Ann Lee", '"ann lee"@example.org')]),
        ('<"System Administrator"@mail.example.net>', [Address("", '"System Administrator"@mail.example.net')]),
        ('"Lee, Ann" <"ann@home"@example.org>', [Address("Lee, Ann", '"ann@home"@example.org')]),
        ('"odd\\"quote"@example.com', [Address("", '"odd\\"quote"@example.com')]),
        # Quotes around a dot-atom are optional; without them it is the same mailbox.
        ('"ann.lee"@example.com', [Address("", "ann.lee@example.com")]),
    ],
)
def test_quoted_local_part_keeps_its_quotes(value: str, expected: list[Address]) -> None:
    found, clean = addresses("From", value, [])
    assert list(found) == expected
    assert clean


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Nothing to quote: RFC 6532 UTF-8 local parts, and the odd dots of old Japanese carrier
        # addresses, which servers take unquoted (both still count as unclean senders).
        ("Jürgen <jürgen@example.de>", Address("Jürgen", "jürgen@example.de")),
        ("<taro..hanako.@docomo.example.jp>", Address("", "taro..hanako.@docomo.example.jp")),
    ],
)
def test_unusual_local_parts_stay_unquoted(value: str, expected: Address) -> None:
    found, _ = addresses("From", value, [])
    assert list(found) == [expected]


def test_display_names_and_groups_around_quoted_local_parts() -> None:
    value = 'Team: "Bob Smith"@example.com, "Doe, Jane" <jane@example.com>;, carol@example.com (Carol C.)'
    found, _ = addresses("To", value, [])
    assert [(a.name, a.address) for a in found] == [
        ("", '"Bob Smith"@example.com'),
        ("Doe, Jane", "jane@example.com"),
        ("Carol C.", "carol@example.com"),
    ]


def test_lenient_reader_requotes_too() -> None:
    found = lenient_addresses('"First Last"@example.com, Bob <bob@example.com>')
    assert [a.address for a in found] == ['"First Last"@example.com', "bob@example.com"]


def test_quoted_local_part_in_a_whole_mail() -> None:
    raw = (
        b'From: "Service Desk" <"service desk"@help.example.com>\r\n'
        b'To: "Jo Bloggs"@example.org\r\nSubject: Ticket\r\nMessage-ID: <q1@example.com>\r\n\r\nHello\r\n'
    )
    p = parse(raw)
    assert p.from_[0].address == '"service desk"@help.example.com'
    assert p.from_[0].name == "Service Desk"
    assert p.to[0].address == '"Jo Bloggs"@example.org'


# --- Japanese charsets under the wrong label ------------------------------------------------------

JAPANESE = "いつもお世話になっております。先日注文した商品がまだ届いておりません。確認をお願いします。"


@pytest.mark.parametrize(
    ("codec", "label"),
    [
        ("cp932", "ISO-2022-JP"),  # Windows clients and carrier gateways
        ("cp932", "euc-jp"),
        ("euc_jp", "iso-2022-jp"),
        ("euc_jp", "Shift_JIS"),  # decodes without error, to half-width katakana soup
        ("iso2022_jp", "shift_jis"),  # escapes would be shown as text
    ],
)
def test_mislabelled_japanese_reads_in_its_real_charset(codec: str, label: str) -> None:
    text, defect = decode_bytes(JAPANESE.encode(codec), label)
    assert text == JAPANESE
    assert defect is not None and defect.startswith("CharsetMislabelled:")


@pytest.mark.parametrize("codec", ["iso2022_jp", "cp932", "euc_jp"])
def test_correct_japanese_labels_stay_quiet(codec: str) -> None:
    label = {"iso2022_jp": "ISO-2022-JP", "cp932": "Shift_JIS", "euc_jp": "EUC-JP"}[codec]
    assert decode_bytes(JAPANESE.encode(codec), label) == (JAPANESE, None)


def test_mislabelled_encoded_word_in_a_subject() -> None:
    word = base64.b64encode("見積もりのお願い".encode("cp932")).decode()
    defects: list[str] = []
    assert decode_words(f"=?ISO-2022-JP?B?{word}?=", None, defects) == "見積もりのお願い"
    assert defects == ["CharsetMislabelled:iso2022_jp_ext>cp932"]


def test_whole_mail_from_a_phone_gateway_labelled_iso_2022_jp_in_shift_jis() -> None:
    body = "ご注文ありがとうございます。\r\n配送状況を教えてください。\r\n".encode("cp932")
    raw = (
        b"From: taro@ezweb.example.jp\r\nTo: support@example.com\r\nSubject: =?ISO-2022-JP?B?"
        + base64.b64encode("配送について".encode("cp932"))
        + b"?=\r\nMessage-ID: <jp1@ezweb.example.jp>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="ISO-2022-JP"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' + body
    )
    p = parse(raw)
    assert p.subject == "配送について"
    assert "配送状況を教えてください。" in p.text
    assert "\ufffd" not in p.text
    assert any(d.startswith("CharsetMislabelled:") for d in p.defects)


@pytest.mark.parametrize("label", ["unicode_escape", "raw_unicode_escape", "undefined", "base64"])
def test_hostile_labels_are_still_refused(label: str) -> None:
    text, defect = decode_bytes(b"caf\\u00e9 \\ud800", label)
    assert "\ud800" not in text and defect == f"UnknownCharset:{label}"


def test_undecodable_bytes_never_raise() -> None:
    text, defect = decode_bytes(bytes(range(256)), "iso-2022-jp")
    assert isinstance(text, str) and defect is not None


def test_name_without_angle_brackets_is_not_a_quoted_mailbox() -> None:
    # Web forms write "Name address" with no brackets: the sender quoted nothing, so the last word
    # is the address and the rest the name (and the mailbox is never counted as clean).
    found, clean = addresses("From", "John Smith john.smith@example.com", [])
    assert list(found) == [Address("John Smith", "john.smith@example.com")]
    assert not clean


def test_latin1_text_under_a_utf8_label_is_read_as_windows_1252() -> None:
    text, defect = decode_bytes("Det här är ett meddelande – tack!".encode("cp1252"), "utf-8")
    assert text == "Det här är ett meddelande – tack!"
    assert defect == "CharsetMislabelled:utf-8>cp1252"


def test_utf8_with_one_damaged_byte_stays_utf8() -> None:
    data = "Привет, это письмо".encode() + b"\xd1" + " и конец".encode()
    text, defect = decode_bytes(data, "UTF-8")
    assert text.startswith("Привет, это письмо") and text.endswith(" и конец")
    assert defect == "CharsetDecodeError:utf-8"
