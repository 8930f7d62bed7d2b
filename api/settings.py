"""All settings of the API server and its embedded workers: one class, from flags and MUG_*.

Precedence: command-line flags (see `api.main`) over MUG_* environment variables over the
defaults here. The worker's own settings (store, files, job_*, poll and heartbeat periods) come
from `labelgen.service.settings`, which `labelgen worker` reads too. Tokens are secrets: they
never appear in logs, reprs or the OpenAPI document.
"""

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from labelgen.service.settings import WorkerEnvSettings, settings_from

LOOPBACK_NAMES = ("localhost",)


class Settings(WorkerEnvSettings):
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
    page_limit: int = Field(1000, gt=0, description="most labels per JSON page")
    read_timeout_s: float = Field(30.0, gt=0, le=3600, description=(
        "a connection whose client sends nothing for this long, or sends a request at under "
        "1 KiB/s once it has taken this long, is closed (slow clients hold no connection)"))
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @field_validator("write_token", "read_token", "data_root", "upload_dir", mode="before")
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


def load_settings(given: Mapping[str, Any]) -> Settings:
    """Settings from command-line values (None: not given) over MUG_* variables; a bad value
    is a UserError naming the setting."""
    return settings_from(Settings, given)
