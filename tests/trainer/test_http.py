"""`trainer run` against a live API server (a real uvicorn process on loopback)."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from mugcore.data.schema import MODALITIES, MMSADataset
from tests.trainer.conftest import DATASET, TINY
from trainer.cli import main
from trainer.label_source import HttpSource, LocalStoreSource

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api_url(store_dir: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "MUG_READ_TOKEN": "", "MUG_WRITE_TOKEN": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "api.main", "--store", str(store_dir),
                             "--port", str(port), "--workers", "0", "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"API server exited: {proc.stdout.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("API server did not come up within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_http_labels_equal_local_store_labels(api_url: str, store_dir: Path,
                                              tiny_mosi: MMSADataset) -> None:
    remote = HttpSource(api_url, DATASET).load_labels("latest", tiny_mosi)
    local = LocalStoreSource(str(store_dir), DATASET).load_labels("latest", tiny_mosi)
    assert remote.info["method"] == local.info["method"] == "copy"
    assert remote.info["id"] == local.info["id"]
    assert np.array_equal(remote.clip_id, local.clip_id)
    for m in MODALITIES:
        assert np.array_equal(remote.per_modality[m], local.per_modality[m])


def test_run_against_the_api(api_url: str, tiny_mosi_h5: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", "--store", api_url, "--dataset", DATASET, "--data", str(tiny_mosi_h5),
                 "--cache-dir", str(tmp_path / "cache"), *TINY, "--set", "epochs=1",
                 "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["label_set"]["method"] == "copy"
    assert m["dataset"]["name"] == DATASET
    assert np.isfinite(list(m["test"]["mean"].values())).all()


def test_unknown_dataset_over_http_is_one_line(api_url: str, tmp_path: Path, capsys) -> None:
    assert main(["run", "--store", api_url, "--dataset", "nope", *TINY,
                 "--out", str(tmp_path / "out")]) == 2
    assert "--dataset nope: no dataset of that name" in capsys.readouterr().err

