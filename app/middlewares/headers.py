"""Writing several response headers at once.

Werkzeug's `Headers` finds a name by lower-casing and comparing every header already in the
list, so each `headers[name] = value` is a scan of the whole list (about 15-20 headers on an
API response). Hooks that write a batch read the names once instead (finding 43).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Response
from werkzeug.datastructures import Headers


def write_headers(headers: Headers, new_headers: Iterable[tuple[str, str]]) -> None:
    """Set each of `new_headers` as `headers[name] = value` would, with one scan of the names.

    A name already present is replaced (its first value kept in place, the others dropped);
    an absent one is appended.
    """
    present = {name.lower() for name, _ in headers}
    for name, value in new_headers:
        if name.lower() in present:
            headers[name] = value
        else:
            headers.add(name, value)


def headers_written_by(write: Callable[[Response], Any]) -> list[tuple[str, str]]:
    """The headers `write` (a library's header-writing hook) adds to an empty response.

    For hooks whose output is fixed for a class of requests: captured once from the library
    itself, then replayed, so what is sent stays exactly what the library would send.
    """
    captured = Response()
    captured.headers.clear()
    write(captured)
    return list(captured.headers.items())
