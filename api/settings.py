"""All settings of the API server and its embedded workers: one class, from flags and MUG_*.

Precedence: command-line flags (see `api.main`) over MUG_* environment variables over the
defaults here. Tokens are secrets: they never appear in logs, reprs or the OpenAPI document.
"""

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from labelgen.worker import WorkerSettings

LOOPBACK_NAMES = ("localhost",)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MUG_", extra="ignore")

    store: str = Field("mug-store", description="store directory (SQLite + files) or a "
                       "postgresql+psycopg:// URL")
    files: str | None = Field(None, description="file root of the store; needed with a URL")
    host: str = Field("127.0.0.1", description="address uvicorn binds")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=0, description="embedded job workers started beside the API")
    write_token: SecretStr | None = Field(None, description="bearer token for every write")
    read_token: SecretStr | None = Field(None, description="bearer token for reads, when set")
    data_root: Path | None = Field(None, description="server-side dataset paths must lie "
                                   "inside this directory; unset: registering by path is off")
    upload_dir: Path | None = Field(None, description="where uploads are streamed; default: "
                                    "'uploads' inside the store's file root")
    max_upload_bytes: int = Field(2 * 1024**3, gt=0, description="largest accepted upload")
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
    page_limit: int = Field(1000, gt=0, description="most labels per JSON page")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @field_validator("write_token", "read_token", "files", "data_root", "upload_dir",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    def is_loopback(self) -> bool:
        if self.host in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check_can_serve(self) -> None:
        """An unprotected server is only acceptable where nobody else can reach it."""
        from mugcore.errors import UserError

        if self.write_token is None and not self.is_loopback():
            raise UserError(f"refusing to listen on {self.host} without a write token: set "
                            "MUG_WRITE_TOKEN, or bind 127.0.0.1")

    def worker_settings(self, *, once: bool = False) -> "WorkerSettings":
        from labelgen.worker import WorkerSettings

        return WorkerSettings(poll_s=self.poll_s, heartbeat_s=self.heartbeat_s,
                              stale_s=self.job_stale_s, stale_policy=self.job_stale_policy,
                              max_attempts=self.job_max_attempts,
                              cancel_grace_s=self.cancel_grace_s, once=once)


def load_settings(given: Mapping[str, Any]) -> Settings:
    """Settings from command-line values (None: not given) over MUG_* variables; a bad value
    is a UserError naming the setting."""
    from mugcore.errors import UserError

    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(map(str, first["loc"]))
        raise UserError(f"setting {name} (flag or MUG_{name.upper()}): {first['msg']}") from exc
