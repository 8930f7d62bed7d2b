"""Benchmark the API on one machine, loopback only. Three measurements:

1. GET /v1/labels/{clip_id} (random clips of a 22,856-clip label set) with 32 concurrent
   keep-alive connections for 30 s against one server process, beside a trivial FastAPI
   endpoint (`GET /ping` -> {"ok": true}) served by uvicorn the same way, in the same run.
   Targets: at least 60% of the trivial endpoint's requests per second, p99 <= 30 ms.
2. Whole-set export of that label set in binary form (NPZ, and the HDF5 file), end to end:
   request, transfer and parse by the client. Target: <= 300 ms.
3. Upload of a 440 MB MOSI-format pickle of RANDOM data (bench_import.random_mosi_format;
   not CMU-MOSI) to a fresh server: wall seconds and the server's peak resident memory.

    python bench/bench_api.py /tmp/bench-api [--seconds 30] [--connections 32]

All data here is synthetic or random; the numbers measure the service, not a dataset.
The load generator is a minimal asyncio HTTP/1.1 client (no library overhead), running in
this process while the server runs in another: on a small machine they share the CPUs.
"""

import argparse
import asyncio
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from bench_import import FILE_NAME, random_mosi_format  # bench/ is on sys.path

from mugcore.data.io import save_dataset
from mugcore.data.schema import MMSADataset
from storage import LabelStore

MOSEI_SIZES = {"train": 16326, "valid": 1871, "test": 4659}  # 22,856 clips
TARGET_RATIO, TARGET_P99_MS, TARGET_EXPORT_MS = 0.60, 30.0, 300.0

TRIVIAL_APP = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/ping")
def ping() -> dict:
    return {"ok": True}
"""


def label_dataset(seed: int = 0) -> MMSADataset:
    """MOSEI's clip count with minimal features: the label paths never read features."""
    rng = np.random.default_rng(seed)
    splits, first = {}, 0
    for split, n in MOSEI_SIZES.items():
        splits[split] = {
            "id": np.array([f"bench{k // 8:05d}$_${k % 8}" for k in range(first, first + n)],
                           dtype=object),
            "raw_text": np.array(["synthetic benchmark clip"] * n, dtype=object),
            "text": np.zeros((n, 2, 8), np.float32),
            "text_bert": np.ones((n, 3, 2), np.float32),
            "audio": np.zeros((n, 2, 4), np.float32),
            "vision": np.zeros((n, 2, 4), np.float32),
            "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
        }
        first += n
    return MMSADataset(splits=splits, attrs={"label_bound": 3.0, "synthetic": True})


def build_store(directory: Path) -> list[str]:
    """A store holding the label dataset and one label set; returns its clip ids."""
    ds = label_dataset()
    with LabelStore.open(directory) as store:
        info = store.register_dataset("bench", ds, source_format="hdf5")
        ids = np.concatenate([ds.splits[s]["id"].astype(str) for s in MOSEI_SIZES])
        splits = np.repeat(list(MOSEI_SIZES), list(MOSEI_SIZES.values()))
        y = np.concatenate([ds.splits[s]["regression_labels"] for s in MOSEI_SIZES])
        rng = np.random.default_rng(1)
        labels = {"clip_id": ids, "split": splits, "multimodal": y,
                  **{m: np.clip(y + rng.normal(0, 0.3, len(y)), -3, 3).astype(np.float32)
                     for m in ("text", "audio", "vision")}}
        store.publish_label_set(info.id, labels, method="copy", options={}, seed=0)
    return ids.tolist()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], url: str, log: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(url, timeout=2)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _connection(port: int, paths: list[str], until: float, latencies: list[float],
                      errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            path = random.choice(paths)
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"{status} for {path}")
    finally:
        writer.close()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, paths: list[str], *, seconds: float, connections: int,
         pid: int | None = None) -> dict:
    """`connections` keep-alive connections, each sending its next request on the answer.
    With `pid`, also the server's CPU time per request: unlike throughput on a shared
    machine, that does not depend on what else runs."""
    cpu_before = _cpu_s(pid) if pid else 0.0
    latencies: list[float] = []
    errors: list[str] = []

    async def run() -> None:
        until = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(port, paths, until, latencies, errors)
                               for _ in range(connections)))

    started = time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    out = {"requests": len(ms), "errors": len(errors), "first_error": errors[:1],
           "rps": len(ms) / wall, "p50_ms": float(np.percentile(ms, 50)),
           "p99_ms": float(np.percentile(ms, 99))}
    if pid:
        out["server_cpu_us_per_request"] = (_cpu_s(pid) - cpu_before) / len(ms) * 1e6
    return out


