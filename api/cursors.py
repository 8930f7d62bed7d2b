"""Opaque page cursors: a non-negative integer (a row offset, an id) the server gave out."""

import base64

from api.errors import ApiError


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The integer in `cursor`; a 422 naming query.cursor for anything this server did not make."""
    try:
        value = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
        if value < 0:
            raise ValueError(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, "query.cursor: not a cursor this server gave out",
                       field="query.cursor") from exc
    return value
