"""Who is acting: a configured agent only with a defect-free From and proof (signed token or trusted Auth-Results)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import authres  # type: ignore[import-untyped]  # no stubs; read via attributes only

from mailgate import tokens
from mailgate.config import AgentConfig, Config
from mailgate.models import ParsedMail

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


def trusted_results(mail: ParsedMail, authserv_ids: tuple[str, ...]) -> list[authres.AuthenticationResultsHeader]:
    """The Authentication-Results the operator's MTA added: the topmost run of them with a trusted authserv-id.

    An MTA prepends its header above everything the sender wrote (RFC 8601 section 5, which also has it
    remove incoming copies of its own id). So the run starts at the topmost Authentication-Results and
    ends at the first header of any other kind or with another authserv-id: a copy lower down may be
    the sender's forgery and is never read.
    """
    wanted = {a.lower() for a in authserv_ids}
    if not wanted:
        return []
    out: list[authres.AuthenticationResultsHeader] = []
    started = False
    for name, value in mail.headers:
        is_ar = name.lower() == "authentication-results"
        if not is_ar:
            if started:
                break
            continue
        started = True
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(" ".join(value.split()))
        except Exception:  # noqa: BLE001 - authres raises its own errors and sometimes others on junk
            break
        if str(parsed.authserv_id).lower() not in wanted:
            break
        out.append(parsed)
    return out


def _aligned(signer: str, from_domain: str) -> bool:
    """DKIM d= (or the domain of i=) covers the From domain: equal, or a parent of it (DMARC relaxed)."""
    signer = signer.strip().strip(".").lower()
    return bool(signer) and "." in signer and (from_domain == signer or from_domain.endswith("." + signer))


def auth_proof(results: list[authres.AuthenticationResultsHeader], from_address: str) -> str | None:
    """'dkim' or 'spf' when a trusted result passes for the From's domain; None otherwise."""
    from_domain = _domain(from_address)
    spf = None
    for header in results:
        for result in header.results:
            method, verdict = str(result.method).lower(), str(result.result).lower()
            if verdict != "pass":
                continue
            props = {f"{p.type}.{p.name}".lower(): str(p.value or "") for p in result.properties}
            if method == "dkim":
                d = props.get("header.d", "")
                i = props.get("header.i", "")
                if _aligned(d, from_domain) or (i and _aligned(_domain(i), from_domain)):
                    return "dkim"
            elif method == "spf":
                mailfrom = props.get("smtp.mailfrom", "")
                # smtp.mailfrom is "user@domain" or just "domain"; SPF says nothing about the local part.
                if mailfrom and _domain(mailfrom if "@" in mailfrom else "@" + mailfrom) == from_domain:
                    spf = "spf"
    return spf


def resolve(config: Config, mail: ParsedMail, rcpt_to: tuple[str, ...], secret: bytes) -> Identity:
    """The verified agent of a mail, or why not; pure (no store, no DNS)."""
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
    proof = auth_proof(trusted_results(mail, config.gateway.authserv_id), sender)
    if proof is not None:
        return Identity(claimed, claimed, proof, f"{proof}=pass for {_domain(sender)} from a trusted MTA")
    return Identity(
        None, claimed, None,
        "neither sent to a signed agent address nor authenticated (DKIM/SPF pass) by a trusted MTA",
    )
