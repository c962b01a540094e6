"""The shape of one language's phrase table: where quoted history and sign-offs begin."""

from __future__ import annotations

from dataclasses import dataclass, field

# Conventions, checked by tests/unit/test_quotes.py:
# - strings are compared casefolded with whitespace collapsed, " :" and the full-width "：" read
#   as ":" (French typography; Chinese and Japanese clients);
# - `wrote`: an attribution line ENDS with one of these, followed by ":" ("On …, Ann wrote:");
# - `wrote_inside`: an attribution line CONTAINS one of these and ends with ":" (German
#   "Ann <a@x> schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:", Swedish "Den … skrev Ann <a@x>:");
# - `leads`: first words of an attribution ("On", "Am", "W dniu"); evidence besides a date or
#   an address that a short "… wrote:" line is an attribution and not prose;
# - `headers`: forwarded/replied header block keys by role; a block needs a "from" key and two
#   more roles (Outlook: "From:/Sent:/To:/Subject:");
# - `separators`: the words of "-----Original Message-----" lines, without the dashes;
# - `mobile`: regular expressions that must match a whole line ("Sent from my iPhone"), once a
#   trailing link ("<https://aka.ms/…>") and full stop are set aside; keep them bounded (no
#   nested quantifiers) - they run on every short line of every mail.


@dataclass(frozen=True, slots=True)
class Phrases:
    """Where quoted history and signatures start, in one language."""

    wrote: tuple[str, ...] = ()
    wrote_inside: tuple[str, ...] = ()
    leads: tuple[str, ...] = ()
    headers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    separators: tuple[str, ...] = ()
    mobile: tuple[str, ...] = ()


# One or more words of a device or app name: "iPhone", "Verizon Wireless BlackBerry".
DEVICE = r"[\w'’.\-]+(?: [\w'’.\-]+){0,3}"
# The platforms the mobile apps name in their sign-offs ("Get Outlook for iOS").
PLATFORM = r"(?:ios|android|iphone|ipad|windows(?: 10| 11)?|mac)"
