"""One blocking IMAP connection (imapclient), used only from its account's own thread."""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from imapclient import DELETED, SEEN, IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.response_parser import parse_fetch_response

from mailgate.config import ImapAccount
from mailgate.mail.parse import header
from mailgate.sources.imap_auth import credentials
from mailgate.sources.smtp import base_address

log = logging.getLogger("mailgate.imap")

SEARCH_WINDOW = 2000  # UIDs per UID SEARCH / size FETCH: keeps response lines far below imaplib's 1 MB cap
IDLE_SLICE = 0.5  # seconds between checks for a stop or wake request while in IDLE
IDLE_RECHECK = 2.0  # seconds of the first, short IDLE (see Session.idle)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FETCH_BODY = re.compile(rb"\d+ \(UID (\d+) BODY\[\] \{(\d+)\}\Z")
_HEADERS = BytesHeaderParser(policy=compat32)
_WANTED = re.compile(rb"(?im)^(?:return-path|delivered-to)[ \t]*:.*(?:\r?\n[ \t].*)*\r?\n")


class AuthFailed(Exception):
    """The server refused our login: retrying soon would only hammer it (and may lock the account)."""


class Disconnected(Exception):
    """The server said BYE or closed the connection."""


class FolderMissing(Exception):
    """A configured folder does not exist on the server."""


@dataclass(frozen=True, slots=True)
class FolderInfo:
    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(frozen=True, slots=True)
class Fetched:
    """One message as the server stored it, with what the envelope needs."""

    uid: int
    raw: bytes
    digest: str
    mail_from: str
    rcpt_to: tuple[str, ...]


def uid_set(uids: Iterable[int]) -> str:
    """1,2,3,7,8 → "1:3,7:8": short command lines for STORE/MOVE/EXPUNGE."""
    parts: list[str] = []
    run: list[int] = []
    for uid in sorted(set(uids)):
        if run and uid == run[-1] + 1:
            run.append(uid)
            continue
        if run:
            parts.append(f"{run[0]}:{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [uid]
    if run:
        parts.append(f"{run[0]}:{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def _addr(value: str | None) -> str:
    return (value or "").strip().strip("<>").strip()


def fetched_bodies(data: Sequence[object], wanted: set[int]) -> dict[int, bytes]:
    """UID → BODY[] bytes from imaplib's FETCH data: the plain shape read directly, any other by imapclient."""
    out: dict[int, bytes] = {}
    items = iter(data)
    for item in items:
        if item is None:
            continue
        match = None
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], bytes) and isinstance(item[1], bytes):
            match = _FETCH_BODY.match(item[0])
        if match is None or len(item[1]) != int(match.group(2)) or next(items, None) != b")":  # type: ignore[index]
            parsed = parse_fetch_response(data)
            return {
                uid: bytes(fields[b"BODY[]"])
                for uid, fields in parsed.items()
                if uid in wanted and isinstance(fields.get(b"BODY[]"), bytes)
            }
        uid = int(match.group(1))
        if uid in wanted:
            out[uid] = item[1]  # type: ignore[index]
    return out


