"""RFC 3676 format=flowed text as its writer's lines."""

from __future__ import annotations


def unflow(text: str, *, delsp: bool = False) -> str:
    """RFC 3676 format=flowed as the writer's lines: soft breaks joined per quote depth, stuffing removed."""
    out: list[str] = []
    pending: str | None = None
    depth_of_pending = 0

    def emit(depth: int, content: str) -> None:
        out.append(f"{'>' * depth} {content}" if depth and content else ">" * depth + content)

    for line in text.split("\n"):
        content = line.lstrip(">")
        depth = len(line) - len(content)
        content = content.removeprefix(" ")  # space-stuffing (RFC 3676 4.4)
        soft = content.endswith(" ") and content != "-- "  # the signature delimiter never flows (4.3)
        if pending is not None and depth != depth_of_pending:
            emit(depth_of_pending, pending.rstrip(" "))  # a change of quote depth ends the paragraph (4.5)
            pending = None
        if pending is None:
            pending, depth_of_pending = "", depth
        pending += content[:-1] if soft and delsp else content
        if not soft:
            emit(depth, pending)
            pending = None
    if pending is not None:
        emit(depth_of_pending, pending)
    return "\n".join(out)
