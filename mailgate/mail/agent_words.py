"""Which of an agent's words may reach the customer: nothing of the mailgate mail they answered."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mailgate import tokens
from mailgate.models import ParsedMail

log = logging.getLogger("mailgate.agent_words")

_QUOTED = re.compile(r"^[ \t]*>")
_FRAME_LINE = 16  # shorter lines ("Hello,", "Thanks!") are said by anyone; longer ones are our template's


class SentMail(Protocol):
    """A mail mailgate wrote and the agent answers (store.sent.SentMail)."""

    @property
    def text(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def from_address(self) -> str: ...


class Thread(Protocol):
    """The ticket's texts an answer may quote (store.sent.ThreadTexts)."""

    @property
    def seen(self) -> Sequence[str]: ...
    @property
    def answered(self) -> Sequence[SentMail]: ...


@dataclass(frozen=True, slots=True)
class Words:
    """The words for the customer, and whether an unmarked copy of our mail was cut from them."""

    text: str
    pasted: bool


@dataclass(frozen=True, slots=True)
class _Context:
    seen: str  # " word word … ": what the customer's side has seen (their mails, replies that went out)
    ours: str  # " word word … ": the mailgate mails the agent answers
    frame: frozenset[str]  # lines of those mails the customer never saw (greeting, ticket facts, footer)
    names: frozenset[str]  # their subjects and sender: what a header block or attribution names
    secret: bytes  # to know our references ("[ref:…]") wherever they are quoted


def answered_ids(mail: ParsedMail) -> list[str]:
    """The Message-IDs of the mails this one answers: In-Reply-To and the last References."""
    return [m for m in (mail.in_reply_to, *mail.references[-3:]) if m]


def for_customer(words: str, thread: Thread | None, secret: bytes) -> Words:
    """The agent's words (already cut from quoted history) without what mailgate wrote to the agent.

    `thread` is the ticket's texts (store.sent.thread_texts), None for mail on no ticket.
    """
    if not words or thread is None:
        return Words(words, False)
    context = _context(thread, secret)
    text, pasted = _before_our_mail(words, context)
    return Words(_shown_quotes_only(text, context), pasted)


def _context(thread: Thread, secret: bytes) -> _Context:
    seen = " " + " ".join(_plain_words(text) for text in thread.seen) + " "
    frame = {said for m in thread.answered for line in m.text.splitlines()
             if len(said := _plain_words(line)) >= _FRAME_LINE and f" {said} " not in seen}
    names = {_plain_words(value) for m in thread.answered for value in (m.subject, m.from_address) if value}
    ours = " " + " ".join(_plain_words(m.text) for m in thread.answered) + " "
    return _Context(seen, ours, frozenset(frame), frozenset(names), secret)


def _before_our_mail(words: str, context: _Context) -> tuple[str, bool]:
    """The words above the first unquoted line of the mailgate mail answered, and whether one was found.

    The cut knows quoted history by its attribution or header block; a client or language it does
    not know (a Czech Outlook's "Od:/Odesláno:") leaves our notification in the words as plain
    lines. We know what we sent, so a line of it the customer never saw marks where the quote starts.
    """
    lines = words.split("\n")
    for i, line in enumerate(lines):
        if not _QUOTED.match(line) and _plain_words(line) in context.frame:
            cut = _header_above(lines, i, context.names)
            log.info("agent_words.quote_by_content line=%d of=%d", cut + 1, len(lines))
            return "\n".join(lines[:cut]).strip("\n"), True
    return words, False


def _header_above(lines: list[str], at: int, names: frozenset[str]) -> int:
    """Where the quote starts: at, or the paragraph above it when that names our mail (its
    subject or sender: a header block or attribution line the phrase tables do not know)."""
    end = at - 1
    while end >= 0 and not lines[end].strip():
        end -= 1
    start = end
    while start >= 0 and lines[start].strip():
        start -= 1
    paragraph = lines[start + 1:end + 1]
    if paragraph and any(name in _plain_words(line) for line in paragraph for name in names):
        return start + 1
    return at


def _shown_quotes_only(words: str, context: _Context) -> str:
    """The agent's words without the quoted paragraphs of our mail that the customer never saw.

    An inline answer keeps its questions (quoted lines), but it quotes our notification: its
    greeting, ticket facts, footer and reference are for agents. What else the agent quotes (a
    policy, a manual) is theirs and stays. Without a known answered mail, only what the
    customer's side has seen stays.
    """
    lines = words.split("\n")
    if not any(_QUOTED.match(line) for line in lines):
        return words
    lines = _without_leading_history(lines, context)
    kept: list[str] = []
    paragraph: list[str] = []

    def internal(said: str, quoted: str) -> bool:
        if tokens.find(context.secret, quoted):
            return True  # our reference, even in a customer's quote of our mail: never sent on
        if f" {said} " in context.seen:
            return False
        return context.ours.strip() == "" or f" {said} " in context.ours

    def close() -> None:
        quoted = "\n".join(paragraph)
        said = _plain_words(quoted)
        if said and not internal(said, quoted):
            kept.extend(paragraph)
        elif kept:
            kept.append(">")  # an elided paragraph reads as a gap, never as two glued questions
        paragraph.clear()

    for line in lines:
        if _QUOTED.match(line) and line.strip(" \t>"):
            paragraph.append(line)
            continue
        if paragraph:
            close()
        kept.append(">" if _QUOTED.match(line) else line)
    if paragraph:
        close()
    return "\n".join(_tidy_quote_gaps(kept)).strip("\n")


def _from_thread(quoted: str, context: _Context) -> bool:
    said = _plain_words(quoted)
    return bool(said) and (f" {said} " in context.seen or f" {said} " in context.ours)


def _without_leading_history(lines: list[str], context: _Context) -> list[str]:
    """Without the quote the words start with, unless a later quote of the thread makes it an inline answer.

    A bottom-posted answer that itself quotes something for the customer (a warranty clause)
    looks inline to the cut; only quoted questions of this ticket make it one.
    """
    first = next((i for i, line in enumerate(lines) if line.strip() and not _QUOTED.match(line)), None)
    if not first:
        return lines
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines[first:] + [""]:
        if _QUOTED.match(line) and line.strip(" \t>"):
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if any(_from_thread(p, context) for p in paragraphs):
        return lines
    return lines[first:]


def _plain_words(text: str) -> str:
    """Words without quote marks, case or line breaks: the same sentence, however a client wrapped it."""
    return " ".join(text.replace(">", " ").casefold().split())


def _tidy_quote_gaps(lines: list[str]) -> list[str]:
    """No quote-gap lines at the start, at the end, next to a blank line or to another gap."""
    out: list[str] = []
    for line in lines:
        if line.strip() == ">" and (not out or not out[-1].strip() or out[-1].strip() == ">"):
            continue
        if not line.strip() and out and out[-1].strip() == ">":
            out.pop()
        out.append(line)
    while out and out[-1].strip() in ("", ">"):
        out.pop()
    return out