def bench_lookup(directory: Path, clip_ids: list[str], args: argparse.Namespace) -> dict:
    results = {}
    trivial_dir = Path(tempfile.mkdtemp(dir=directory))
    (trivial_dir / "trivial_app.py").write_text(TRIVIAL_APP)
    port = free_port()
    trivial = start([sys.executable, "-m", "uvicorn", "trivial_app:app", "--port", str(port),
                     "--log-level", "warning", "--no-access-log", "--app-dir", str(trivial_dir)],
                    f"http://127.0.0.1:{port}/ping", directory / "trivial.log")
    try:
        load(port, ["/ping"], seconds=2, connections=args.connections)  # warm-up
        results["trivial"] = load(port, ["/ping"], seconds=args.seconds,
                                  connections=args.connections, pid=trivial.pid)
    finally:
        stop(trivial)
    port = free_port()
    api = start([sys.executable, "-m", "api.main", "--store", str(directory / "store"),
                 "--port", str(port), "--workers", "0", "--log-level", "warning"],
                f"http://127.0.0.1:{port}/healthz", directory / "api.log")
    try:
        paths = [f"/v1/labels/{cid}" for cid in clip_ids]
        load(port, paths, seconds=2, connections=args.connections)  # warm-up: caches filled
        results["labels"] = load(port, paths, seconds=args.seconds,
                                 connections=args.connections, pid=api.pid)
        results["export"] = bench_export(f"http://127.0.0.1:{port}", len(clip_ids))
    finally:
        stop(api)
    results["ratio"] = results["labels"]["rps"] / results["trivial"]["rps"]
    results["cpu_ratio"] = (results["trivial"]["server_cpu_us_per_request"]
                            / results["labels"]["server_cpu_us_per_request"])
    return results


def bench_export(url: str, n_clips: int, repeats: int = 20) -> dict:
    out = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for fmt in ("npz", "hdf5"):
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                response = client.get("/v1/datasets/1/labels", params={"format": fmt})
                response.raise_for_status()
                if fmt == "npz":
                    with np.load(io.BytesIO(response.content)) as npz:
                        assert len(npz["vision"]) == n_clips
                else:
                    import h5py

                    with h5py.File(io.BytesIO(response.content), "r") as f:
                        assert len(f["vision"]) == n_clips
                times.append((time.perf_counter() - started) * 1000)
            out[fmt] = {"median_ms": float(np.median(times)), "max_ms": float(np.max(times)),
                        "bytes": len(response.content)}
    return out


def bench_upload(directory: Path) -> dict:
    pkl = directory / FILE_NAME
    if not pkl.exists():
        print(f"generating {pkl} (random test data, not MOSI) ...", flush=True)
        save_dataset(random_mosi_format(), pkl)
    port = free_port()
    api = start([sys.executable, "-m", "api.main", "--store", str(directory / "upload-store"),
                 "--port", str(port), "--workers", "0", "--log-level", "warning"],
                f"http://127.0.0.1:{port}/healthz", directory / "upload.log")
    try:
        before = _peak_rss_mb(api.pid)
        started = time.perf_counter()
        with open(pkl, "rb") as f, httpx.Client(timeout=600) as client:
            r = client.post(f"http://127.0.0.1:{port}/v1/datasets",
                            params={"name": f"upload-{int(time.time())}"},
                            files={"file": (pkl.name, f)})
        wall = time.perf_counter() - started
        if r.status_code != 201:
            raise SystemExit(f"upload failed: {r.status_code} {r.text[:500]}")
        peak = _peak_rss_mb(api.pid)
    finally:
        stop(api)
    return {"file_mb": pkl.stat().st_size / 1e6, "wall_s": wall,
            "server_peak_rss_mb": peak, "server_rss_before_mb": before}


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="work directory (store, pickle, logs)")
    parser.add_argument("--seconds", type=float, default=30.0, help="load duration per target")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--skip-upload", action="store_true", help="skip the 440 MB upload")
    args = parser.parse_args()
    assert 0 < args.seconds <= 120 and 0 < args.connections <= 256
    args.directory.mkdir(parents=True, exist_ok=True)
    store_dir = args.directory / "store"
    if not (store_dir / "store.db").exists():
        print("building a 22,856-clip store (synthetic labels) ...", flush=True)
        clip_ids = build_store(store_dir)
    else:
        with LabelStore.open(store_dir) as store:
            clip_ids = store.read_labels(dataset="bench")["clip_id"].tolist()
    results = bench_lookup(args.directory, clip_ids, args)
    if not args.skip_upload:
        results["upload"] = bench_upload(args.directory)
    print(json.dumps(results, indent=2))
    lab, triv = results["labels"], results["trivial"]
    export_ms = results["export"]["npz"]["median_ms"]
    print(f"labels: {lab['rps']:.0f} req/s (p50 {lab['p50_ms']:.1f} ms, p99 {lab['p99_ms']:.1f} "
          f"ms) vs trivial {triv['rps']:.0f} req/s (p50 {triv['p50_ms']:.1f} ms, p99 "
          f"{triv['p99_ms']:.1f} ms): {results['ratio']:.0%} (target >= {TARGET_RATIO:.0%}, "
          f"p99 <= {TARGET_P99_MS:g} ms)")
    print(f"server CPU per request: labels {lab['server_cpu_us_per_request']:.0f} us, trivial "
          f"{triv['server_cpu_us_per_request']:.0f} us (CPU-bound throughput ratio "
          f"{results['cpu_ratio']:.0%})")
    print(f"export NPZ median {export_ms:.0f} ms, HDF5 median "
          f"{results['export']['hdf5']['median_ms']:.0f} ms (target <= {TARGET_EXPORT_MS:g} ms)")
    if "upload" in results:
        up = results["upload"]
        print(f"upload {up['file_mb']:.0f} MB: {up['wall_s']:.1f} s, server peak RSS "
              f"{up['server_peak_rss_mb']:.0f} MB")
    ok = (results["ratio"] >= TARGET_RATIO and lab["p99_ms"] <= TARGET_P99_MS
          and export_ms <= TARGET_EXPORT_MS and lab["errors"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
