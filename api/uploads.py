"""Streaming multipart uploads straight to disk, with a running byte limit.

The body is parsed as it arrives (python-multipart's push parser), so neither the request
nor the file is ever held whole in memory; the moment the file part crosses the limit its
temp file is deleted and the request answered 413. The content decides the file type (HDF5
signature, pickle protocol byte), not the client's file name.

Each upload's file is `flock`ed from creation until the request is done with it, so a file in
the upload directory that can be locked belongs to nobody (a server killed mid-upload): such
files are removed when the server starts and whenever an upload begins.
"""

import fcntl
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from api.errors import ApiError
from mugcore.ids import plain_int
from storage.files import clean_stray_files

log = logging.getLogger(__name__)

FILE_FIELD = "file"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PICKLE_PROTO = b"\x80"
# How a pickle of a dict (an MMSA file's top level) starts: protocol 2 and later with PROTO,
# protocol 0 with MARK ("(dp0"), protocol 1 with EMPTY_DICT ("}q"). The CLI reads every
# protocol through the same restricted unpickler, so the API admits them all too.
DATASET_PICKLE_STARTS = (PICKLE_PROTO, b"(", b"}")
TEMP_PREFIX = ".upload-"
# Multipart framing (boundaries, part headers) on top of the file itself.
FRAMING_SLACK = 64 * 1024
# Drain at most this much of an oversize body so that the client can read our 413.
DRAIN_LIMIT = 64 * 1024 * 1024
# A file younger than this may be one whose request has created but not yet locked it (a
# matter of microseconds: it locks the file right after creating it).
LOCK_GRACE_S = 1.0


@dataclass
class Upload:
    path: Path  # temp file, suffix .pkl or .h5 by content
    filename: str | None
    size: int
    _lock: BinaryIO  # the open file whose flock marks the upload as in use

    def discard(self) -> None:
        """The request is done with the file: remove it, then let go of the lock."""
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self._lock.close()


Sniff = Callable[[bytes, str | None], str]


def sniff_suffix(head: bytes, filename: str | None) -> str:
    if head.startswith(HDF5_SIGNATURE):
        return ".h5"
    if head.startswith(DATASET_PICKLE_STARTS):
        return ".pkl"
    raise ApiError(422, "file: not an MMSA pickle (.pkl) or project HDF5 (.h5) file "
                   f"(content of {filename or 'the upload'} starts with {head[:8]!r})",
                   field=FILE_FIELD)


def remove_stale_uploads(directory: Path) -> None:
    """Files of uploads whose request is gone (cut off by a crash): every file nobody locks."""
    for path in clean_stray_files(directory, lambda _: False, grace_s=LOCK_GRACE_S, suffix=""):
        log.info("removed the file of an upload cut off by a crash: %s", path.name)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"file: upload larger than the limit of {limit} bytes",
                    field=FILE_FIELD)


class _Sink:
    """Parser callbacks: write the `file` part to disk, counting bytes, reject anything else."""

    def __init__(self, directory: Path, limit: int, sniff: Sniff = sniff_suffix) -> None:
        self.directory = directory
        self.limit = limit
        self.sniff = sniff
        self.temp = directory / f"{TEMP_PREFIX}{uuid.uuid4().hex}.part"
        self.out: BinaryIO | None = None
        self.size = 0
        self.filename: str | None = None
        self.error: ApiError | None = None
        self.seen_file = False
        self._in_file = False
        self._header_field = b""
        self._header_value = b""
        self._disposition = b""

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_cb,
            "on_header_value": self._header_value_cb,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""
        self._in_file = False

    def _header_field_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        if self.error:
            return
        _, params = parse_options_header(self._disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name != FILE_FIELD:
            self.error = ApiError(422, f"{name or '(unnamed part)'}: unexpected form field; "
                                  f"send the dataset as the single field {FILE_FIELD!r}",
                                  field=name or None)
            return
        if self.seen_file:
            self.error = ApiError(422, "file: more than one file in the request",
                                  field=FILE_FIELD)
            return
        self.seen_file = self._in_file = True
        raw = params.get(b"filename")
        self.filename = os.path.basename(raw.decode("utf-8", "replace")) if raw else None
        self.out = open(self.temp, "wb")  # noqa: SIM115 - closed in abort or by Upload.discard
        fcntl.flock(self.out.fileno(), fcntl.LOCK_EX)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error or not self._in_file:
            return
        self.size += end - start
        if self.size > self.limit:
            self.error = _too_large(self.limit)
            self.abort()  # nothing of an oversize upload stays on disk
            return
        assert self.out is not None
        self.out.write(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False

    def abort(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        self.temp.unlink(missing_ok=True)

    def finish(self) -> Upload:
        assert self.out is not None
        self.out.flush()
        os.fsync(self.out.fileno())
        with open(self.temp, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
        final = self.temp.with_suffix(self.sniff(head, self.filename))
        os.replace(self.temp, final)
        # Shared from now on: HDF5 takes a shared lock of its own to read the file, and a
        # cleaner's exclusive one still fails.
        fcntl.flock(self.out.fileno(), fcntl.LOCK_SH)
        out, self.out = self.out, None  # its lock now travels with the upload
        return Upload(final, self.filename, self.size, out)


async def receive_upload(request: Request, directory: Path, limit: int, *,
                         sniff: Sniff = sniff_suffix) -> Upload:
    """Stream the multipart body's `file` field into `directory`; ApiError on any problem.
    `sniff(head, filename)` gives the file's suffix from its first bytes (or raises)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(415, "header.Content-Type: expected multipart/form-data with a boundary",
                       field="header.Content-Type")
    declared = request.headers.get("content-length")
    if declared is not None and (plain_int(declared) or 0) > limit + FRAMING_SLACK:
        raise _too_large(limit)  # refused before a byte of the body is read
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_uploads(directory)
    sink = _Sink(directory, limit, sniff)
    parser = MultipartParser(boundary, sink.callbacks())
    try:
        drained = 0
        async for chunk in request.stream():
            if sink.error is None:
                parser.write(chunk)
            else:
                # Reading the rest lets a client that sends the whole body before reading
                # (most do) see the 413 instead of a reset connection.
                drained += len(chunk)
                if drained > DRAIN_LIMIT:
                    break
        if sink.error is not None:
            raise sink.error
        parser.finalize()
        if sink.error is not None:
            raise sink.error
        if not sink.seen_file:
            raise ApiError(422, "file: missing; send the dataset as multipart field 'file'",
                           field=FILE_FIELD)
        if sink.size == 0:
            raise ApiError(422, "file: the upload is empty", field=FILE_FIELD)
        return sink.finish()
    except MultipartParseError as exc:
        raise ApiError(422, f"body: malformed multipart body ({exc})", field="body") from exc
    except ClientDisconnect:
        # Nobody is left to answer; the client's own doing, so no error in the server's log.
        log.info("upload cut off by the client after %d bytes", sink.size)
        raise ApiError(400, "body: the client disconnected during the upload",
                       field="body") from None
    finally:
        # On success `finish` renamed the temp file away; anything else goes.
        sink.abort()
