"""Rows as the manual uses them: `row.city` and `row["city"]` alike.

A `Row` is a plain `dict` underneath (the manual's transactions answer "a list of dict"), so
rows pickle, compare, serialize to JSON and sit in the result cache like any dict."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class Row(dict):
    """One record: a dict whose columns are also attributes."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the row has no column {name!r} (columns: {', '.join(self)})") from None


def rows(columns: Sequence[str], records: Iterable[Sequence[Any]]) -> list[Row]:
    """`Row`s of `records`, each a sequence of values in the order of `columns`."""
    return [Row(zip(columns, record, strict=True)) for record in records]
