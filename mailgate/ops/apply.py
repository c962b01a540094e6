"""THE way commands change tickets: check() finds every refusal first, apply() runs them in the registry's order.

Mail (pipeline.agent_mail) and the CLI both come here, so a command has the same checks, events
and follow-up effects whichever way it arrives.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailgate.commands import Command, TagError
from mailgate.commands.registry import NEW_TICKET, SPECS, TICKETLESS, in_order
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.ops import delete, fields, forward, inbox, merge, parties, split, tasks, watchers
from mailgate.ops.base import Change, actor, is_member, my_queues, needs_agent, ticket
from mailgate.store import Txn
from mailgate.store.tickets import Ticket


def check(config: Config, agent: AgentConfig, ticket: Ticket | None, commands: Sequence[Command]) -> list[TagError]:
    """Everything that would make a command fail, found before anything is applied."""
    errors: list[TagError] = []
    new_queue = next((c.value for c in commands if c.name == "queue"), None)
    queue_after = new_queue or (ticket.queue if ticket is not None else None)
    for command in commands:
        if ticket is None and command.name not in TICKETLESS:
            errors.append(TagError(command.raw, "needs a ticket: reply to a ticket's notification"))
            continue
        if command.name == "queue" and config.queue(command.value) is None:
            errors.append(TagError(command.raw, f"unknown queue {command.value!r} (known: {_queues(config)})"))
        elif command.name in ("assign", "take"):
            target = agent if command.name == "take" or command.value == "me" else (
                None if command.value == "none" else config.agent(command.value))
            if command.name == "assign" and command.value not in ("me", "none") and target is None:
                errors.append(TagError(command.raw, f"unknown agent {command.value!r}"))
            elif target is not None and not is_member(config, target, queue_after):
                who = "you are" if target is agent else f"{target.id} is"
                errors.append(TagError(command.raw, f"{who} not a member of queue {queue_after!r}"))
        elif command.name == "next" and not my_queues(config, agent):
            errors.append(TagError(command.raw, "you are not a member of any queue"))
        elif command.name == "cc":
            for address in command.add:
                if not parties.may_be_party(config, address):
                    errors.append(TagError(command.raw, f"{address} cannot receive replies (ours, an agent, or no-reply)"))
    for command in commands:
        refused = delete.refusal(config, agent, ticket, command) if ticket is not None else None
        if refused is not None:
            errors.append(refused)
        elif command.name in NEW_TICKET:
            errors.append(TagError(command.raw, "only with [new] or [behalf:…], sent to your command address"))
        elif command.name == "done":
            errors.append(TagError(command.raw, "[done] closes a task: answer the task's mail with it"))
        elif command.name == "task" and ticket is not None:
            if config.queue(command.value) is None:
                errors.append(TagError(command.raw, f"unknown queue {command.value!r} (known: {_queues(config)})"))
            elif not command.text.strip():
                errors.append(TagError(command.raw, "a task needs its text: write it in the mail body"))
    return errors


def _queues(config: Config) -> str:
    return ", ".join(q.name for q in config.queues) or "none configured"


async def apply(
    tx: Txn, config: Config, ticket_id: int | None, commands: Sequence[Command], agent: AgentConfig | None
) -> list[Change]:
    """Apply checked commands in the registry's order; one Change per applied command (in_order(commands)).

    agent None: an operator's command line without --as; only merge, split and snooze may be done so.
    """
    changes: list[Change] = []
    for command in in_order(commands):
        if ticket_id is None and command.name not in TICKETLESS:
            raise Refused(f"{command.raw}: needs a ticket")
        changes.append(await _one(tx, config, ticket_id or 0, command, agent))
    return changes


async def _one(tx: Txn, config: Config, tid: int, command: Command, by: AgentConfig | None) -> Change:
    match command.name:
        case "merge":
            return await merge.merge(tx, config, tid, int(command.value), by)
        case "split":
            row = int(command.value) if command.value else None  # the CLI names the message row
            return await split.split(tx, config, tid, by, parents=command.text.split(), message_row=row)
        case "snooze":
            assert command.until is not None
            return await fields.snooze(tx, config, tid, command.until, by)
    agent = needs_agent(by, command.render())
    match command.name:
        case "queue":
            return await fields.set_queue(tx, config, tid, command.value, agent)
        case "priority":
            return await fields.set_priority(tx, config, tid, command.value, agent)
        case "category":
            return await fields.set_category(tx, tid, command.value, agent)
        case "tag":
            return await fields.tag(tx, tid, command.add, command.remove, agent)
        case "assign":
            who = agent.id if command.value == "me" else None if command.value == "none" else command.value
            return await fields.assign(tx, config, tid, who, agent)
        case "take":
            return await fields.take(tx, config, tid, agent)
        case "status":
            return await fields.set_status(tx, config, tid, command.value, agent)
        case "cancel":
            return await fields.cancel(tx, tid, agent)
        case "send":
            return await fields.send_held(tx, tid, agent)
        case "next":
            return await inbox.next_ticket(tx, config, agent)
        case "task":
            assert command.until is not None
            return await tasks.create(tx, config, tid, command.value, command.until, command.text, agent)
        case "follow" | "unfollow":
            following = command.name == "follow"
            changed = await watchers.set_following(tx, tid, agent.id, following)
            what = "you follow this ticket" if following else "you no longer follow this ticket"
            return Change(command.name, what if changed else f"{what} (already so)")
        case "cc":
            return Change("cc", await parties.change(tx, config, tid, command.add, command.remove, actor(agent)))
        case "files":
            return await inbox.send_files(tx, config, tid, command.value, agent)
        case "forward" | "forward+notes":
            return await forward.forward(tx, config, tid, command.value.split(", "), agent,
                                         notes=command.name == "forward+notes", text=command.text)
        case "help":
            return await forward.ask_help(tx, config, tid, command.value.split(", "), agent, text=command.text)
        case "delete":
            return await delete.request(tx, tid, agent)
        case "confirm":
            return await delete.confirm(tx, config, tid, agent)
        case "restore":
            return await delete.restore(tx, config, tid, agent)
    raise Refused(f"{command.raw}: {SPECS[command.name].name} is not applied to a ticket")


async def agent_acted(tx: Txn, ticket_id: int, agent: AgentConfig) -> None:
    """An agent acted on the ticket: the "your forward/help was answered" flag goes, they follow and have read it."""
    await forward.seen(tx, ticket_id, agent)
    await watchers.acted(tx, ticket_id, agent.id)


async def run(
    tx: Txn, config: Config, ticket_id: int, commands: Sequence[Command], agent: AgentConfig | None, *,
    acted: bool = True,
) -> list[Change]:
    """Check, then apply, then the follow-up effects of acting; a refusal names every problem at once."""
    row = await ticket(tx, ticket_id)
    # An operator without --as skips the agent's checks, never the deleted one.
    problems = check(config, agent, row, commands) if agent is not None else [
        e for c in commands if (e := delete.deleted(row, c.name, c.raw)) is not None]
    if problems:
        raise Refused("; ".join(str(p) for p in problems))
    changes = await apply(tx, config, ticket_id, commands, agent)
    if agent is not None and acted:
        await agent_acted(tx, ticket_id, agent)
    return changes
