"""The web intake's pure parts, which live under sources/ beside the listener: who the client is
behind proxies, its rate-limit bucket, and the message a submission becomes."""

from __future__ import annotations

from datetime import UTC, datetime

from mailgate.mail.parse import parse
from mailgate.sources.web_form import submission
from mailgate.sources.web_limits import RateLimit, bucket_key, client_address
from mailgate.sources.web_mail import build

PROXIES = ("10.0.0.0/8", "::1")


def test_the_client_is_the_nearest_untrusted_hop() -> None:
    assert str(client_address("10.0.0.5", "203.0.113.9", PROXIES)) == "203.0.113.9"
    # Whatever the client wrote itself stands left of what the proxies appended.
    assert str(client_address("10.0.0.5", "1.2.3.4, 203.0.113.9, 10.0.0.7", PROXIES)) == "203.0.113.9"
    assert str(client_address("198.51.100.1", "203.0.113.9", PROXIES)) == "198.51.100.1"  # not a proxy of ours
    assert str(client_address("::ffff:10.0.0.5", "[2001:db8::7]:4711", PROXIES)) == "2001:db8::7"
    assert str(client_address("10.0.0.5", "203.0.113.9:5000", PROXIES)) == "203.0.113.9"
    assert str(client_address("10.0.0.5", "unknown", PROXIES)) == "10.0.0.5"  # garbage: believe no further
    assert client_address(None, "203.0.113.9", PROXIES) is None


def test_ipv6_clients_share_a_bucket_per_64_and_buckets_refill() -> None:
    one, other = client_address("2001:db8:1:2::10", None, ()), client_address("2001:db8:1:2:ffff::1", None, ())
    assert one is not None and other is not None
    assert bucket_key(one) == bucket_key(other) == "2001:db8:1:2::/64"
    limit = RateLimit()
    taken = [limit.take("a", 100.0, per_minute=6, burst=2) for _ in range(4)]
    assert taken == [(0.0, 0), (0.0, 0), (10.0, 1), (10.0, 2)]  # one token per 10 s; refusals counted in a row
    assert limit.take("b", 100.0, per_minute=6, burst=2) == (0.0, 0)  # another client has its own bucket
    assert limit.take("a", 110.0, per_minute=6, burst=2) == (0.0, 0)


def test_a_submission_becomes_a_clean_message_from_the_submitter() -> None:
    sub = submission({"name": 'Zoë "Z" Ä, Jr.', "email": "zoe@example.test", "message": "Hi\r\nthere", "phone": ""})
    raw, mid = build(sub, site="shop", to="support@example.test", client="2001:db8::5",
                     now=datetime(2026, 11, 30, 12, 0, tzinfo=UTC), domain="example.test", secret=b"k" * 16)
    mail = parse(raw)
    assert mail.from_is_clean and mail.from_[0].name == 'Zoë "Z" Ä, Jr.'
    assert mail.message_id == mid and mail.subject == "Hi"  # no subject field: the first line stands in
    assert mail.header("Received").startswith("from [IPv6:2001:db8::5] by example.test with HTTP (web site shop)")
    _, same = build(sub, site="shop", to="support@example.test", client="192.0.2.1",
                        now=datetime(2026, 11, 30, 18, 0, tzinfo=UTC), domain="example.test", secret=b"k" * 16)
    assert same == mid  # the same request on the same day: one Message-ID, so the pipeline keeps it once
