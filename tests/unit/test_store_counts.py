"""The store's statement counter: executemany counts the rows SQLite steps through, a list's or a generator's."""

from __future__ import annotations

from collections.abc import Iterator

from mailgate.store.counts import Counts


def test_a_list_of_rows_counts_its_length_at_once() -> None:
    counts = Counts()
    rows = [(1, "a"), (2, "b"), (3, "c")]
    assert counts.rows(rows) is rows
    assert counts.statements == 3


def test_a_generator_counts_only_the_rows_pulled() -> None:
    counts = Counts(statements=5)

    def made() -> Iterator[tuple[int]]:
        yield from ((i,) for i in range(4))

    pulled = iter(counts.rows(made()))
    assert counts.statements == 5  # nothing run yet
    assert [next(pulled), next(pulled)] == [(0,), (1,)]
    assert counts.statements == 7
    assert list(pulled) == [(2,), (3,)]
    assert counts.statements == 9
    assert (counts.write_transactions, counts.read_transactions) == (0, 0)
