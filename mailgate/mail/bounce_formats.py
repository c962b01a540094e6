"""What bounces say: the phrase and structure tables that tell a delivery failure from a message."""

from __future__ import annotations

import re
from dataclasses import dataclass


def alternatives(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A long alternation of phrases compiled with its branches grouped by their first letter.

    Python's re tries every branch of an alternation at every position, and a case-insensitive
    branch gets no first-character shortcut; grouped, a position costs one try per distinct
    first letter. Grouping a leading literal out of branches matches the same strings, so a
    search finds a match exactly when the plain pattern does (which branch, and the numbering
    of groups, may differ: callers only ask whether there is one).
    """
    branches = _top_branches(pattern)
    grouped: dict[str, list[str]] = {}
    rest: list[str] = []
    for branch in branches:
        # A letter with no quantifier after it is a literal that can be factored out.
        if branch[:1].isalpha() and branch[1:2] not in ("?", "*", "+", "{"):
            grouped.setdefault(branch[0], []).append(branch[1:])
        else:
            rest.append(branch)
    heads = [first + (tails[0] if len(tails) == 1 else "(?:" + "|".join(tails) + ")") for first, tails in grouped.items()]
    return re.compile("|".join(f"(?:{b})" for b in heads + rest), flags)


def _top_branches(pattern: str) -> list[str]:
    """The pattern split at its top-level "|" (not inside a group, a class or after a backslash)."""
    branches: list[str] = []
    depth = start = i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":  # "[]…]", "[^]…]": a leading "]" is a member
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    branches.append(pattern[start:])
    return branches

# Subjects delivery software writes on failures, in the languages seen in the wild.
SUBJECT = alternatives(
    r"undeliver|undelivered|delivery status notification|delivery (status )?notification|"
    r"returned mail|failure notice|delivery fail|mail delivery fail|delivery problem|"
    r"could not be delivered|not delivered|non[- ]?deliver|mail system error|returned to sender|"
    r"message (was )?not (be )?delivered|delivery report|unzustellbar|nicht zustellbar|"
    r"non remis|no entregado|mail could not|permanent error|delivery has failed|"
    r"rejected|warning: could not send|delayed mail|delivery delayed|delivery warning|"
    r"mail status report|unable to deliver|undeliverable|"
    r"\bbounce|systemmeldung|notice of delivery failure|error sending|mail error|"
    r"fail(ed|ure)? delivery|mail failure|delivery error|errors from|"
    r"user unknown|no such user|mailbox (is )?(full|unavailable)|"
    # Japanese: "could not deliver the message", "mail delivery failed", "returned mail".
    r"\u30e1\u30c3\u30bb\u30fc\u30b8\u3092\u914d\u4fe1\u3067\u304d\u307e\u305b\u3093|"
    r"\u30e1\u30fc\u30eb\u914d\u4fe1\u306b\u5931\u6557|\u914d\u4fe1\u4e0d\u80fd|\u8fd4\u9001\u30e1\u30fc\u30eb",
    re.I,
)

# Body lines delivery software puts in front of a failure. Postfix, Sendmail (8 and the older 5
# "Transcript of session follows" form), Exim, qmail, Exchange ("did not reach the following
# recipient(s)"), Gmail, Amazon SES, Trend Micro InterScan MSS, au by KDDI ("Your mail sent on ...
# Could not be delivered to:"), Verizon's vtext/vzwpix gateways, MDaemon, Symantec gateways.
BODY = alternatives(
    r"this is the mail system at host|the following addresses had permanent fatal errors|"
    r"this message was created automatically by mail delivery software|"
    r"this is the qmail-send program|delivery has failed to these recipients|"
    r"your message could not be delivered|delivery to the following recipients? failed|"
    r"could not be delivered to one or more recipients|i'm sorry to have to inform you|"
    r"message could not be delivered|unable to deliver (your )?message|"
    r"the original message was received at|delivery to the following recipient failed|"
    r"this is an automatically generated delivery status notification|"
    r"mail delivery (failed|subsystem)|undeliverable|returned to sender|"
    r"could not be delivered to the following recipient|could not deliver (the )?message to the following|"
    r"did not reach the following recipient|the following recipients did not receive|"
    r"-+ ?transcript of session follows ?-+|-+ ?unsent message follows ?-+|"
    r"^\s*could not be delivered to:|^your mail (sent|attempted to be delivered) on:|"
    r"^the following message to <|an error occurred while trying to deliver the mail|"
    r"message from interscan messaging security suite|the following mail could not be delivered|"
    r"^error: (invalid user address|no valid recipients)|message could not be delivered to mobile|"
    r"no such user here|there is no user by that name|"
    # Japanese carriers (KDDI/ezweb, docomo): "could not send the message to the address below".
    r"\u6b21\u306e\u3042\u3066\u5148\u3078\u306e\u30e1\u30c3\u30bb\u30fc\u30b8\u306f|"
    r"\u9001\u4fe1\u3067\u304d\u307e\u305b\u3093\u3067\u3057\u305f",
    re.I | re.M,
)


@dataclass(frozen=True, slots=True)
class Format:
    """A bounce format without an RFC 3464 report: who sends it (a header sign) and what it says."""

    name: str
    header: str  # lowercased header name whose value identifies the sender
    sign: re.Pattern[str]  # searched in that header's values
    marker: re.Pattern[str]  # searched in the subject and the start of the body text


# A sender sign alone could be forged by anyone and a phrase alone written by a person quoting a
# bounce: a format counts only when both hold.
FORMATS: tuple[Format, ...] = (
    Format("amazonses", "x-ses-outgoing", re.compile(r"."),
           re.compile(r"^the following message to <|an error occurred while trying to deliver", re.I | re.M)),
    Format("amazonses", "x-aws-outgoing", re.compile(r"."),
           re.compile(r"^the following message to <|an error occurred while trying to deliver", re.I | re.M)),
    Format("interscanmss", "from", re.compile(r"^\W*interscan\b", re.I),  # the display name
           re.compile(r"could not be delivered|unable to deliver|\u914d\u4fe1\u3067\u304d\u307e\u305b\u3093|"
                      r"\u914d\u4fe1\u306b\u5931\u6557", re.I)),
    Format("kddi", "from", re.compile(r"no-reply@[\w.-]*\.dion\.ne\.jp", re.I),
           re.compile(r"^\s*could not be delivered to:|^your mail (sent|attempted to be delivered) on:", re.I | re.M)),
    Format("kddi", "reply-to", re.compile(r"no-reply@app\.auone-net\.jp", re.I),
           re.compile(r"^\s*could not be delivered to:|^your mail (sent|attempted to be delivered) on:", re.I | re.M)),
    Format("kddi", "received", re.compile(r"ezweb\.ne\.jp \(|\.au\.com \(|auone-net\.jp", re.I),
           re.compile(r"^\s*could not be delivered to:|^your mail (sent|attempted to be delivered) on:", re.I | re.M)),
    Format("verizon", "from", re.compile(r"post_master@|sysadmin@[\w.-]*vzwpix", re.I),
           re.compile(r"^error: |message could not be delivered to mobile|^message details:", re.I | re.M)),
    Format("verizon", "received", re.compile(r"\.vtext\.com \(|vzwpix", re.I),
           re.compile(r"^error: |message could not be delivered to mobile", re.I | re.M)),
    Format("sendmail5", "subject", re.compile(r"^\s*returned mail: \S", re.I),
           re.compile(r"-+ ?transcript of session follows ?-+|-+ ?unsent message follows ?-+", re.I)),
    # fml (a Japanese list manager) returns posts refused or looped back to the list's admin.
    Format("fml", "x-mlserver", re.compile(r"\bfml\b", re.I),
           re.compile(r"are not member|loop alert|\u30e1\u30f3\u30d0\u30fc\u3067\u306f\u3042\u308a\u307e\u305b\u3093",
                      re.I)),
)  # fmt: skip

# Amazon SES event notifications delivered through SNS as JSON (docs.aws.amazon.com, "Amazon SES
# notification contents"): a Bounce is a bounce; a Complaint or Delivery is a machine notice.
SNS_HEADER = "x-amz-sns-message-id"
SNS_TYPE = re.compile(r'"notificationType"\s*:\s*"(Bounce|Complaint|Delivery)"')

# Complaint reports that predate ARF (RFC 5965): Hotmail's JMRP and the like.
COMPLAINT_SUBJECT = re.compile(r"complaint about message from|^\s*abuse report\b|\bspam complaint\b", re.I)

# RFC 3464 actions that report success: delivered, relayed, expanded, and Postfix's
# "deliverable" answer to an address verification (sendmail -bv).
SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded", "deliverable"})


def matching_format(fields: dict[str, list[str]], subject: str, text: str) -> str | None:
    """The name of the bounce format whose sender sign and phrase both appear, or None."""
    said = subject + "\n" + text
    for fmt in FORMATS:
        values = fields.get(fmt.header)
        if values and any(fmt.sign.search(v) for v in values) and fmt.marker.search(said):
            return fmt.name
    return None
