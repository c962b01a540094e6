"""A Maildir import keeps delivery order, whatever the name's unpadded microseconds say as text."""

from __future__ import annotations

from mailgate.sources.pipe import _delivery_order


def test_names_of_one_second_sort_by_their_microseconds_as_numbers() -> None:
    names = ["1700000000.M123456P42Q2.host", "1700000000.M99999P42Q1.host", "1699999999.M5P1Q9.host"]
    assert sorted(names) != sorted(names, key=_delivery_order)  # as text, the order would be wrong
    assert sorted(names, key=_delivery_order) == [
        "1699999999.M5P1Q9.host", "1700000000.M99999P42Q1.host", "1700000000.M123456P42Q2.host"
    ]
