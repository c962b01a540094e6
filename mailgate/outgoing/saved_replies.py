"""Saved replies ([use:NAME]): operators' Jinja2 texts per queue and language, rendered sandboxed with a ticket's fields.

A saved reply is written by an operator but rendered with a customer's words (name, subject): the
sandbox keeps a template away from Python internals (`{{ ''.__class__ }}` is refused), and
StrictUndefined makes a misspelt field an error at check-config, never an empty gap in a customer's mail.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from mailgate.commands import Parsed, TagError
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.outgoing import notices as outbound
from mailgate.outgoing.compose import clean
from mailgate.store import Txn

SUFFIX = ".j2"
# <name>.<language>.j2: refund.en.j2, refund.fi.j2, billing/refund.pl.j2 (a queue's own).
_FILE = re.compile(r"(?P<name>[a-z0-9][a-z0-9_\-]{0,59})\.(?P<language>[a-z]{2,3})\.j2")
MAX_BYTES = 64 * 1024  # a saved reply is a mail's text, not a document


@dataclass(frozen=True, slots=True)
class SavedReply:
    """One saved reply file."""

    name: str
    language: str
    queue: str | None  # None: for every queue
    path: Path
    relative: str  # as the template loader names it: "refund.en.j2", "billing/refund.pl.j2"

    def first_line(self) -> str:
        """The first line with words in it, as a listing shows it (unrendered)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return next((clean(line, 120) for line in text.splitlines() if line.strip()), "")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "language": self.language, "queue": self.queue, "file": self.relative,
                "first_line": self.first_line()}


def folder(config: Config) -> Path:
    return config.replies.path(config.source)


def found(config: Config) -> tuple[list[SavedReply], list[str]]:
    """Every saved reply (the shared ones, then each queue folder's), and files named in no known way."""
    base = folder(config)
    replies: list[SavedReply] = []
    strays: list[str] = []
    if not base.is_dir():
        return replies, strays
    queues = {q.name for q in config.queues}
    for path in sorted(base.rglob(f"*{SUFFIX}")):
        relative = path.relative_to(base).as_posix()
        parts = relative.split("/")
        match = _FILE.fullmatch(parts[-1])
        if match is None or len(parts) > 2 or (len(parts) == 2 and parts[0] not in queues):
            strays.append(relative)
            continue
        replies.append(SavedReply(match["name"], match["language"], parts[0] if len(parts) == 2 else None, path,
                                  relative))
    replies.sort(key=lambda r: (r.queue is not None, r.queue or "", r.name, r.language))
    return replies, strays


def choose(replies: Iterable[SavedReply], name: str, languages: Iterable[str | None], queue: str | None) -> SavedReply | None:
    """The reply for this queue in the first language it exists in; a queue's own before the shared one."""
    candidates = [r for r in replies if r.name == name and r.queue in (queue, None)]
    for language in dict.fromkeys(lang for lang in languages if lang):
        for reply in sorted((r for r in candidates if r.language == language), key=lambda r: r.queue is None):
            return reply
    return None


def _environment(base: Path) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(base)), undefined=StrictUndefined, autoescape=False,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, auto_reload=False,
    )


def fields(
    *, customer_name: str, customer_address: str, number: int, tag: str, subject: str, agent_name: str,
    queue: str, status: str, priority: str, gateway: str,
) -> dict[str, Any]:
    """The only names a saved reply sees: the ticket's, as plain strings and numbers."""
    return {"customer_name": clean(customer_name, 200) or customer_address, "customer_address": customer_address,
            "number": number, "tag": tag, "subject": clean(subject), "agent_name": agent_name, "queue": queue,
            "status": status, "priority": priority, "gateway": gateway}


SAMPLE = fields(customer_name="Zoë Łukasiewicz-Ådahl", customer_address="zoe@customer.example", number=1042,
                tag="[#1042]", subject="Printer <on> fire & smoke", agent_name="Aino Agent", queue="support",
                status="open", priority="normal", gateway="Example Support")


