"""SMTP/LMTP replies with enhanced status codes (RFC 3463), as constants tests can assert on."""

from __future__ import annotations

from typing import NamedTuple


class Reply(NamedTuple):
    code: int
    status: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"

    def __call__(self, *args: object) -> Reply:
        """The reply with its blanks filled in: S250_QUEUED(spool_id)."""
        return Reply(self.code, self.status, self.text % args)


S250_QUEUED = Reply(250, "2.0.0", "Ok: queued as %d")
S250_RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
S250_DUPLICATE = Reply(250, "2.0.0", "Message already received")
S421_TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "Too many connections, try again later")
S421_TOO_MANY_COMMANDS = Reply(421, "4.7.0", "Too many commands without a mail, closing")
S421_SHUTTING_DOWN = Reply(421, "4.3.2", "Service shutting down")
S451_TRY_AGAIN = Reply(451, "4.3.0", "Cannot store the message now, try again later")
S452_NO_MEMORY = Reply(452, "4.3.1", "Insufficient system storage, try again later")
S452_TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
S550_NO_SUCH_USER = Reply(550, "5.1.1", "No such support address here")
S552_TOO_BIG = Reply(552, "5.3.4", "Message exceeds the size limit")
S554_EMPTY = Reply(554, "5.6.0", "Empty message")
