"""The mails bench/e2e.py sends: generated customer mail (deterministic from a seed) or the shared corpus.

Generated mail is what a help desk receives in a day: distinct customers writing to support@ or
billing@, about a third of them answering their own earlier mail (In-Reply-To, References, "Re:",
the earlier text quoted), names and subjects in Finnish, Polish, Hungarian and German as well as
English (RFC 2047 encoded-words, UTF-8 and Latin-1 bodies), some HTML mail from webmail clients and
a few attachments. Every mail is CRLF on the wire and has lines under 998 octets (RFC 5322 2.1.1).
Mail number i is a pure function of (seed, i): a client process can make its own share.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
SKIP_SUFFIXES = {".json", ".yml", ".xml", ".md", ".out", ".html", ".bin"}
SUPPORT = "support@example.test"
BILLING = "billing@example.test"

FIRST = ["Anna", "Mikko", "Łukasz", "Zsófia", "Jürgen", "Siobhán", "Ödön", "Päivi", "Grzegorz", "Chloé",
         "Tomás", "Aino", "Bartłomiej", "Emese", "Sören", "Olivia", "Noah", "Mei", "Ravi", "Fatima"]
LAST = ["Järvinen", "Wójcik", "Szabó", "Müller", "O'Brien", "Virtanen", "Kowalczyk", "Nagy", "Schröder",
        "Dubois", "García", "Smith", "Lindqvist", "Horváth", "Nieminen", "Chen", "Patel", "Haddad"]
DOMAINS = ["customer.test", "mail.example", "kauppa.example", "firma.example", "bigcorp.example",
           "dept.bigcorp.example", "uni.example.org", "isp.example.net"]
TOPICS = [
    ("Printer on fire", "The office printer XK-4471 smells of smoke after the firmware update."),
    ("Cannot log in since Monday", "The login page says my password expired, but the reset link never arrives."),
    ("Invoice 2024-118 is wrong", "We were billed twice for the March licences; please send a corrected invoice."),
    ("Lasku erääntynyt väärin", "Laskussa on väärä eräpäivä, ja muistutusmaksu tuli vaikka maksoimme ajoissa."),
    ("Faktura za marzec – błąd w kwocie", "Na fakturze jest zła kwota VAT, prosimy o korektę dokumentu."),
    ("Számla hiányzik", "A februári számla nem érkezett meg, kérem küldjék el újra."),
    ("Rechnung doppelt erhalten", "Wir haben die Rechnung für April zweimal erhalten und einmal bezahlt."),
    ("VPN drops every 10 minutes", "Since the client update the tunnel disconnects every ten minutes exactly."),
    ("Order #55120 not delivered", "The tracking page has said 'in transit' for nine days now."),
    ("Site down again?", "Your status page says all is fine but the dashboard has not loaded since 09:12."),
    ("Question about the API limits", "Is the 600 requests per minute limit per key or per account?"),
    ("Tulostin ei toimi", "Tulostin ilmoittaa paperitukoksesta, vaikka paperia ei ole sisällä."),
]
FILLER = [
    "We have already restarted the machine twice and cleared the browser cache.",
    "This affects three people in our team, so it is fairly urgent for us.",
    "I attached what I could find; tell me if you need the full logs.",
    "Our account number is 88-1042 if that helps you find us.",
    "Thanks in advance for looking into this.",
    "Kiitos nopeasta avusta jo etukäteen.",
    "Z góry dziękuję za pomoc.",
    "Előre is köszönöm a segítséget.",
]
FOLLOW_UPS = [
    "Any news on this? It is still happening today.",
    "One more detail: it only happens on the second floor.",
    "Never mind the password part, that works now, but the rest is still broken.",
    "Onko tähän tullut ratkaisua?",
    "Czy jest już jakaś odpowiedź w tej sprawie?",
]
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class Mail(NamedTuple):
    """One mail as a client hands it to SMTP: envelope and CRLF wire bytes."""

    mail_from: str
    rcpt_to: list[str]
    raw: bytes


def _customer(seed: int, i: int) -> tuple[str, str]:
    rnd = random.Random(seed * 1_000_003 + i)
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    local = "".join(c for c in f"{first}.{last}".lower() if c.isascii() and (c.isalnum() or c == "."))
    return f"{first} {last}", f"{local}.{i}@{rnd.choice(DOMAINS)}"


def _original_of(seed: int, i: int) -> int | None:
    """The earlier mail that mail i answers (its own customer's), or None for a new conversation."""
    rnd = random.Random(seed * 7_919 + i)
    if i < 20 or rnd.random() >= 0.3:
        return None
    earlier = rnd.randrange(max(0, i - 400), i)
    return earlier if _original_of(seed, earlier) is None else None


def message_id(seed: int, i: int) -> str:
    return f"<{seed}.{i}.bench@{_customer(seed, i)[1].split('@')[1]}>"


def _topic(seed: int, i: int) -> tuple[str, str, str]:
    rnd = random.Random(seed * 31 + i)
    subject, first_line = rnd.choice(TOPICS)
    to = BILLING if any(w in subject.lower() for w in ("invoice", "lasku", "faktura", "számla", "rechnung")) else SUPPORT
    if rnd.random() < 0.1:
        to = BILLING
    return subject, first_line, to


def _body(seed: int, i: int, first_line: str, name: str) -> str:
    rnd = random.Random(seed * 17 + i)
    lines = ["Hello,", "", first_line, *rnd.sample(FILLER, rnd.randint(1, 4)), "", "Best regards,", name]
    if rnd.random() < 0.3:
        lines += ["-- ", name, f"+358 40 {rnd.randint(1000000, 9999999)}"]
    return "\n".join(lines) + "\n"


def generated(seed: int, i: int) -> Mail:
    """Mail number i of the generated corpus."""
    rnd = random.Random(seed * 101 + i)
    original = _original_of(seed, i)
    who = original if original is not None else i
    name, address = _customer(seed, who)
    subject, first_line, to = _topic(seed, who)
    msg = EmailMessage()
    msg["From"] = formataddr((name, address))
    msg["To"] = to
    msg["Date"] = format_datetime(START + timedelta(seconds=37 * i))
    msg["Message-ID"] = message_id(seed, i)
    text = _body(seed, i, first_line, name)
    if original is not None:
        earlier = _body(seed, original, first_line, name)
        subject = "Re: " + subject
        msg["In-Reply-To"] = message_id(seed, original)
        msg["References"] = message_id(seed, original)
        when = format_datetime(START + timedelta(seconds=37 * original))
        text = (f"{rnd.choice(FOLLOW_UPS)}\n\n{name}\n\nOn {when}, {name} <{address}> wrote:\n"
                + "".join(f"> {line}\n" for line in earlier.splitlines()))
    msg["Subject"] = subject
    if rnd.random() < 0.3:
        msg["User-Agent"] = rnd.choice(["Mozilla Thunderbird 115.9", "Roundcube Webmail/1.6.6"])
    charset = "iso-8859-1" if rnd.random() < 0.05 and _latin1(text) else "utf-8"
    msg.set_content(text, charset=charset, cte="quoted-printable" if rnd.random() < 0.5 else "8bit")
    if rnd.random() < 0.25:  # webmail: the same text as HTML beside it
        html = "".join(f"<p>{line}</p>" if line else "<br>" for line in text.splitlines())
        msg.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
    if rnd.random() < 0.05:
        size = rnd.randint(20_000, 80_000)
        data = b"%PDF-1.4\n" + random.Random(i).randbytes(size)
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=f"scan-{i}.pdf")
    return Mail(address, [to], msg.as_bytes(policy=SMTP))


