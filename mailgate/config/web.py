"""[web]: the contact-form and ticket-API listener, its sites (token, target, origins) and its limits."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from mailgate.config.base import HostPort, Ident, MailAddress, StrictModel, ip_networks, parse_listen

# Hosts that bind every address: a listener on one of them takes the port from every other host too.
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})
# An origin as browsers send it (RFC 6454): scheme, host and an optional port; no path, no "null".
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(?::\d{1,5})?$|^https?://\[[0-9a-f:.]+\](?::\d{1,5})?$")


class WebSite(StrictModel):
    """One website or client of the API: its token, where its requests go, whose pages may post."""

    name: Ident
    # The token a request carries ("Authorization: Bearer …", or the form's hidden "token" field).
    # A token written into a public page is visible to anyone: it names the site, while origins,
    # the honeypot and the rate limit keep robots out. Keep API-only tokens off every page.
    token: SecretStr | None = None
    token_file: Path | None = None  # read at load and on reload; relative to the config file
    address: MailAddress | None = None  # the support address its tickets are written to
    queue: str | None = None  # or a queue: its first address (routing rules then see that address)
    # Pages allowed to post ("https://www.example.com"): a request whose Origin header is not one
    # of them is refused, and JSON answers carry CORS headers for them. Requests without an Origin
    # (a server calling the API) are not browsers and pass on their token alone.
    origins: tuple[str, ...] = ()
    redirect: str | None = None  # where a form post is sent after it is stored (303); else a plain thank-you page

    @model_validator(mode="before")
    @classmethod
    def _token_from_file(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        inline, file = data.get("token") is not None, data.get("token_file") is not None
        if inline == file:
            raise ValueError("give exactly one of 'token' or 'token_file'")
        if file:
            path = Path(data["token_file"])
            try:
                text = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
                raise ValueError(f"token_file {str(path)!r}: cannot read: {why}") from exc
            data = {**data, "token": SecretStr(text)}
        return data

    @field_validator("token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. `openssl rand -hex 16`)")
        if value is not None and not value.get_secret_value().isprintable():
            raise ValueError("must be printable text: it travels in an HTTP header")
        return value

    @field_validator("origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        value = (value,) if isinstance(value, str) else value
        if isinstance(value, (list, tuple)):
            cleaned = []
            for item in value:
                origin = str(item).strip().rstrip("/").lower()
                if not _ORIGIN.match(origin):
                    raise ValueError(f"{item!r} is not an origin like 'https://www.example.com' (no path)")
                cleaned.append(origin)
            return tuple(cleaned)
        return value

    @field_validator("redirect")
    @classmethod
    def _redirect(cls, value: str | None) -> str | None:
        if value is not None and (not re.match(r"^https?://[^\s/]+", value) or any(c in value for c in "\r\n ")):
            raise ValueError(f"{value!r} is not an absolute http(s) URL")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> WebSite:
        if (self.address is None) == (self.queue is None):
            raise ValueError("give exactly one of 'address' or 'queue': where this site's tickets go")
        return self

    def secret(self) -> bytes:
        assert self.token is not None  # the validators fill it from token_file
        return self.token.get_secret_value().encode()


class WebConfig(StrictModel):
    """[web]: off unless listen is set. Put a TLS reverse proxy (nginx, Caddy) in front of it."""

    listen: HostPort | None = None
    sites: tuple[WebSite, ...] = ()
    # Proxies whose X-Forwarded-For is believed (addresses or networks); from anyone else the
    # header is ignored, or a client could name any address and never meet the rate limit.
    trusted_proxies: tuple[str, ...] = ()
    # Per client address (an IPv6 client by its /64): a token bucket of `burst` posts, refilled at
    # `per_minute`. A contact form is used a few times a day by a person; a robot is what it stops.
    per_minute: float = Field(default=5, gt=0)
    burst: int = Field(default=10, ge=1)
    max_body: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)  # bytes of one request's body
    timeout: float = Field(default=10, gt=0)  # seconds for a whole request to arrive
    max_clients: int = Field(default=64, ge=1)  # connections at once; more are closed unanswered

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, value: object) -> HostPort | None:
        return None if value is None else parse_listen(value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        return ip_networks(value)

    def problems(
        self, addresses: tuple[str, ...], queues: dict[str, tuple[str, ...]],
        listeners: Mapping[str, HostPort | None] | None = None,
    ) -> list[tuple[str, str]]:
        """(key inside [web], message) for what only the whole config can tell; `listeners`: the
        other sockets the daemon binds by key (smtp.listen, http.listen)."""
        errors: list[tuple[str, str]] = []
        for key, other in (listeners or {}).items():
            if self.listen is not None and other is not None and _same_socket(self.listen, other):
                # The daemon would fail at start with "address already in use", after the config was called fine.
                errors.append(("listen", f"{self.listen} is also {key} ({other}): each listener needs its own port"))
        names = [s.name for s in self.sites]
        for i, site in enumerate(self.sites):
            if site.name in names[:i]:
                errors.append((f"sites.{i}.name", f"duplicate {site.name!r}"))
            if site.address is not None and site.address not in addresses:
                errors.append((f"sites.{i}.address", f"{site.address!r} is not in gateway.addresses"))
            if site.queue is not None and not queues.get(site.queue):
                why = "has no addresses" if site.queue in queues else "is not a configured queue"
                errors.append((f"sites.{i}.queue", f"{site.queue!r} {why}"))
        tokens = [s.secret() for s in self.sites]
        for i, token in enumerate(tokens):
            if token in tokens[:i]:
                errors.append((f"sites.{i}.token", "the same token as another site: each site needs its own"))
        if self.listen is not None and not self.sites:
            errors.append(("sites", "web.listen is set but no [[web.sites]] is configured"))
        return errors

    def target(self, site: WebSite, queues: dict[str, tuple[str, ...]]) -> str:
        """The support address a site's tickets are written to."""
        if site.address is not None:
            return site.address
        assert site.queue is not None
        return queues[site.queue][0]


def _same_socket(a: HostPort, b: HostPort) -> bool:
    """Whether two listeners would ask for one socket (port 0 asks the kernel for a free one: never)."""
    if a.port != b.port or a.port == 0:
        return False
    return _host(a.host) == _host(b.host) or a.host in _WILDCARDS or b.host in _WILDCARDS


def _host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))  # "::0001" and "::1" are one address
    except ValueError:
        return host.lower()
