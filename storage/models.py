"""SQL tables of the label store (SQLAlchemy 2). The schema itself is made by the migrations.

Timestamps are naive UTC everywhere (SQLite has no time zones); `records` turns them into
aware datetimes.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_JOB_STATUSES = ("queued", "running")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


# AUTOINCREMENT: SQLite would otherwise hand a deleted row's id to the next one, and ids of
# datasets, label sets and jobs are names users and caches hold on to.
_NO_ID_REUSE = {"sqlite_autoincrement": True}


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = _NO_ID_REUSE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    source_format: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    label_bound: Mapped[float] = mapped_column(Float)
    dims: Mapped[dict[str, Any]] = mapped_column(JSON)
    split_sizes: Mapped[dict[str, Any]] = mapped_column(JSON)
    has_truth: Mapped[bool] = mapped_column(Boolean)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Relative to the store's file root, so that a shared volume may be mounted anywhere.
    features_file: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Clip(Base):
    __tablename__ = "clips"
    __table_args__ = (
        UniqueConstraint("dataset_id", "clip_id", name="uq_clips_dataset_clip"),
        Index("ix_clips_clip_id", "clip_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    clip_id: Mapped[str] = mapped_column(String(256))
    split: Mapped[str] = mapped_column(String(8))
    row: Mapped[int] = mapped_column(Integer)  # index within its split
    position: Mapped[int] = mapped_column(Integer)  # index in label-set files (split order)
    multimodal: Mapped[float] = mapped_column(Float)
    truth_text: Mapped[float | None] = mapped_column(Float, nullable=True)
    truth_audio: Mapped[float | None] = mapped_column(Float, nullable=True)
    truth_vision: Mapped[float | None] = mapped_column(Float, nullable=True)


class LabelSet(Base):
    __tablename__ = "label_sets"
    __table_args__ = (Index("ix_label_sets_dataset_id", "dataset_id", "id"), _NO_ID_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    versions: Mapped[dict[str, Any]] = mapped_column(JSON)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    file: Mapped[str] = mapped_column(String(512), unique=True)
    file_sha256: Mapped[str] = mapped_column(String(64))
    n_clips: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"), _NO_ID_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    progress: Mapped[float] = mapped_column(Float)
    eta_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(256), unique=True, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(256), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean)
    label_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_sets.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class JobLog(Base):
    __tablename__ = "job_logs"
    __table_args__ = (Index("ix_job_logs_job_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime)
    text: Mapped[str] = mapped_column(Text)