class Session:
    """Login, select, search, fetch, after-store actions and IDLE for one account; never shared between threads."""

    def __init__(self, account: ImapAccount, support: frozenset[str], default_rcpt: str) -> None:
        self.account = account
        self.support = support
        self.default_rcpt = default_rcpt
        self.client: IMAPClient | None = None
        self.capabilities: frozenset[bytes] = frozenset()
        self.selected: str | None = None
        self._created: set[str] = set()

    # -- connection -------------------------------------------------------------------------

    def connect(self) -> None:
        account = self.account
        secret = credentials(account)  # before connecting: a missing token file needs no server
        context: ssl.SSLContext | None = None
        if account.security != "none":
            context = ssl.create_default_context(cafile=str(account.ca_file) if account.ca_file else None)
        client = IMAPClient(
            account.host,
            port=account.effective_port,
            ssl=account.security == "tls",
            ssl_context=context,
            timeout=account.timeout,
        )
        try:
            if account.security == "starttls":
                client.starttls(context)
            try:
                if secret.mechanism == "xoauth2":
                    client.oauth2_login(account.username, secret.secret)
                else:
                    client.login(account.username, secret.secret)
            except LoginError as exc:
                text = str(exc)
                # RFC 5530: the server is busy or the account is in use elsewhere; not our password.
                if any(code in text.upper() for code in ("[UNAVAILABLE]", "[INUSE]", "[LIMIT]")):
                    raise Disconnected(f"login refused for now: {text}") from None
                raise AuthFailed(text) from None  # the chained imaplib error adds nothing
            self.capabilities = frozenset(c.upper() for c in client.capabilities())
        except BaseException:
            self._drop(client)
            raise
        self.client = client
        self.selected = None
        self._created.clear()

    def close(self) -> None:
        """Log out politely; on any trouble just drop the socket."""
        client, self.client = self.client, None
        self.selected = None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection is going away either way
            self._drop(client)

    def abort(self) -> None:
        """Break a blocking call from another thread (daemon shutdown); the owner thread then fails fast."""
        client = self.client
        if client is not None:
            with contextlib.suppress(Exception):
                client.socket().shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _drop(client: IMAPClient) -> None:
        with contextlib.suppress(Exception):  # already gone is fine
            client.shutdown()

    def _client(self) -> IMAPClient:
        if self.client is None:
            raise Disconnected("not connected")
        return self.client

    @property
    def can_idle(self) -> bool:
        return b"IDLE" in self.capabilities

    # -- reading ----------------------------------------------------------------------------

    def select(self, folder: str) -> FolderInfo:
        client = self._client()
        try:
            info = client.select_folder(folder)
        except IMAPClientError as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise
            if not client.folder_exists(folder):
                raise FolderMissing(f"folder {folder!r} does not exist on {self.account.host}") from None
            raise
        self.selected = folder
        uidnext = info.get(b"UIDNEXT")
        return FolderInfo(int(info[b"UIDVALIDITY"]), int(uidnext) if uidnext else None, int(info.get(b"EXISTS", 0)))

    def uids_between(self, first: int, last: int | None, larger: int | None = None) -> list[int]:
        """UIDs present in [first, last] (last None: up to the newest), ascending; only those above
        `larger` bytes if given (the server answers that from its index: no sizes cross the wire)."""
        client = self._client()
        extra = ["LARGER", str(larger)] if larger is not None else []
        found: list[int] = []
        if last is None:
            # RFC 3501 6.4.8: "n:*" always includes the highest UID, even when it is below n.
            return sorted(u for u in client.search(["UID", f"{first}:*", *extra]) if u >= first)
        start = first
        while start <= last:
            end = min(start + SEARCH_WINDOW - 1, last)
            found.extend(u for u in client.search(["UID", f"{start}:{end}", *extra]) if start <= u <= end)
            start = end + 1
        return sorted(found)

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        client = self._client()
        out: dict[int, int] = {}
        for start in range(0, len(uids), SEARCH_WINDOW):
            chunk = list(uids[start : start + SEARCH_WINDOW])
            for uid, data in client.fetch(chunk, ["RFC822.SIZE"]).items():
                if b"RFC822.SIZE" in data:
                    out[uid] = int(data[b"RFC822.SIZE"])
        return out

    def fetch(self, uids: Sequence[int]) -> list[Fetched]:
        """The exact bytes the server holds (BODY.PEEK[]: no implicit \\Seen), hashed here, off the event loop."""
        if not uids:
            return []
        out = []
        for uid, raw in sorted(self._fetch_bodies(list(uids)).items()):
            out.append(Fetched(uid, raw, hashlib.sha256(raw).hexdigest(), *self._envelope(raw)))
        return out

    def _fetch_bodies(self, uids: list[int]) -> dict[int, bytes]:
        """UID → bytes; absent UIDs were expunged meanwhile.

        imapclient's general response lexer costs about a third of the fetch rate, so the plain
        "* n FETCH (UID u BODY[] {size}" shape is read here; any other shape (item order, unsolicited
        FLAGS updates, ...) goes to imapclient's parser.
        """
        client = self._client()
        typ, data = client._imap.uid("FETCH", uid_set(uids), "(BODY.PEEK[])")
        if typ != "OK":
            raise IMAPClientError(f"FETCH failed: {data!r}")
        return fetched_bodies(data, set(uids))

    def _envelope(self, raw: bytes) -> tuple[str, tuple[str, ...]]:
        """Sender from Return-Path; recipients: the account's address, else a support Delivered-To."""
        match = _HEADER_END.search(raw)
        head = raw[: match.end()] if match else raw[:65536]
        # Parse just the two fields we need (with continuation lines), not the whole header block:
        # a full parse per message cost a third of the fetch rate.
        lowered = b"\n" + head.lower()
        if b"\nreturn-path" in lowered or b"\ndelivered-to" in lowered:
            wanted = b"".join(m.group(0) for m in _WANTED.finditer(head))
        else:
            wanted = b""
        if not wanted:
            return "", (self.account.address or self.default_rcpt,)
        try:
            msg = _HEADERS.parsebytes(wanted + b"\r\n")
        except Exception:  # noqa: BLE001 - a broken header still gets stored
            return "", (self.account.address or self.default_rcpt,)
        mail_from = _addr(header(msg, "Return-Path"))
        rcpts: list[str] = []
        if self.account.address:
            rcpts.append(self.account.address)
        delivered = _addr(header(msg, "Delivered-To")).lower()
        # Keep a +token form: it threads the reply (correlate looks for tokens in recipients).
        if delivered and base_address(delivered) in self.support and delivered not in rcpts:
            rcpts.append(delivered)
        return mail_from, tuple(rcpts) or (self.default_rcpt,)

    # -- after storing ----------------------------------------------------------------------

    def after_store(self, uids: Sequence[int]) -> None:
        """Flag, move or delete messages whose bytes are committed; repeating it is harmless."""
        if not uids:
            return
        client = self._client()
        uid_list = uid_set(uids)
        action = self.account.after_store
        if action == "seen":
            client.add_flags(uid_list, [SEEN], silent=True)
        elif action == "move":
            target = self.account.move_to
            assert target is not None  # config.problems() demands it
            if target not in self._created and not client.folder_exists(target):
                log.info("imap.create_folder account=%s folder=%s", self.account.name, target)
                client.create_folder(target)
            self._created.add(target)
            if b"MOVE" in self.capabilities:
                client.move(uid_list, target)  # RFC 6851
            else:
                client.copy(uid_list, target)
                self._expunge(client, uid_list)
        else:
            self._expunge(client, uid_list)

    def _expunge(self, client: IMAPClient, uid_list: str) -> None:
        client.add_flags(uid_list, [DELETED], silent=True)
        if b"UIDPLUS" in self.capabilities:
            client.uid_expunge(uid_list)  # RFC 4315: only ours, not others' \Deleted mail
        else:
            client.expunge()

    # -- waiting ----------------------------------------------------------------------------

    def idle(self, folder: str, seconds: float, interrupt: threading.Event) -> bool:
        """IDLE on folder until new mail (True), `seconds` pass or `interrupt` is set (False).

        Mail that lands while IDLE is being entered can go unannounced until the next command
        (seen with Dovecot: EXISTS only at DONE). So the first IDLE is short and its DONE doubles
        as a check; then one long IDLE.
        """
        client = self._client()
        if self.selected != folder:
            self.select(folder)
        deadline = time.monotonic() + seconds
        for phase in (IDLE_RECHECK, seconds):
            end = min(deadline, time.monotonic() + phase)
            if self._idle_once(client, end, interrupt):
                return True
            if interrupt.is_set() or time.monotonic() >= deadline:
                return False
        return False

    def _idle_once(self, client: IMAPClient, end: float, interrupt: threading.Event) -> bool:
        client.idle()
        new_mail = False
        quick_empties = 0
        try:
            while not interrupt.is_set() and not new_mail:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                started = time.monotonic()
                responses = client.idle_check(timeout=min(IDLE_SLICE, remaining))
                new_mail = _new_mail(responses)
                # imapclient swallows EOF in idle_check and returns []: a readable socket with
                # nothing on it, again and again, is a closed connection.
                if not responses and time.monotonic() - started < IDLE_SLICE / 4:
                    quick_empties += 1
                    if quick_empties >= 3:
                        raise Disconnected("connection closed during IDLE")
                else:
                    quick_empties = 0
            _, responses = client.idle_done()
        except BaseException:
            self._drop(client)
            self.client = None
            raise
        return _new_mail(responses) or new_mail


def _new_mail(responses: list[tuple[object, ...]]) -> bool:
    """True if IDLE responses announce mail; raise Disconnected on BYE."""
    found = False
    for response in responses:
        if len(response) > 1 and response[1] in (b"EXISTS", b"RECENT"):
            found = True
        elif response and response[0] == b"BYE":
            raise Disconnected(f"server said BYE: {response[1:]!r}")
    return found
