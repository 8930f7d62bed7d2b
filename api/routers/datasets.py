"""Datasets: upload (or register a server-side file), list, show, delete, bulk label export."""

import io
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from api.cursors import decode_cursor, encode_cursor
from api.deps import LabelSetDep, ReadAccess, SettingsDep, StoreDep, WriteAccess
from api.errors import ApiError
from api.routers.jobs import submit_job
from api.schemas import (
    DatasetCreated,
    DatasetList,
    DatasetOut,
    DatasetPath,
    DeviceName,
    IdPath,
    LabelPage,
    MethodName,
    PresetName,
)
from api.settings import Settings
from api.uploads import Upload, receive_upload
from labelgen.config import parse_override
from labelgen.interop.mmsa_export import with_labels
from labelgen.service.worker import check_options
from mugcore.data.io import load_dataset, save_dataset
from mugcore.data.schema import MMSADataset
from mugcore.errors import DatasetError, UserError
from storage import LabelSetInfo, LabelStore
from storage.files import LABEL_KEYS, VALUE_KEYS
from storage.records import DatasetInfo, plain_floats
from storage.uncertainty import rows_uncertainty

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
# An MMSA export file older than this is a leftover (sending one takes seconds to minutes).
EXPORT_GRACE_S = 6 * 3600.0

# The request body is read by hand (streamed to disk), so its schema is declared here.
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"], "additionalProperties": False,
                "properties": {"file": {"type": "string", "format": "binary",
                                        "description": "MMSA .pkl or project .h5 file"}}}},
            "application/json": {"schema": DatasetPath.model_json_schema()},
        },
    },
}


def dataset_out(info: DatasetInfo, **extra: Any) -> dict[str, Any]:
    out = info.to_dict()
    out.pop("features_file")  # a server-side path, not the client's business
    return {**out, **extra}


def _load(path: Path, shown_as: str) -> MMSADataset:
    """Load and validate; errors name the file as the client knows it, not our path."""
    try:
        return load_dataset(path)
    except DatasetError as exc:
        raise type(exc)(str(exc).replace(str(path), shown_as),
                        [p.replace(str(path), shown_as) for p in exc.problems]) from None


def _register_upload(store: LabelStore, upload: Upload, name: str | None) -> DatasetInfo:
    try:
        ds = _load(upload.path, upload.filename or "upload")
        stem = Path(upload.filename).stem if upload.filename else "upload"
        return store.register_dataset(name or stem, ds, source_format=_format_of(upload.path))
    finally:
        upload.discard()


def _register_path(store: LabelStore, settings: Settings, body: DatasetPath) -> DatasetInfo:
    if settings.data_root is None:
        raise ApiError(403, "body.path: registering server-side files is disabled (no data "
                       "root configured: MUG_DATA_ROOT)", field="body.path")
    root = settings.data_root.resolve()
    if "\x00" in body.path:
        raise ApiError(422, "body.path: contains a NUL byte", field="body.path")
    try:
        path = (root / body.path).resolve()
        if not path.is_relative_to(root):
            raise ApiError(403, "body.path: outside the server's data root", field="body.path")
        is_file = path.is_file()
    except OSError as exc:  # a name the file system refuses, e.g. longer than it allows
        raise ApiError(422, f"body.path: not a usable file name ({exc.strerror})",
                       field="body.path") from None
    if not is_file:
        raise ApiError(404, f"body.path: no file {body.path!r} in the data root",
                       field="body.path")
    ds = _load(path, body.path)
    return store.register_dataset(body.name or path.stem, ds, source_format=_format_of(path))


def _format_of(path: Path) -> str:
    return "pickle" if path.suffix == ".pkl" else "hdf5"


@router.post("", status_code=201, response_model=DatasetCreated, dependencies=[WriteAccess],
             operation_id="create_dataset", openapi_extra=_UPLOAD_BODY,
             summary="Upload a dataset (multipart field `file`) or register a server-side path")
