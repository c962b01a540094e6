"""The [replies] section: where the saved replies agents send with [use:NAME] live."""

from __future__ import annotations

from pathlib import Path

from mailgate.config.base import StrictModel


class RepliesConfig(StrictModel):
    """Saved replies: <folder>/<name>.<lang>.j2, and <folder>/<queue>/<name>.<lang>.j2 for one queue's own.

    A relative folder is read beside the config file; a missing folder means no saved replies.
    """

    folder: Path = Path("replies")

    def path(self, source: Path | None) -> Path:
        """The folder itself, a relative one resolved against the config file's folder."""
        if self.folder.is_absolute():
            return self.folder
        return (source.parent if source is not None else Path.cwd()) / self.folder
