"""Render outgoing mail from Jinja2 templates: sandboxed, strict, per language, operator overrides first."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from mailgate.config import LANGUAGES, Config
from mailgate.outgoing.compose import clean

# Inside the package, so a wheel (`pip install .`, not only an editable checkout) carries them.
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "templates"
# Every mail mailgate writes; each is <lang>/<name>.txt (first line: the subject) and optionally .html.
NAMES: tuple[str, ...] = (
    # To the customer, and about their mail.
    "ack", "notify_new", "notify_reply", "resolved", "reply", "delivery_failed", "held",
    # To agents working by mail: notes, what their commands did, mail in their name without proof.
    "notify_note", "agent_done", "agent_refused", "agent_unproven",
    # Ticket life: SLA warnings and breaches, the end of a wait.
    "sla_warning", "sla_breach", "waiting_over",
    "task_new", "task_overdue",
    "merged", "forward", "help_request", "forward_answer",  # merge, forward, ask a colleague
    "assigned",  # an agent hears a ticket was given to them
    "storm_held",  # one notice that a sender's flood is being held (storm fuse)
    "files",  # the ticket's files an agent asked for with [files]
    "search_results",  # the tickets an agent's [search:…] found
    "print",  # the ticket as a printable HTML page, attached ([print], [print:notes])
)
EXCERPT = 1500  # characters of a customer's text quoted in a notification


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str | None


def choose_language(queue: str | None, contact: str | None, default: str) -> str:
    """The queue's language, else the contact's, else the gateway default."""
    for candidate in (queue, contact):
        if candidate in LANGUAGES:
            return candidate
    return default


def context(
    *,
    gateway: str,
    number: int,
    tag: str,
    subject: str,
    status: str = "new",
    priority: str = "normal",
    queue: str | None = None,
    customer_name: str = "",
    customer_address: str = "",
    agent_name: str = "",
    agent_id: str = "",
    message_text: str = "",
    message_from: str = "",
    reply_text: str = "",
    error_recipient: str = "",
    error_kind: str = "",
    error_reason: str = "",
    error_written: str = "",  # when the undelivered mail was written (gateway.timezone), for "your reply of …"
    error_author: str = "",  # the agent who wrote an undelivered reply
    error_yours: bool = False,  # the notice goes to that agent
    assignee: str = "",
    outcome: Mapping[str, Any] | None = None,
    deadline_kind: str = "",  # first_response | resolution
    deadline_due: str = "",
    deadline_minutes: int = 0,
    task: Mapping[str, Any] | None = None,  # id, queue, due, by, text, status
    parties: Mapping[str, Any] | None = None,  # who a mail brought to the ticket: pending, left_out (a count)
    files: Mapping[str, Any] | None = None,  # the customer's files: attached, or listed and why not (_files.txt)
) -> dict[str, Any]:
    """The one shape every template sees: all keys always present, so a typo fails check-config."""
    text = message_text.strip()
    # One-line values may come from a customer's headers: no line breaks in them, even in a body.
    subject, customer_name, message_from = clean(subject), clean(customer_name, 200), clean(message_from, 300)
    return {
        "gateway": {"name": gateway},
        "ticket": {
            "number": number,
            "tag": f"[{tag}{number}]",
            "subject": subject,
            "status": status,
            "priority": priority,
            "queue": queue or "",
            "assignee": assignee,
        },
        "customer": {"name": customer_name or customer_address, "address": customer_address},
        "agent": {"name": agent_name or agent_id, "id": agent_id},
        "message": {
            "from": message_from,
            "excerpt": text[:EXCERPT] + ("\n[...]" if len(text) > EXCERPT else ""),
        },
        "reply_text": reply_text,
        "error": {"recipient": error_recipient, "kind": error_kind, "reason": error_reason,
                  "written": error_written, "author": error_author, "yours": error_yours},
        # What an agent's mail did (agent_done / agent_refused / agent_unproven): every key always there.
        "outcome": {**_OUTCOME, **(outcome or {})},
        "deadline": {"kind": deadline_kind, "due": deadline_due, "minutes": deadline_minutes},
        "task": {**_TASK, **(task or {})},
        "parties": {**_PARTIES, **(parties or {})},
        "files": {**_FILES, **(files or {})},
    }


_OUTCOME: dict[str, Any] = {
    "changes": [],  # lines like "[status:resolved] open → resolved"
    "errors": [],  # lines like "[queue:nope]: unknown queue 'nope'"
    "reply_to": [],  # who the agent's reply goes to
    "reply_at": "",  # when it goes (UTC)
    "note": False,  # the mail was stored as an internal note
    "already_sent": False,  # the agent wrote to the customer directly as well: not sent again
    "listing": "",  # which list ([list:mine])
    "tickets": [],  # {number, subject, status, priority, queue, assignee} for a listing
    "replies": [],  # [list:replies]: {name, language, queue, file, first_line}
    "why": "",  # why a mail was not taken as the agent's
    "opened": False, "address": "",  # agent_unproven: the mail opened the ticket; where to write with proof
    "ticketless": False,  # no ticket: a mail to the command address
    # Merge, forward, ask a colleague: the other ticket; who asked, their words, the history.
    "other_number": 0, "other_subject": "", "other_tag": "",
    "by": "", "question": "", "notes": False,
    "thread": [],  # {direction (in | out | note), from, at, subject, text, attachments: [names]}
}

# A sender who is not a party (kept out until an agent's [cc:add …]); Cc addresses past the cap.
_PARTIES: dict[str, Any] = {"pending": [], "left_out": 0, "left_out_sample": [], "cap": 0}

# entries: {number, name, type, size ("2.3 MB"), bytes, attached, reason (over_cap | too_big | missing)}.
_FILES: dict[str, Any] = {"entries": [], "more": 0, "cap": "", "left": 0, "fetchable": []}

_TASK: dict[str, Any] = {"id": 0, "queue": "", "due": "", "by": "", "text": "", "status": "open"}


def sample_context() -> dict[str, Any]:
    """Data for check-config: every field filled, with characters that need escaping in HTML."""
    return context(
        gateway="Example Support",
        number=1042,
        tag="#",
        subject="Printer <on> fire & smoke",
        queue="support",
        customer_name="Zoë Łukasiewicz-Ådahl",
        customer_address="zoe@customer.example",
        agent_name="Aino Agent",
        agent_id="aino",
        message_text="Hello,\n\nthe printer is <b>on fire</b>.\n",
        message_from="Zoë <zoe@customer.example>",
        reply_text="We are on it.",
        assignee="aino",
        outcome={
            "changes": ["[status:resolved] open → resolved"], "errors": ["[queue:nope]: unknown queue 'nope'"],
            "reply_to": ["zoe@customer.example"], "reply_at": "2026-11-23 10:00 UTC", "listing": "mine",
            "tickets": [{"number": 1042, "subject": "Printer <on> fire", "status": "open", "priority": "high",
                         "queue": "support", "assignee": "aino"}],
            "why": "neither a signed address nor DKIM",
            "other_number": 1041, "other_subject": "Printer <smoke>", "other_tag": "[#1041]",
            "by": "Aino Agent", "question": "Is this <covered> by the warranty?", "notes": True,
            "thread": [{"direction": "in", "from": "Zoë <zoe@customer.example>", "at": "2026-11-23 10:00",
                        "subject": "Printer <on> fire", "text": "It smokes & beeps.", "attachments": ["photo.jpg"]}],
        },
        error_recipient="zoe@customer.example",
        error_kind="ack",
        error_reason="550 5.1.1 no such user",
        error_written="2026-11-23 10:00 EET",
        error_author="Aino Agent",
        deadline_kind="first_response",
        deadline_due="2026-11-24 10:00 (Europe/Helsinki)",
        deadline_minutes=240,
        parties={"pending": ["stranger@elsewhere.example"], "left_out": 980, "cap": 20,
                 "left_out_sample": ["a@list.example", "b@list.example"]},
        files={"entries": [
            {"number": 1, "name": "invoice <2026>.pdf", "type": "application/pdf", "size": "84 KB", "bytes": 86016,
             "attached": True, "reason": ""},
            {"number": 2, "name": "scan & photo.jpg", "type": "image/jpeg", "size": "9.8 MB", "bytes": 10276044,
             "attached": False, "reason": "over_cap"},
            {"number": 3, "name": "video.mp4", "type": "video/mp4", "size": "40.0 MB", "bytes": 41943040,
             "attached": False, "reason": "too_big"},
            {"number": 4, "name": "lost.txt", "type": "text/plain", "size": "12 B", "bytes": 12,
             "attached": False, "reason": "missing"},
        ], "more": 796, "cap": "10.0 MB", "left": 799, "fetchable": [2]},
    )


class _Environment(SandboxedEnvironment):
    """The sandbox, with each template's globals a plain dict rather than jinja's ChainMap.

    Every render and every {% include %} copies the template's globals into a new context;
    copying a ChainMap goes through Python-level __iter__ and __getitem__ (a tenth of a
    notification's render time). Nothing changes the globals once a template is loaded.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


class Templates:
    """The template set: operator folder first, then the shipped one; rendered synchronously (CPU only)."""

    def __init__(self, override: Path | None = None, shipped: Path = SHIPPED) -> None:
        folders = [str(p) for p in (override, shipped) if p is not None]
        self.env = _Environment(
            loader=ChoiceLoader([FileSystemLoader(f) for f in folders]),
            undefined=StrictUndefined,  # a typo fails loudly, never renders as ""
            autoescape=select_autoescape(["html"], default_for_string=False, default=False),
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        # (name, language) → its text template and HTML template (or layout, or none), found once:
        # a per-language .html that does not exist cost two loader misses and an exception a mail.
        self._chosen: dict[tuple[str, str], tuple[Template, Template | None]] = {}

    def render(self, name: str, language: str, data: Mapping[str, Any]) -> Rendered:
        """Subject, text and HTML of one mail; raises jinja2.TemplateError on a broken template."""
        text_template, html_template = self._templates(name, language)
        data = {**data, "language": language}
        text = text_template.render(data)
        subject, _, body = text.lstrip("\n").partition("\n")
        subject = subject.strip()
        if not subject:
            raise TemplateError(f"{language}/{name}.txt: the first line (the subject) is empty")
        body = body.strip("\n") + "\n"
        if html_template is None:
            return Rendered(subject, body, None)
        return Rendered(subject, body, html_template.render(
            {**data, "subject": subject, "paragraphs": _paragraphs(body), "paragraphs_html": _paragraphs_html(body)}
        ))

    def _templates(self, name: str, language: str) -> tuple[Template, Template | None]:
        found = self._chosen.get((name, language))
        if found is None:
            found = self._chosen[(name, language)] = (self.env.get_template(f"{language}/{name}.txt"), self._html(name, language))
        return found

    def _html(self, name: str, language: str) -> Template | None:
        for candidate in (f"{language}/{name}.html", f"{language}/_layout.html", "_layout.html"):
            try:
                return self.env.get_template(candidate)
            except TemplateNotFound:
                continue
        return None


def _paragraphs(text: str) -> list[list[str]]:
    """Plain text as paragraphs of lines, for the HTML layout to escape and wrap."""
    return [block.splitlines() for block in text.split("\n\n") if block.strip()]


def _paragraphs_html(text: str) -> list[Markup]:
    """The same paragraphs escaped, their lines joined by <br>: what the shipped layout writes.

    Escaped in one pass over the whole text rather than line by line in the template (a third
    of the time to render a mail); escaping never makes or removes a line break.
    """
    return [Markup("<br>\n".join(block.splitlines())) for block in str(escape(text)).split("\n\n") if block.strip()]


def for_config(config: Config) -> Templates:
    """The templates a config names: its override folder (relative to the config file) over the shipped ones."""
    return Templates(_folder(config) if config.outbox.templates is not None else None)


def check(config: Config) -> list[str]:
    """Render every template in every language with sample data; one line per problem."""
    problems: list[str] = []
    if config.outbox.templates is not None and not _folder(config).is_dir():
        problems.append(f"outbox.templates: {_folder(config)} is not a folder")
    templates = for_config(config)
    data = sample_context()
    for language in LANGUAGES:
        for name in NAMES:
            try:
                templates.render(name, language, data)
            except TemplateNotFound as exc:
                problems.append(f"{language}/{name}: template not found ({exc.name})")
            except TemplateError as exc:
                where = getattr(exc, "filename", None) or f"{language}/{name}"
                line = getattr(exc, "lineno", None)
                problems.append(f"{where}{f':{line}' if line else ''}: {type(exc).__name__}: {exc.message or exc}")
            except Exception as exc:  # noqa: BLE001 - a sandbox refusal, a bad filter argument ...
                problems.append(f"{language}/{name}: {type(exc).__name__}: {exc}")
    return problems


def _folder(config: Config) -> Path:
    override = config.outbox.templates
    assert override is not None
    if override.is_absolute():
        return override
    return (config.source.parent if config.source is not None else Path.cwd()) / override
