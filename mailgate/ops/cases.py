"""Merge, forward, ask a colleague, split: from a mail's commands to the domain functions (issue 7)."""

from __future__ import annotations

import dataclasses

from mailgate.commands import Command, Parsed
from mailgate.config import AgentConfig, Config
from mailgate.models import ParsedMail
from mailgate.ops import forward as forwarding
from mailgate.ops import merge, split
from mailgate.ops.agent import Change
from mailgate.store import Txn

NAMES = frozenset({"merge", "forward", "forward+notes", "help", "split"})
# With these, the mail's own words are for the recipients and stay an internal note, never a reply.
NOTE_COMMANDS = frozenset({"forward", "forward+notes", "help"})


def prepare(parsed: Parsed, mail: ParsedMail) -> Parsed:
    """Give the commands what they need of the mail: the words to pass on, the message answered."""
    parents = " ".join(m for m in (mail.in_reply_to, *reversed(mail.references)) if m)
    words = parsed.body.strip()
    commands = tuple(
        dataclasses.replace(c, text=parents if c.name == "split" else words) if c.name in NAMES else c
        for c in parsed.commands
    )
    return dataclasses.replace(parsed, commands=commands)


async def apply(tx: Txn, config: Config, ticket_id: int, command: Command, agent: AgentConfig) -> Change:
    match command.name:
        case "merge":
            return await merge.merge(tx, config, ticket_id, int(command.value), agent)
        case "forward" | "forward+notes":
            return await forwarding.forward(tx, config, ticket_id, command.value.split(", "), agent,
                                            notes=command.name == "forward+notes", text=command.text)
        case "help":
            return await forwarding.ask_help(tx, config, ticket_id, command.value.split(", "), agent, text=command.text)
        case _:
            return await split.split(tx, config, ticket_id, agent, parents=command.text.split())
