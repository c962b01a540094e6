"""The one kind of error a domain operation raises when it says no."""

from __future__ import annotations


class Refused(ValueError):
    """A domain operation refused: nothing of it was applied; the reason is for the person who asked."""
