"""Benchmark the label explorer's pages on a 22,856-clip label set (MOSEI's clip count).

A store gets one RANDOM dataset (storage.testing.random_dataset: tiny features, random labels,
raw texts of random words) and two label sets: seeded random uni-labels with MADE-UP per-clip
uncertainty, and `copy`. A mug-api process serves it on loopback; each page is requested
`--requests` times after one warm-up request, and the server time comes from the
`Server-Timing` header the explorer sets (handler start to rendered HTML), beside the client's
wall time for the same request. Target: the label set page with the first page of its clip
table under 300 ms server time.

    python bench/bench_explorer.py /tmp/bench-explorer [--requests 40]

The data is synthetic and random: the numbers measure the pages, not a dataset.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from mugcore.data.schema import MODALITIES, SPLITS
from storage import LabelStore
from storage.testing import clip_table, random_dataset, seeded_labels, seeded_uncertainty

SIZES = (16326, 1871, 4659)  # 22,856 clips
TARGET_MS = 300.0
WORDS = ("happy", "sad", "calm", "angry", "bored", "glad", "tired", "proud", "fine", "upset")


def build_store(directory: Path) -> tuple[int, int]:
    ds = random_dataset(SIZES, seed=0, prefix="bench")
    rng = np.random.default_rng(0)
    for split in SPLITS:
        n = ds.size(split)
        ds.splits[split]["raw_text"] = np.array([" ".join(rng.choice(WORDS, 8)) for _ in range(n)])
    clips = clip_table(ds)
    labels = seeded_labels(clips, seed=1)
    labels |= seeded_uncertainty(labels, seed=2)
    with LabelStore.open(directory) as store:
        info = store.register_dataset("bench-explorer", ds, source_format="hdf5")
        mug = store.publish_label_set(
            info.id, labels, method="mug", options={}, seed=1,
            provenance={"uncertainty": {"method": "made-up", "level": 0.9}})
        copy = store.publish_label_set(
            info.id, {**clips, **{m: clips["multimodal"] for m in MODALITIES}}, method="copy",
            options={}, seed=0)
    return mug.id, copy.id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(store: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "MUG_READ_TOKEN": "", "MUG_WRITE_TOKEN": ""}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api.main", "--store", str(store),
                                 "--port", str(port), "--workers", "0", "--log-level",
                                 "warning"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"server did not start; see {log}")


def measure(client: httpx.Client, path: str, requests: int) -> dict[str, float]:
    def one() -> tuple[float, float]:
        started = time.perf_counter()
        r = client.get(path)
        wall = (time.perf_counter() - started) * 1000
        r.raise_for_status()
        server = float(r.headers["server-timing"].split("dur=")[1])
        return server, wall

    first_server, first_wall = one()  # warm-up: reads raw texts and the label file once
    server, wall = np.array([one() for _ in range(requests)]).T
    return {"first_server_ms": round(first_server, 1), "first_wall_ms": round(first_wall, 1),
            "server_median_ms": round(float(np.median(server)), 1),
            "server_p90_ms": round(float(np.percentile(server, 90)), 1),
            "wall_median_ms": round(float(np.median(wall)), 1),
            "wall_p90_ms": round(float(np.percentile(wall, 90)), 1)}


def load() -> str:
    """The 1, 5 and 15 minute load averages (this machine is shared: timings are noisy)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workdir", type=Path, help="scratch directory (wiped first)")
    p.add_argument("--requests", type=int, default=40, help="timed requests per page")
    args = p.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    mug, copy = build_store(args.workdir / "store")
    proc, url = serve(args.workdir / "store", args.workdir / "server.log")
    pages = {
        "label set, first page (sort: largest move)": f"/ui/label-sets/{mug}",
        "label set, sort by audio std, ascending": f"/ui/label-sets/{mug}?sort=std_audio"
                                                   "&order=asc",
        "label set, split=test, text search 'happy calm'": f"/ui/label-sets/{mug}?split=test"
                                                           "&q=happy+calm",
        "label set, page 200 of 458": f"/ui/label-sets/{mug}?page=200",
        "compare mug vs copy, first page": f"/ui/compare?a={mug}&b={copy}",
        "datasets": "/ui/",
    }
    results: dict[str, object] = {"clips": sum(SIZES), "requests": args.requests,
                                  "load_before": load()}
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for name, path in pages.items():
                results[name] = measure(client, path, args.requests)
                print(f"{name:>48}: {results[name]}", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    results["load_after"] = load()
    first = results["label set, first page (sort: largest move)"]
    assert isinstance(first, dict)
    results["target_met"] = first["server_p90_ms"] < TARGET_MS
    print(json.dumps(results, indent=1))
    (args.workdir / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
