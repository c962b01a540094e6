"""A PostgreSQL database looked at without opening a store: `db status` before an upgrade or a rollback."""

from __future__ import annotations

from mailgate.store.pg import mapped
from mailgate.store.sqlite import StoreUnavailable
from mailgate.store.url import Location


async def peek(location: Location, timeout: float = 10.0) -> tuple[int | None, dict[str, int]]:
    """A PostgreSQL database's schema version (None: not a mailgate database yet) and rows per table,
    read without migrating or creating anything (`db status` before an upgrade or a rollback)."""
    import asyncpg  # type: ignore[import-untyped]

    try:
        conn = await asyncpg.connect(**location.connect_args(), timeout=timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailable(f"cannot connect to {location.display()}: {exc}") from exc
    try:
        if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
            return None, {}
        found = await conn.fetchval("SELECT MAX(version) FROM schema_version")
        names = [r[0] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " AND table_type = 'BASE TABLE' AND table_name <> 'schema_version' ORDER BY table_name")]
        counts = {name: int(await conn.fetchval(f'SELECT COUNT(*) FROM "{name}"')) for name in names}
        return (None if found is None else int(found)), counts
    except asyncpg.PostgresError as exc:
        raise mapped(exc) from exc
    finally:
        await conn.close()
