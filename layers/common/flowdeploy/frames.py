"""Space Operator's table text in `ExportedUserData`: CSV with `;` between fields and `'`
around them (upstream's `csv_export::df_serde`, Polars' reader and writer).

A field is quoted when it holds `;`, `'` or a line break, or is the empty string; a `'`
inside a quoted field is doubled. An unquoted empty field is null, a quoted one ('') the
empty string, so null and "" survive a round trip as they do upstream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

SEPARATOR = ";"
QUOTE = "'"


class FrameError(ValueError):
    """Text that is not a table in upstream's CSV form; the message says where."""


Row = dict[str, str | None]


def read(text: str, table: str) -> list[Row]:
    """The rows of one table (header first), each a column -> value (None for null)."""
    records = list(_records(text, table))
    if not records:
        return []
    header = records[0]
    if any(name is None for name in header):
        raise FrameError(f"{table}: the header has an empty column name")
    names = [str(name) for name in header]
    rows = []
    for number, record in enumerate(records[1:], start=2):
        if record == [None] and len(names) > 1:
            continue  # a blank line
        if len(record) != len(names):
            raise FrameError(
                f"{table}: line {number} has {len(record)} fields, the header {len(names)}"
            )
        rows.append(dict(zip(names, record, strict=True)))
    return rows


# A field: quoted ('' inside for a quote) or not; then what ends it.
_FIELD = re.compile(r"'((?:[^']|'')*)'|([^;'\r\n]*)")
_END = re.compile(r";|\r\n|\n|\r|$")


def _records(text: str, table: str) -> Iterable[list[str | None]]:
    record: list[str | None] = []
    position, size = 0, len(text)
    while position < size:
        found = _FIELD.match(text, position)
        assert found is not None  # the unquoted form matches the empty string
        quoted, plain = found.group(1), found.group(2)
        if quoted is not None:
            record.append(quoted.replace("''", "'"))
        else:
            record.append(plain or None)
        end = _END.match(text, found.end())
        if end is None:
            line = text.count("\n", 0, found.end()) + 1
            raise FrameError(f"{table}: line {line}: a quote inside a field, or one not closed")
        position = end.end()
        if end.group() != ";":
            yield record
            record = []
    if record:
        record.append(None)  # the text ended right after a separator
        yield record


def write(columns: Sequence[str], rows: Iterable[Sequence[str | None]]) -> str:
    """The table as upstream writes it: a header, then one line per row."""
    lines = [SEPARATOR.join(_field(name) for name in columns)]
    lines += [SEPARATOR.join(_field(value) for value in row) for row in rows]
    return "\n".join(lines) + "\n"


def _field(value: str | None) -> str:
    if value is None:
        return ""
    if value == "" or any(c in value for c in (SEPARATOR, QUOTE, "\n", "\r")):
        return QUOTE + value.replace(QUOTE, QUOTE * 2) + QUOTE
    return value
