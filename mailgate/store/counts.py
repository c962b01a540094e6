"""What a store ran since it was opened: statements and transactions, as plain integers for /metrics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any


@dataclass
class Counts:
    """Counted by Txn's statement methods and Store.txn/read; read by /metrics and bench/e2e.py.

    statements: each time SQLite runs a statement for mailgate's code (BEGIN and COMMIT are the
    transactions'). executemany counts one per row, since SQLite steps its statement once per row:
    batching rows in one call is no fewer statements than a call per row. A multi-row statement
    (IN (...), VALUES (...), (...)) counts once.
    """

    statements: int = 0
    write_transactions: int = 0
    read_transactions: int = 0

    def rows(self, rows: Iterable[Sequence[Any]]) -> Iterable[Sequence[Any]]:
        """executemany's rows, counted (a generator's as SQLite pulls them)."""
        if isinstance(rows, Sized):
            self.statements += len(rows)
            return rows
        return self._pulled(rows)

    def _pulled(self, rows: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
        for row in rows:
            self.statements += 1
            yield row
