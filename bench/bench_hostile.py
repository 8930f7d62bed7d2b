"""100 hostile uploads in a row against one `mug-api`: does the server keep answering?

A mix of every hostile and malformed file the security tests use (tests/security/hostile.py:
reads outside the file, fill-value and pickle bombs; tests/security/malformed.py: files whose
reading raised inside h5py, strings past the budget, unbounded ids and attributes), each
uploaded in turn, 100 in all, while another thread GETs /healthz every 50 ms. Reports the
/healthz latency (p50, p99, max; target p99 <= 100 ms), what the uploads were answered with
(every one a 4xx), the server's peak RSS growth over the run and the RSS it keeps after, and
the machine's load.

    python bench/bench_hostile.py [--uploads 100] [--out DIR]

All data is synthetic (mugcore.data.synth), made hostile on purpose.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mugcore.data.io import save_dataset  # noqa: E402
from mugcore.data.synth import make_synthetic  # noqa: E402
from tests.api.conftest import WRITE, start_server  # noqa: E402
from tests.security.hostile import HDF5_VARIANTS, pickle_bombs  # noqa: E402
from tests.security.malformed import (  # noqa: E402
    HDF5_CASES,
    PICKLE_CASES,
    hdf5_case,
    pickle_case,
)

PROBE_EVERY_S = 0.05
TARGET_P99_MS = 100.0


def hostile_files(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    ds = make_synthetic("mosi", n_train=8, n_valid=4, n_test=4, seed=0)
    valid = directory / "valid.h5"
    save_dataset(ds, valid)
    files = [hdf5_case(name, valid, directory / f"m-{name}.h5") for name in HDF5_CASES]
    for name in PICKLE_CASES:
        path = directory / f"m-{name}.pkl"
        path.write_bytes(pickle_case(name, ds))
        files.append(path)
    for name, build in HDF5_VARIANTS.items():
        sub = directory / f"h-{name}"
        sub.mkdir()
        files.append(build(valid, sub / "hostile.h5"))
    for name, payload in pickle_bombs().items():
        path = directory / f"b-{name}.pkl"
        path.write_bytes(payload)
        files.append(path)
    return files


def memory(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            fields[line.split(":")[0]] = int(line.split()[1]) * 1024
    return fields


class Prober(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as c:
            while not self.stop.wait(PROBE_EVERY_S):
                start = time.perf_counter()
                try:
                    ok = c.get(f"{self.url}/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies.append(time.perf_counter() - start)
                self.failures += not ok


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--uploads", type=int, default=100)
    p.add_argument("--out", type=Path, help="working directory (default: a temporary one)")
    args = p.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    files = hostile_files(work / "files")
    server = start_server(work / "server", workers=0,
                          env={"MUG_MAX_UPLOAD_BYTES": str(64 << 20)})
    try:
        with httpx.Client(base_url=server.url, headers=WRITE, timeout=120) as c:
            valid = work / "files" / "valid.h5"
            with open(valid, "rb") as f:  # warm: what a normal upload costs is not counted
                assert c.post("/v1/datasets", params={"name": "warm"},
                              files={"file": ("valid.h5", f)}).status_code == 201
            before = memory(server.process.pid)
            prober = Prober(server.url)
            prober.start()
            statuses: Counter[int] = Counter()
            upload_s = []
            start = time.perf_counter()
            for i in range(args.uploads):
                path = files[i % len(files)]
                t = time.perf_counter()
                with open(path, "rb") as f:
                    r = c.post("/v1/datasets", params={"name": f"hostile-{i}"},
                               files={"file": (path.name, f)})
                upload_s.append(time.perf_counter() - t)
                statuses[r.status_code] += 1
            wall = time.perf_counter() - start
            time.sleep(0.5)
            prober.stop.set()
            prober.join()
            after = memory(server.process.pid)
        load = os.getloadavg()
    finally:
        server.stop()
    lat_ms = [x * 1000 for x in prober.latencies]
    p99 = percentile(lat_ms, 0.99)
    print(f"{args.uploads} hostile uploads ({len(files)} kinds) in {wall:.1f} s; answers: "
          + ", ".join(f"{code} x{n}" for code, n in sorted(statuses.items())))
    print(f"upload latency: median {statistics.median(upload_s) * 1000:.0f} ms, p99 "
          f"{percentile(upload_s, 0.99) * 1000:.0f} ms")
    print(f"/healthz every {PROBE_EVERY_S * 1000:.0f} ms: {len(lat_ms)} probes, "
          f"{prober.failures} failed; p50 {percentile(lat_ms, 0.5):.1f} ms, p99 {p99:.1f} ms, "
          f"max {max(lat_ms):.1f} ms (target p99 <= {TARGET_P99_MS:.0f} ms)")
    print(f"server memory: peak RSS {before['VmHWM'] >> 20} -> {after['VmHWM'] >> 20} MiB "
          f"(growth {(after['VmHWM'] - before['VmHWM']) >> 20} MiB), RSS {before['VmRSS'] >> 20}"
          f" -> {after['VmRSS'] >> 20} MiB")
    print(f"machine load (1, 5, 15 min) at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{os.cpu_count()} CPUs")
    bad = sum(n for code, n in statuses.items() if not 400 <= code < 500)
    return 1 if bad or prober.failures or p99 > TARGET_P99_MS else 0


if __name__ == "__main__":
    sys.exit(main())