def _latin1(text: str) -> bool:
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return True


def corpus_mails(limit: int) -> list[bytes]:
    """Corpus files that look like mails, smaller than 512 KiB, in a stable order."""
    out = []
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file() or path.suffix in SKIP_SUFFIXES or "_decoded" in path.name:
            continue
        raw = path.read_bytes()
        # Lines over 998 octets break RFC 5321 (aiosmtpd answers 500; Postfix wraps them first).
        longest = max((len(line) for line in raw.splitlines()), default=0)
        if 0 < len(raw) < 512 * 1024 and b":" in raw[:200] and longest <= 998:
            out.append(raw)
        if len(out) >= limit:
            break
    return out


def shared(limit: int) -> list[Mail]:
    """Shared-corpus files that look like mails (corpus_mails), CRLF, from their From."""
    return [Mail(f"corpus{i}@customer.test", [SUPPORT], raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            for i, raw in enumerate(corpus_mails(limit))]


def corpus(kind: str, count: int, seed: int) -> list[Mail]:
    """`generated`, `shared`, or `both` (half each, interleaved)."""
    if kind == "generated":
        return [generated(seed, i) for i in range(count)]
    if kind == "shared":
        return shared(count)
    made = [generated(seed, i) for i in range(count - count // 2)]
    taken = shared(count // 2)
    mixed = [m for pair in zip(made, taken, strict=False) for m in pair]
    return mixed + made[len(taken):]
