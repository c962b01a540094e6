"""Who is acting: a configured agent only with a defect-free From and proof (signed token or trusted Auth-Results)."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import authres  # no stubs (pyproject lets mypy skip it); read via attributes only

from mailgate import tokens
from mailgate.config import AgentConfig, Config
from mailgate.models import Envelope, ParsedMail, Source

log = logging.getLogger("mailgate.identity")


@dataclass(frozen=True, slots=True)
class Identity:
    """What mailgate can tell about the sender of one mail."""

    agent: AgentConfig | None  # the proven agent; None: an outside party
    claimed: AgentConfig | None  # the agent whose address the From names (proven or not)
    proof: str | None  # 'token' | 'dkim' | 'spf'
    why: str  # for the event log and the agent's notice
    ticket: int | None = None  # the ticket number of the agent token the mail was sent to (0: command address)
    note: bool = False  # sent to the agent's note address: an internal note, never a reply

    @property
    def unproven_agent(self) -> bool:
        return self.agent is None and self.claimed is not None


def agent_by_address(config: Config, address: str) -> AgentConfig | None:
    address = address.strip().lower()
    return next((a for a in config.agents if address in a.addresses), None)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(".").lower()


def trusted_received(config: Config, envelope: Envelope) -> int:
    """How many Received headers the trusted hop in front added (0: none of this mail's results count).

    SMTP/LMTP: only from a configured trusted peer (mailgate's own listener facing the internet
    hears anyone). A pipe from the local MTA is that MTA. IMAP: per mailbox. Imported archives: never.
    """
    if envelope.imported:
        return 0
    if envelope.source in (Source.SMTP, Source.LMTP):
        return config.smtp.trusted_received if config.smtp.trusts(envelope.peer) else 0
    if envelope.source is Source.PIPE:
        return config.smtp.trusted_received
    if envelope.source is Source.IMAP:
        name = (envelope.source_ref or "").split("/", 1)[0]
        return next((a.trusted_received for a in config.imap if a.name == name), 0)
    return 0


def untrusted_why(config: Config, envelope: Envelope) -> str:
    """Why no Authentication-Results of this mail count, for the agent's notice and the trace."""
    if envelope.imported:
        return "imported mail: its Authentication-Results are not read"
    if envelope.source in (Source.SMTP, Source.LMTP):
        return f"the sending host {envelope.peer or '(unknown)'} is not in smtp.trusted_peers"
    if envelope.source is Source.IMAP:
        return "the mailbox's trusted_received is 0"
    if envelope.source is Source.WEB:
        return "it came through the web form, where anyone can type any address"
    return "its source is not trusted"


def trusted_results(
    mail: ParsedMail, authserv_ids: tuple[str, ...], received: int = 0
) -> list[authres.AuthenticationResultsHeader]:
    """The Authentication-Results the trusted hop added: ours, above its `received`-th Received header.

    An MTA writes its results on top, above or among the Received headers it adds (Postfix's milters
    such as OpenDKIM and OpenDMARC insert theirs at the very top); everything below the last Received
    header it added is what the sender wrote, and a sender can write "dkim=pass" under our authserv-id
    anywhere there. A trusted peer that added fewer Received headers (a filter relaying on, not an
    MTA) vouches only for the results it prepended: the unbroken run of them at the very top.
    """
    wanted = {a.lower() for a in authserv_ids}
    if not wanted or received < 1:
        return []
    top = _above_received(mail.headers, received)
    out: list[authres.AuthenticationResultsHeader] = []
    for name, value in top:
        if name.strip().lower() != "authentication-results":
            continue
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(" ".join(value.split()))
        except Exception:  # noqa: BLE001 - authres raises its own errors and sometimes others on junk
            continue
        if str(parsed.authserv_id).lower() in wanted:
            out.append(parsed)
    return out


def _above_received(headers: Sequence[tuple[str, str]], received: int) -> list[tuple[str, str]]:
    """The headers above the received-th Received one; without that many, the leading Authentication-Results."""
    seen = 0
    for index, (name, _) in enumerate(headers):
        if name.strip().lower() == "received":
            seen += 1
            if seen == received:
                return [h for h in headers[:index] if h[0].strip().lower() != "received"]
    leading: list[tuple[str, str]] = []
    for header in headers:
        if header[0].strip().lower() != "authentication-results":
            break
        leading.append(header)
    return leading


def _aligned(signer: str, from_domain: str) -> bool:
    """DKIM d= (or the domain of i=) covers the From domain: equal, or a parent of it (DMARC relaxed)."""
    signer = signer.strip().strip(".").lower()
    return bool(signer) and "." in signer and (from_domain == signer or from_domain.endswith("." + signer))


_FAILED = frozenset({"fail", "softfail", "permerror"})


def auth_proof(results: list[authres.AuthenticationResultsHeader], from_address: str) -> str | None:
    """'dkim' or 'spf' when a trusted result passes for the From's domain and none fails for it; else None.

    A fail vetoes every pass: two results of ours that disagree mean one of them is not what our
    MTA concluded (or the mail was altered on the way), and an agent's power is not given on a doubt.
    """
    from_domain = _domain(from_address)
    passed: list[str] = []
    for header in results:
        for result in header.results:
            method, verdict = str(result.method).lower(), str(result.result).lower()
            props = {f"{p.type}.{p.name}".lower(): str(p.value or "") for p in result.properties}
            about = _about_from(method, props, from_domain)
            if about is None:
                continue
            if verdict in _FAILED and about is not False:
                return None
            if verdict == "pass" and about is True and method in ("dkim", "spf"):
                passed.append(method)
    if "dkim" in passed:
        return "dkim"
    return "spf" if "spf" in passed else None


def _about_from(method: str, props: dict[str, str], from_domain: str) -> bool | None:
    """Whether a result speaks for the From's domain: True, False, or None (a method we do not read).

    A result that names no domain counts as about it, so that its fail still vetoes.
    """
    if method == "dkim":
        d, i = props.get("header.d", ""), props.get("header.i", "")
        if not d and not i:
            return True
        return _aligned(d, from_domain) or bool(i and _aligned(_domain(i), from_domain))
    if method == "spf":
        # smtp.mailfrom is "user@domain" or just "domain"; SPF says nothing about the local part.
        mailfrom = props.get("smtp.mailfrom", "")
        if not mailfrom:
            return True
        return _domain(mailfrom if "@" in mailfrom else "@" + mailfrom) == from_domain
    if method == "dmarc":
        header_from = props.get("header.from", "")
        return not header_from or _domain("@" + header_from) == from_domain
    return None


def resolve(
    config: Config, mail: ParsedMail, rcpt_to: tuple[str, ...], secret: bytes, *, received: int = 0,
    untrusted: str = "",
) -> Identity:
    """The verified agent of a mail, or why not; pure (no store, no DNS).

    received: trusted_received() of the mail's envelope; 0 reads no Authentication-Results at all
    (untrusted says why, for the agent's notice).
    """
    if not mail.from_:
        return Identity(None, None, None, "no From")
    sender = mail.from_[0].address.strip().lower()
    claimed = agent_by_address(config, sender)
    if claimed is None:
        return Identity(None, None, None, "From is not an agent address")
    if not mail.from_is_clean:
        # Python 3.11.7's parser can read "alice@x)<bob@y>" as alice (CVE-2023-27043).
        return Identity(None, claimed, None, "the From header is not one clean address")
    recipients = " ".join([*rcpt_to, *(a.address for a in (*mail.to, *mail.cc))])
    own = [
        t for t in tokens.find(secret, recipients)
        if t.purpose in (tokens.AGENT_REPLY, tokens.AGENT_NOTE) and t.agent == claimed.id
    ]
    if own:
        note = next((t for t in own if t.purpose == tokens.AGENT_NOTE), None)
        chosen = note or own[0]  # a note address wins: a note must never turn into a reply
        return Identity(claimed, claimed, "token", f"sent to {claimed.id}'s signed address",
                        ticket=chosen.ticket, note=note is not None)
    proof = auth_proof(trusted_results(mail, config.gateway.authserv_id, received), sender)
    if proof is not None:
        return Identity(claimed, claimed, proof, f"{proof}=pass for {_domain(sender)} from a trusted MTA")
    detail = f" ({untrusted})" if received < 1 and untrusted else ""
    return Identity(
        None, claimed, None,
        "neither sent to a signed agent address nor authenticated (DKIM/SPF pass) by a trusted MTA" + detail,
    )


def resolve_entry(config: Config, mail: ParsedMail, envelope: Envelope, secret: bytes) -> Identity:
    """resolve() with the trust its envelope earns (the peer or source the mail came from)."""
    received = trusted_received(config, envelope)
    why = untrusted_why(config, envelope) if received < 1 else ""
    if received < 1 and config.gateway.authserv_id and any(
        n.strip().lower() == "authentication-results" for n, _ in mail.headers
    ):
        log.info("identity.auth_results_ignored source=%s peer=%s reason=%s",
                 envelope.source, envelope.peer or "-", why)
    return resolve(config, mail, envelope.rcpt_to, secret, received=received, untrusted=why)


_ADDRESS_IN_NAME = re.compile(r"[^\s<>\"'()@,;:]+@[^\s<>\"'()@,;:]+\.[^\s<>\"'()@,;:]+")


def sender_warning(name: str, address: str) -> str:
    """A display name that shows an address other than the real one: the address it shows ('' if none).

    '"anna@example.test" <evil@evil.test>' reads as Anna in most mail clients; an agent must see
    that the mail is from evil@evil.test.
    """
    address = address.strip().lower()
    # NFKC: a fullwidth "＠" or small "﹫" reads as "@" to a person, and must to this check too.
    found: list[str] = _ADDRESS_IN_NAME.findall(unicodedata.normalize("NFKC", name or ""))
    for shown in found:
        if shown.strip(".").lower() != address:
            return shown.strip(".")
    return ""


def explain(config: Config, mail: ParsedMail, envelope: Envelope, secret: bytes) -> dict[str, object]:
    """Why a mail is or is not an agent's, for `parse --trace`: the verdict, and each Authentication-Results."""
    received = trusted_received(config, envelope)
    untrusted = untrusted_why(config, envelope) if received < 1 else ""
    ident = resolve(config, mail, envelope.rcpt_to, secret, received=received, untrusted=untrusted)
    wanted = {a.lower() for a in config.gateway.authserv_id}
    trusted = {id(h) for h in _above_received(mail.headers, received)} if received else set()
    results: list[dict[str, object]] = []
    for header in mail.headers:
        name, value = header
        if name.strip().lower() != "authentication-results":
            continue
        authserv = value.split(";", 1)[0].strip().lower()
        if received < 1:
            why = f"not read: {untrusted}"
        elif authserv not in wanted:
            why = f"not read: {authserv!r} is not in gateway.authserv_id"
        elif id(header) not in trusted:
            why = f"not read: below the trusted MTA's Received header {received} (or its own results): the sender's"
        else:
            why = "read: added by the trusted MTA"
        results.append({"header": " ".join(value.split())[:300], "read": why.startswith("read"), "why": why})
    return {
        "agent": ident.agent.id if ident.agent else None,
        "claimed": ident.claimed.id if ident.claimed else None,
        "proof": ident.proof,
        "why": ident.why,
        "trusted_received": received,
        "authentication_results": results,
    }
