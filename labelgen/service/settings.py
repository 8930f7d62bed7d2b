"""Settings of a job worker, from flags and MUG_* variables. `labelgen worker` reads this class;
the API server's settings (`api.settings.Settings`) extend it, so both read the same names.

Precedence: command-line flags over MUG_* environment variables over the defaults here.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mugcore.errors import UserError

if TYPE_CHECKING:
    from labelgen.service.worker import WorkerSettings


class WorkerEnvSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MUG_", extra="ignore")

    store: str = Field("mug-store", description="store directory (SQLite + files) or a "
                       "postgresql+psycopg:// URL")
    files: str | None = Field(None, description="file root of the store; needed with a URL")
    job_stale_s: float = Field(120.0, gt=0, description="a running job whose heartbeat is "
                               "older than this belongs to a dead worker")
    job_stale_policy: Literal["requeue", "fail"] = Field(
        "requeue", description="what becomes of a stale job: queued again, or failed")
    job_max_attempts: int = Field(3, ge=1, description="a job requeued this often fails instead")
    poll_s: float = Field(1.0, gt=0, description="how often an idle worker looks for a job")
    heartbeat_s: float = Field(0.5, gt=0, description="how often a busy worker reports "
                               "progress and checks for cancellation")
    cancel_grace_s: float = Field(2.0, ge=0, description="time a cancelled job's process gets "
                                  "to stop before it is killed")
    ranks: int = Field(1, ge=1, le=64, description="torch.distributed ranks per job on this "
                       "machine (gloo on the CPU, one GPU each with NCCL): the cross-fitting "
                       "folds or seed-averaging runs are spread over them")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where jobs whose device option is auto run: cuda when a GPU is "
                            "visible (auto), cpu, or cuda")

    @field_validator("files", mode="before")
    @classmethod
    def _empty_files_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    def worker_settings(self, *, once: bool = False) -> "WorkerSettings":
        from labelgen.service.worker import WorkerSettings

        return WorkerSettings(poll_s=self.poll_s, heartbeat_s=self.heartbeat_s,
                              stale_s=self.job_stale_s, stale_policy=self.job_stale_policy,
                              max_attempts=self.job_max_attempts,
                              cancel_grace_s=self.cancel_grace_s, once=once,
                              device=self.device, ranks=self.ranks)


S = TypeVar("S", bound=BaseSettings)


def settings_from(cls: type[S], given: Mapping[str, Any]) -> S:
    """`cls` from command-line values (None: not given) over MUG_* variables; a bad value is a
    UserError naming the setting."""
    try:
        return cls(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(map(str, first["loc"]))
        raise UserError(f"setting {name} (flag or MUG_{name.upper()}): {first['msg']}") from exc
