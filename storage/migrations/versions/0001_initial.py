"""Initial schema: datasets, clips, label sets, jobs, job logs.

Revision ID: 0001
Revises:
Create Date: 2024-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("source_format", sa.String(32), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("label_bound", sa.Float(), nullable=False),
        sa.Column("dims", sa.JSON(), nullable=False),
        sa.Column("split_sizes", sa.JSON(), nullable=False),
        sa.Column("has_truth", sa.Boolean(), nullable=False),
        sa.Column("attrs", sa.JSON(), nullable=False),
        sa.Column("features_file", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_datasets_content_hash", "datasets", ["content_hash"])
    op.create_table(
        "clips",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(),
                  sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("clip_id", sa.String(256), nullable=False),
        sa.Column("split", sa.String(8), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("multimodal", sa.Float(), nullable=False),
        sa.Column("truth_text", sa.Float(), nullable=True),
        sa.Column("truth_audio", sa.Float(), nullable=True),
        sa.Column("truth_vision", sa.Float(), nullable=True),
        sa.UniqueConstraint("dataset_id", "clip_id", name="uq_clips_dataset_clip"),
    )
    op.create_index("ix_clips_clip_id", "clips", ["clip_id"])
    op.create_table(
        "label_sets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(),
                  sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("file", sa.String(512), nullable=False, unique=True),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("n_clips", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_label_sets_dataset_id", "label_sets", ["dataset_id", "id"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(),
                  sa.ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(64), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("eta_s", sa.Float(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(256), nullable=True, unique=True),
        sa.Column("worker", sa.String(256), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("label_set_id", sa.Integer(),
                  sa.ForeignKey("label_sets.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_jobs_status_created", "jobs", ["status", "created_at"])
    op.create_table(
        "job_logs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(),
                  sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_job_logs_job_id", "job_logs", ["job_id", "id"])


def downgrade() -> None:
    for table in ("job_logs", "jobs", "label_sets", "clips", "datasets"):
        op.drop_table(table)
