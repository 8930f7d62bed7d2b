"""Plain typed records the store returns, decoupled from SQL sessions (safe to keep and pass on)."""

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mugcore.errors import UserError


def utcnow() -> datetime:
    """Now, as stored: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def utc(value: datetime | None) -> datetime | None:
    """Stored naive-UTC timestamps -> aware UTC datetimes."""
    return None if value is None else value.replace(tzinfo=UTC)


def plain_float(value: Any) -> float:
    """A number as a Python float; a float32 as the shortest decimal that reads back as the same
    float32 (-2.6, not -2.5999999046325684), which is what a JSON reader should see."""
    return float(str(value)) if isinstance(value, np.float32) else float(value)


def plain_floats(values: np.ndarray) -> list[float]:
    """`plain_float` over an array, vectorised."""
    if values.dtype == np.float32:
        return values.astype(str).astype(np.float64).tolist()
    return np.asarray(values, dtype=np.float64).tolist()


def plain_json(value: Any) -> Any:
    """A JSON-ready copy (numpy scalars and arrays become Python values); UserError if some
    part cannot be stored as JSON."""
    try:
        return json.loads(json.dumps(value, default=_to_builtin))
    except (TypeError, ValueError) as exc:
        raise UserError(f"cannot store {type(value).__name__} as JSON: {exc}") from exc


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, Path | datetime):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _jsonable(asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class DatasetInfo(_Record):
    id: int
    name: str
    source_format: str
    content_hash: str
    label_bound: float
    dims: dict[str, Any]
    split_sizes: dict[str, int]
    has_truth: bool
    attrs: dict[str, Any]
    features_file: str
    created_at: datetime
    n_clips: int


@dataclass(frozen=True)
class LabelSetInfo(_Record):
    id: int
    dataset_id: int
    dataset: str
    method: str
    options: dict[str, Any]
    seed: int | None
    versions: dict[str, Any]
    timings: dict[str, Any]
    quality: dict[str, Any]
    provenance: dict[str, Any]
    file: str
    file_sha256: str
    n_clips: int
    created_at: datetime


@dataclass(frozen=True)
class JobInfo(_Record):
    id: int
    kind: str
    dataset_id: int | None
    status: str
    stage: str | None
    progress: float
    eta_s: float | None
    options: dict[str, Any]
    error: str | None
    idempotency_key: str | None
    worker: str | None
    attempts: int
    cancel_requested: bool
    label_set_id: int | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class JobLogLine(_Record):
    id: int
    at: datetime
    text: str


@dataclass(frozen=True)
class ClipLabels(_Record):
    """One clip's labels from one label set; `truth` holds the dataset's own per-modality
    labels where it has them (SIMS, synthetic data), else None; `uncertainty` is
    `{modality: {std, lower, upper}}` where the label set carries it, else None."""

    clip_id: str
    dataset: str
    split: str
    row: int
    multimodal: float
    text: float
    audio: float
    vision: float
    label_set: int
    truth: dict[str, float] | None
    uncertainty: dict[str, dict[str, float]] | None = None
