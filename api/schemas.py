"""Request and response bodies of the API (pydantic); the OpenAPI document is built from these."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from labelgen.config import PRESETS
from labelgen.methods import METHODS
from mugcore.device import DEVICES

# SQL integer ids are 64-bit: larger numbers cannot name anything (and would overflow SQLite).
MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
# Enums in the OpenAPI document, from the registries the worker checks against.
MethodName = Literal[tuple(METHODS)]  # type: ignore[valid-type]
PresetName = Literal[tuple(PRESETS)]  # type: ignore[valid-type]
DeviceName = Literal[DEVICES]  # type: ignore[valid-type]


class ErrorOut(BaseModel):
    detail: str = Field(description="what is wrong, in one line")
    field: str | None = Field(description="the request field at fault, e.g. 'query.limit'")


class JobOptions(BaseModel):
    """What a label-generation job runs: `labelgen run` options, as JSON."""

    model_config = ConfigDict(extra="forbid")

    method: MethodName = Field("mug", description="label generator")
    preset: PresetName | None = Field(None, description="config preset; default: chosen "
                                      "from the dataset")
    overrides: dict[str, Any] = Field(
        default_factory=dict, max_length=64,
        description='config overrides by dotted key, e.g. {"stage1.max_epochs": 2}')
    seed: int = Field(0, ge=0, le=2**31 - 1, strict=True)  # strict: false is no seed
    device: DeviceName = Field("auto", description="where stages 1-2 run: cuda when the "
                               "worker sees a GPU (auto), cpu, or cuda (refused with 422 "
                               "when this server has no GPU)")


class DatasetPath(BaseModel):
    """Register a dataset file already on the server, inside its data root."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096,
                      description="path of a .pkl or .h5 file, relative to the data root")
    name: str | None = Field(None, min_length=1, max_length=128)


class DatasetOut(BaseModel):
    id: int
    name: str
    source_format: str
    content_hash: str
    label_bound: float
    dims: dict[str, Any]
    split_sizes: dict[str, int]
    n_clips: int
    has_truth: bool
    attrs: dict[str, Any]
    created_at: datetime


class DatasetCreated(DatasetOut):
    job_id: int | None = Field(None, description="the label-generation job, when one was started")


class DatasetList(BaseModel):
    items: list[DatasetOut]


class JobOut(BaseModel):
    id: int
    kind: str
    dataset_id: int | None
    status: JobStatus
    stage: str | None
    progress: float = Field(ge=0, le=1)
    eta_s: float | None = Field(description="estimated seconds left, while running")
    options: dict[str, Any]
    error: str | None
    attempts: int
    cancel_requested: bool
    label_set_id: int | None
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None


class JobList(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; "
                                    "null at the end")


class JobLogLineOut(BaseModel):
    id: int
    at: datetime
    text: str


class JobLog(BaseModel):
    job_id: int
    lines: list[JobLogLineOut]


class ModalityUncertainty(BaseModel):
    std: float = Field(ge=0, description="standard deviation of the uni-label")
    lower: float = Field(description="lower end of the calibrated interval (its level: the "
                         "label set's provenance.uncertainty.level)")
    upper: float = Field(description="upper end of the calibrated interval")


class ClipUncertainty(BaseModel):
    text: ModalityUncertainty
    audio: ModalityUncertainty
    vision: ModalityUncertainty


_UNCERTAINTY = Field(None, description="per-clip uncertainty of the uni-labels; null when the "
                     "label set carries none (its provenance.uncertainty says why)")


class ClipLabelsOut(BaseModel):
    clip_id: str
    dataset: str
    split: str
    multimodal: float
    text: float
    audio: float
    vision: float
    label_set_id: int
    uncertainty: ClipUncertainty | None = _UNCERTAINTY


class LabelRow(BaseModel):
    clip_id: str
    split: str
    multimodal: float
    text: float
    audio: float
    vision: float
    uncertainty: ClipUncertainty | None = _UNCERTAINTY


class LabelPage(BaseModel):
    dataset_id: int
    label_set_id: int
    total: int
    items: list[LabelRow]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at "
                                    "the end")


class LabelSetOut(BaseModel):
    id: int
    dataset_id: int
    dataset: str
    method: str
    options: dict[str, Any]
    seed: int | None
    versions: dict[str, Any]
    timings: dict[str, Any]
    quality: dict[str, Any]
    provenance: dict[str, Any] = Field(description=(
        "everything the method recorded, as given; where the method made them: `selection` "
        "(the setting chosen per modality and the candidates' scores), `gate` (the safety "
        "gate's decision per modality, with its evidence and reason) and `uncertainty` (how "
        "per-clip uncertainty was made, its level and summary, or method 'none' and why)"))
    file_sha256: str
    n_clips: int
    created_at: datetime


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    datasets: int
