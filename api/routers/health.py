"""Liveness (the process answers) and readiness (the store answers, and its files are sound:
none missing, no features file unreadable, no label file found changed since publication; and
there is room to write)."""

import shutil
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.schemas import Health, Ready

router = APIRouter(tags=["health"])
# Below this much free space where uploads and store files are written, the server is not
# ready: the next dataset or label set would not fit.
MIN_FREE_BYTES = 16 << 20


@router.get("/healthz", response_model=Health, operation_id="healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, operation_id="readyz",
            responses={503: {"description": "the store cannot be reached, or files of it are "
                                            "missing or damaged"}})
async def readyz(store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    for directory in {store.root, settings.upload_dir or store.root}:
        free = shutil.disk_usage(directory).free
        if free < MIN_FREE_BYTES:
            raise ApiError(503, f"disk full: {free >> 10} KiB free where the store writes "
                           f"(at least {MIN_FREE_BYTES >> 20} MiB needed)")
    try:
        datasets = await run_in_threadpool(store.list_datasets)
        damage = await run_in_threadpool(store.find_damage, deep=False)
    except Exception as exc:  # any failure to reach the store means "not ready"
        raise ApiError(503, f"store unavailable: {type(exc).__name__}") from exc
    if damage:
        shown = "; ".join(str(d) for d in damage[:3]) + ("; ..." if len(damage) > 3 else "")
        raise ApiError(503, f"store damaged: {len(damage)} file(s): {shown} (`labelgen store "
                       "check` lists them all)")
    return {"status": "ready", "datasets": len(datasets)}
