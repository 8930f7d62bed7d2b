"""A short run of bench/bench_store.py per backend: concurrent readers and a publisher (which
also deletes its older label sets) with zero errors and zero partial reads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_short_soak(backend, request, tmp_path):
    extra = ["--pg-url", request.getfixturevalue("pg_server_url")] if backend == "postgresql" \
        else []
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_store.py"), "--clips", "1500",
         "--label-sets", "2", "--lookups", "200", "--readers", "2", "--seconds", "3",
         "--backends", backend, "--workdir", str(tmp_path / "work"), "--json-out", str(out),
         *extra],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [result] = json.loads(out.read_text())
    soak = result["soak"]
    assert soak["errors"] == 0 and soak["partial_reads"] == 0, soak["messages"]
    assert soak["lookups"] > 0 and soak["bulk_reads"] > 0
    assert soak["publisher_published"] > 0 and soak["publisher_errors"] == 0
    assert result["lookup_p50_ms"] > 0 and result["bulk_read_p50_ms"] > 0
