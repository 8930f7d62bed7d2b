"""Uploading another generator's uni-labels as a label set of a dataset (what `labelgen
import-labels` does): Self-MM's `save_labels` pickle or a CSV `clip_id,text,audio,vision`,
streamed to disk like any upload and read through the same readers and checks."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import SettingsDep, StoreDep, WriteAccess
from api.errors import ApiError
from api.schemas import IdPath, LabelSetOut
from api.uploads import FILE_FIELD, PICKLE_PROTO, Upload, receive_upload
from labelgen.interop.imports import import_label_file
from mugcore.errors import UserError
from storage import Conflict, LabelStore, NotFound

router = APIRouter(prefix="/v1/datasets", tags=["label sets"])

ImportFormat = Literal["selfmm", "csv", "cmc"]

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"], "additionalProperties": False,
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "Self-MM save_labels .pkl or a CSV "
                                                   "clip_id,text,audio,vision"}}}}},
    },
}


def sniff_label_file(head: bytes, filename: str | None) -> str:
    """A pickle by its protocol byte; anything else must start as UTF-8 text (a CSV)."""
    if head.startswith(PICKLE_PROTO):
        return ".pkl"
    text = ""
    for cut in range(4):  # the 8 bytes may end inside a multi-byte character
        try:
            text = head[:len(head) - cut].decode("utf-8-sig")
            break
        except UnicodeDecodeError:
            continue
    if "\x00" in text or not text.strip():
        raise ApiError(422, "file: not a Self-MM labels pickle or a CSV text file (content of "
                       f"{filename or 'the upload'} starts with {head[:8]!r})", field=FILE_FIELD)
    return ".csv"


def _import(store: LabelStore, dataset_id: int, upload: Upload, fmt: str,
            epoch: int | None) -> dict[str, Any]:
    try:
        info, _ = import_label_file(store, dataset_id, upload.path, fmt, epoch=epoch,
                                      shown=upload.filename or "upload")
    except (NotFound, Conflict):
        raise
    except UserError as exc:  # everything else is about the file's content
        raise ApiError(422, f"file: {exc}", field=FILE_FIELD) from None
    finally:
        upload.discard()
    out = info.to_dict()
    out.pop("file")  # a server-side path; the source, notes and copy splits are in provenance
    return out


@router.post("/{dataset_id}/label-sets", status_code=201, response_model=LabelSetOut,
             dependencies=[WriteAccess], operation_id="upload_label_set",
             openapi_extra=_UPLOAD_BODY,
             summary="Upload another generator's uni-labels (multipart field `file`) as a "
                     "label set")
async def upload_label_set(
    request: Request, dataset_id: IdPath, store: StoreDep, settings: SettingsDep,
    format: Annotated[ImportFormat | None, Query(description=(
        "selfmm (Self-MM's save_labels pickle), csv (clip_id,text,audio,vision) or cmc "
        "(refused: not regression labels); default: by content"))] = None,
    epoch: Annotated[int | None, Query(ge=1, le=1_000_000,
                                       description="selfmm: the saved epoch (default: last)")
                     ] = None,
) -> dict[str, Any]:
    await run_in_threadpool(store.get_dataset, dataset_id)  # 404 before the upload is read
    if epoch is not None and format not in (None, "selfmm"):
        raise ApiError(422, "query.epoch: only the selfmm format has epochs",
                       field="query.epoch")
    upload_dir = settings.upload_dir or store.root / "uploads"
    upload = await receive_upload(request, upload_dir, settings.max_upload_bytes,
                                  sniff=sniff_label_file)
    fmt = format or ("selfmm" if upload.path.suffix == ".pkl" else "csv")
    if epoch is not None and fmt != "selfmm":
        upload.discard()
        raise ApiError(422, "query.epoch: only the selfmm format has epochs (the upload is a "
                       "CSV)", field="query.epoch")
    return await run_in_threadpool(_import, store, dataset_id, upload, fmt, epoch)