def render(config: Config, reply: SavedReply, data: Mapping[str, Any]) -> str:
    """The reply's text; raises what Jinja2 raises (a syntax error, an unknown field, a sandbox refusal)."""
    if reply.path.stat().st_size > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES // 1024} KB")
    text = _environment(folder(config)).get_template(reply.relative).render(dict(data))
    return text.strip("\n") + "\n"


def problem(reply: SavedReply, exc: Exception) -> str:
    """"file:line: what" for an operator: the line from the error, or from the template's frame in the traceback."""
    line = exc.lineno if isinstance(exc, TemplateSyntaxError) else None
    trace = exc.__traceback__
    while trace is not None and line is None:
        # Jinja2 rewrites a render error's traceback so a frame carries the template's own file and line.
        if trace.tb_frame.f_code.co_filename == str(reply.path):
            line = trace.tb_lineno
        trace = trace.tb_next
    message = getattr(exc, "message", None) or str(exc)
    return f"{reply.path}{f':{line}' if line else ''}: {type(exc).__name__}: {message}"


def check(config: Config) -> list[str]:
    """Render every saved reply with sample fields; one line per problem (check-config)."""
    replies, strays = found(config)
    problems = [f"{folder(config) / s}: not <name>.<language>.j2 (or <queue>/<name>.<language>.j2 for a"
                f" configured queue)" for s in strays]
    for reply in replies:
        try:
            render(config, reply, SAMPLE)
        except Exception as exc:  # noqa: BLE001 - a sandbox refusal, a syntax error, an unknown field ...
            problems.append(problem(reply, exc))
    return problems


def listing(config: Config, queue: str | None = None) -> list[dict[str, Any]]:
    """Names, languages and first lines; with a queue, what its agents can use (its own and the shared ones)."""
    replies, _ = found(config)
    return [r.to_json() for r in replies if queue is None or r.queue in (queue, None)]


async def for_ticket(tx: Txn, config: Config, ticket_id: int, name: str, agent: AgentConfig) -> str:
    """[use:NAME] on a ticket: the text in the ticket's language (else the queue's, the gateway's, English)."""
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, ticket_id)
    queue = info.queue.name if info.queue else None
    replies, _ = found(config)
    languages = (info.detected_language, info.contact_language, info.queue.language if info.queue else None,
                 config.gateway.default_language, "en")
    reply = choose(replies, name, languages, queue)
    if reply is None:
        known = sorted({r.name for r in replies if r.queue in (queue, None)})
        raise Refused(f"no saved reply {name!r}{f' for queue {queue!r}' if queue else ''}"
                      f" (known: {', '.join(known) or 'none'}; [list:replies] lists them)")
    data = fields(customer_name=info.customer_name, customer_address=info.customer_address, number=info.number,
                  tag=f"[{config.gateway.ticket_tag}{info.number}]", subject=info.subject, agent_name=agent.name,
                  queue=queue or "", status=info.status, priority=info.priority, gateway=config.gateway.name)
    try:
        return render(config, reply, data)
    except Exception as exc:  # noqa: BLE001 - whatever the template does wrong, the agent hears it, the customer gets nothing
        raise Refused(f"saved reply {name!r} cannot be used: {problem(reply, exc)}") from exc


async def with_saved(
    tx: Txn, config: Config, parsed: Parsed, ticket_id: int | None, agent: AgentConfig, *, is_note: bool,
) -> tuple[Parsed, TagError | None]:
    """[use:NAME] in an agent's mail: the saved reply goes to the customer under the agent's own words, as one reply."""
    use = parsed.get("use")
    if use is None or ticket_id is None:
        return parsed, None
    if is_note:
        return parsed, TagError(use.raw, "a saved reply goes to the customer: not with a note")
    try:
        saved = await for_ticket(tx, config, ticket_id, use.value, agent)
    except Refused as exc:
        return parsed, TagError(use.raw, str(exc))
    words = parsed.body.strip()
    return dataclasses.replace(parsed, body=f"{words}\n\n{saved}" if words else saved), None