async def create_dataset(
    request: Request, store: StoreDep, settings: SettingsDep,
    name: Annotated[str | None, Query(min_length=1, max_length=128,
                                      description="dataset name; default: the file name")] = None,
    generate: Annotated[bool, Query(description="also start label generation")] = False,
    method: Annotated[MethodName, Query()] = "mug",
    preset: Annotated[PresetName | None, Query()] = None,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    device: Annotated[DeviceName, Query(description="where stages 1-2 run")] = "auto",
    set: Annotated[list[str], Query(max_length=64, description="config override "
                                    "'section.key=value' (repeatable)")] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    options = None
    if generate:  # checked before the upload is read: a bad option costs no transfer
        options = check_options({"method": method, "preset": preset, "seed": seed,
                                 "device": device, "overrides": _parse_overrides(set)},
                                where="query.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = _json_body(await request.body())  # capped by api.limits
        if body.name is None and name is not None:
            body = body.model_copy(update={"name": name})
        info = await run_in_threadpool(_register_path, store, settings, body)
    else:
        upload_dir = settings.upload_dir or store.root / "uploads"
        upload = await receive_upload(request, upload_dir, settings.max_upload_bytes)
        info = await run_in_threadpool(_register_upload, store, upload, name)
    job_id = None
    if options is not None:
        job = await run_in_threadpool(submit_job, store, info.id, options, None)
        job_id = job.id
    return dataset_out(info, job_id=job_id)


def _json_body(raw: bytes) -> DatasetPath:
    try:
        return DatasetPath.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(["body", *map(str, first["loc"])])
        raise ApiError(422, f"{field}: {first['msg']}", field=field) from exc


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        try:
            key, value = parse_override(item)
        except UserError as exc:
            raise ApiError(422, f"query.set: {exc}", field="query.set") from exc
        out[key] = value
    return out


@router.get("", response_model=DatasetList, dependencies=[ReadAccess],
            operation_id="list_datasets")
def list_datasets(store: StoreDep) -> dict[str, Any]:
    return {"items": [dataset_out(d) for d in store.list_datasets()]}


@router.get("/{dataset_id}", response_model=DatasetOut, dependencies=[ReadAccess],
            operation_id="get_dataset")
def get_dataset(dataset_id: IdPath, store: StoreDep) -> dict[str, Any]:
    return dataset_out(store.get_dataset(dataset_id))


@router.delete("/{dataset_id}", status_code=204, dependencies=[WriteAccess],
               operation_id="delete_dataset", response_class=Response)
def delete_dataset(dataset_id: IdPath, store: StoreDep) -> Response:
    store.delete_dataset(dataset_id)
    return Response(status_code=204)


@router.get("/{dataset_id}/features", dependencies=[ReadAccess], operation_id="download_features",
            response_class=FileResponse,
            responses={200: {"content": {"application/x-hdf5": {}},
                             "description": "the dataset's features, project HDF5 format"}})
def download_features(dataset_id: IdPath, store: StoreDep) -> FileResponse:
    info = store.get_dataset(dataset_id)
    return FileResponse(store.features_path(info.id), media_type="application/x-hdf5",
                        filename=f"{info.name}.h5")


def _decode_cursor(cursor: str | None, total: int) -> int:
    if cursor is None:
        return 0
    start = decode_cursor(cursor)
    if start > total:
        raise ApiError(422, "query.cursor: out of range", field="query.cursor")
    return start


@router.get("/{dataset_id}/labels", dependencies=[ReadAccess], operation_id="export_labels",
            response_model=LabelPage,
            responses={200: {"content": {"application/x-npz": {}, "application/x-hdf5": {},
                                         "application/x-mmsa-pickle": {}},
                             "description": "a JSON page, or the whole label set as NPZ/HDF5, "
                                            "or in an MMSA pickle of the dataset"}},
            summary="All labels of a dataset's label set: JSON pages, or whole as NPZ, HDF5 "
                    "or in an MMSA pickle")
def export_labels(
    dataset_id: IdPath, store: StoreDep, settings: SettingsDep,
    label_set: LabelSetDep,
    format: Annotated[Literal["json", "npz", "hdf5", "mmsa"], Query(description=(
        "mmsa: the dataset as an MMSA pickle with this label set's uni-labels in "
        "regression_labels_T/_A/_V (and classification_labels_T/_A/_V), the rest as "
        "imported; its provenance is GET /v1/label-sets/{id}"))] = "json",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Any:
    info = store.get_label_set(label_set, dataset=dataset_id)
    if format == "hdf5":
        # The label-set file is immutable and already in the documented HDF5 layout.
        return FileResponse(store.label_file_path(info), media_type="application/x-hdf5",
                            filename=f"{info.dataset}-labels-{info.id}.h5")
    arrays = store.read_labels(info.id)
    if format == "mmsa":
        return _mmsa_export(store, info, arrays)
    if format == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return Response(buffer.getvalue(), media_type="application/x-npz", headers={
            "Content-Disposition": f'attachment; filename="{info.dataset}-labels-{info.id}.npz"',
            "X-Label-Set-Id": str(info.id)})
    total = len(arrays["clip_id"])
    start = _decode_cursor(cursor, total)
    stop = min(total, start + min(limit or settings.page_limit, settings.page_limit))
    columns = {k: plain_floats(arrays[k][start:stop]) if k in VALUE_KEYS
               else arrays[k][start:stop].tolist() for k in LABEL_KEYS}
    items = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    uncertainty = rows_uncertainty(arrays, start, stop) or [None] * len(items)
    for item, clip in zip(items, uncertainty, strict=True):
        item["uncertainty"] = clip
    return {"dataset_id": info.dataset_id, "label_set_id": info.id, "total": total,
            "items": items, "next_cursor": encode_cursor(stop) if stop < total else None}



def _mmsa_export(store: LabelStore, info: LabelSetInfo,
                 arrays: dict[str, np.ndarray]) -> FileResponse:
    """The dataset's MMSA pickle with the label set's uni-labels, written to a temporary file
    (a MOSEI-size pickle is gigabytes: never held in memory) that goes once it is sent."""
    ds = with_labels(store.load_features(info.dataset_id), arrays)
    # Not the upload directory: its cleaner removes every file no request has locked.
    directory = store.root / "exports"
    directory.mkdir(exist_ok=True)
    for old in directory.glob(".export-*.pkl"):  # left by a crash mid-send
        if time.time() - old.stat().st_mtime > EXPORT_GRACE_S:
            old.unlink(missing_ok=True)
    path = directory / f".export-{uuid.uuid4().hex}.pkl"
    save_dataset(ds, path)
    return FileResponse(path, media_type="application/x-mmsa-pickle",
                        filename=f"{info.dataset}-labels-{info.id}.pkl",
                        headers={"X-Label-Set-Id": str(info.id),
                                 "Link": f'</v1/label-sets/{info.id}>; rel="describedby"'},
                        background=BackgroundTask(path.unlink, missing_ok=True))
