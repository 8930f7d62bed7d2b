"""Numbers as users type them: ids of datasets and label sets, byte counts in headers."""

MAX_ID = 2**63 - 1  # SQL BIGINT; a larger number is no row's id


def plain_int(text: str) -> int | None:
    """The non-negative integer `text` spells in ASCII digits, if it fits a BIGINT; else None.

    `str.isdigit` is not enough: '³' and '٣' are digits to it, and int() refuses the first
    and reads the second as 3; and a 20-digit id overflows the database's integer.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


# Clip ids: far longer than any real one ("video$_$clip"); what `/v1/labels/{clip_id}` takes,
# and what validation lets into a dataset, so that every stored id can be looked up.
MAX_CLIP_ID = 1024
