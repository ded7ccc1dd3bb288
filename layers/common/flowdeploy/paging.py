"""Pages of every list route: `?limit=&after=` in, `{"<rows>": [...], "next": ...}` out.

`next` is the `after` of the following page, null on the last one. A page holds at most
`limit` rows, and fewer when more would not fit in a Lambda response: Lambda refuses a
response over 6 MB, counted as the JSON of the whole invocation result, in which the body
is itself a JSON string (every `"` and `\\` of it escaped once more). Each row is measured
that way as it is added, so every page stays under RESPONSE_BUDGET_BYTES by construction,
whatever the rows hold (one row, a DynamoDB item of at most 400 KB, always fits).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flowdeploy.errors import BadRequest

# Lambda's limit is 6,291,456 bytes for the whole result; leave room for status and headers.
RESPONSE_BUDGET_BYTES = 5_000_000
QUERY = ("limit", "after")

Row = TypeVar("Row")
Cursor = TypeVar("Cursor")


@dataclass(frozen=True, slots=True)
class PageRequest(Generic[Cursor]):
    limit: int
    after: Cursor | None


def request(
    query: Mapping[str, str], maximum: int, parse_after: Callable[[str], Cursor | None]
) -> PageRequest[Cursor]:
    """`?limit=` (1 to `maximum`, default `maximum`) and `?after=` (a `next`); 400 otherwise."""
    text = query.get("limit", str(maximum))
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or not 1 <= int(text) <= maximum:
        raise BadRequest(f"limit must be an integer from 1 to {maximum}, got {text!r}")
    after = None
    if "after" in query:
        after = parse_after(query["after"])
        if after is None:
            wrong = query["after"]
            raise BadRequest(f"after must be the `next` of the previous page, got {wrong!r}")
    return PageRequest(int(text), after)


def encoded_size(document: Any) -> int:
    """Bytes `document` takes in a Lambda response: its JSON, escaped again as the body string."""
    text = json.dumps(document, separators=(",", ":"))
    return len(text) + text.count('"') + text.count("\\") + 1


def fill(
    rows: Iterable[Row],
    page: PageRequest[Any],
    render: Callable[[Row], dict[str, Any]],
    cursor: Callable[[Row], Any],
    budget: int = RESPONSE_BUDGET_BYTES,
) -> tuple[list[dict[str, Any]], Any]:
    """Up to `page.limit` rendered rows within `budget` bytes, and the `next` cursor.

    `rows` must be those after `page.after`, in order; reading one past the page (a query
    with `limit + 1`) tells whether there is a next page.
    """
    rendered: list[dict[str, Any]] = []
    used = 0
    last: Row | None = None
    for row in rows:
        if len(rendered) == page.limit:
            return rendered, cursor(last)  # type: ignore[arg-type]
        document = render(row)
        size = encoded_size(document)
        if rendered and used + size > budget:
            return rendered, cursor(last)  # type: ignore[arg-type]
        rendered.append(document)
        used += size
        last = row
    return rendered, None
