"""Answers to any sender compose without raising; envelope addresses are mailboxes or nothing."""

from __future__ import annotations

from email import message_from_string, policy

from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.outgoing import compose
from mailgate.outgoing.relay import mailbox

from ..conftest import SUPPORT

_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(name=_TEXT, address=st.one_of(_TEXT, st.builds(lambda a, b: f"{a}@{b}", _TEXT, _TEXT)))
def test_any_sender_can_be_answered_without_raising(name: str, address: str) -> None:
    """Whatever a From header parsed to, the answer composes; a non-ASCII local part makes UTF-8 headers."""
    out = compose.Outgoing(
        from_name="Support", from_address=SUPPORT, to_name=name, to_address=address, reply_to="r+1@example.test",
        subject=name, message_id="1@example.test", text="Thanks.", html="<p>Thanks.</p>", marker="m", cc=((name, address),),
    )
    head = compose.wire(out).split(b"\r\n\r\n")[0]
    envelope = mailbox(address)
    if envelope is not None and envelope.utf8:
        assert not head.isascii()  # RFC 6532 headers, never encoded words inside the address
    if envelope is None:
        return  # not a mailbox: composed without raising, and the relay client never sends it
    to = message_from_string(head.decode("utf-8", "surrogateescape") + "\r\n\r\n", policy=policy.SMTPUTF8)["To"]
    assert to is not None


def test_envelope_forms() -> None:
    assert mailbox("juergen@exämple.test") == mailbox("juergen@xn--exmple-cua.test")
    assert mailbox("juergen@exämple.test").utf8 is False  # type: ignore[union-attr]
    assert mailbox("jürgen@exämple.test").utf8 is True  # type: ignore[union-attr]
    # Nothing that could end the address or smuggle in another one reaches RCPT TO.
    for bad in ("ü", "a b@x.test", "a@x.test>", "bob@x.test\r\nRCPT TO:<eve@evil.test>", "alice@x.test)<eve@evil.test>",
                "a(b)@x.test", "@x.test", "a@"):
        assert mailbox(bad) is None, bad
