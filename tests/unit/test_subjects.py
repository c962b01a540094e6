"""Ticket subjects: reply prefixes and tags out, tag numbers read."""

from __future__ import annotations

from mailgate.mail.subjects import clean_subject, subject_tags


def test_clean_subject_and_tags() -> None:
    assert clean_subject("RE: [#1234] Re[2]: Fw: Hello", "#") == "Hello"
    assert clean_subject("Odp: Vs: Sv: Antw: Válasz: Hei", "#") == "Hei"
    assert clean_subject("Ticket: Re vs. Reality", "#") == "Ticket: Re vs. Reality"
    assert clean_subject("Re: [Ticket#77] x", "Ticket#") == "x"
    assert subject_tags("RE: [#12] and [# 13]", "#") == [12, 13]
    assert subject_tags("[#12a]", "#") == []
