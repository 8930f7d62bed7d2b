"""Benchmark of the label store on a MOSEI-size dataset (22,856 clips), on SQLite and PostgreSQL.

Measures, per backend: per-clip look-up latency in process (p50, p99, warm cache), bulk read of
one label set (its HDF5 file not yet read by the process; also a new process's first call,
which pays for connecting, and a cached read), and a soak of
N reader processes plus 1 publisher: readers look up random clips and bulk-read the newest
label set, checking every value against the seed the label set was made from (so a partial or
mixed read is caught), while the publisher keeps publishing new label sets and deleting its
older ones. Prints a table and writes the numbers as JSON (--json-out).

THE DATA IS RANDOM AND SYNTHETIC (features are tiny random arrays): the bench is about labels.

    python bench/bench_store.py                      # both backends, 60 s soak each
    python bench/bench_store.py --seconds 5 --backends sqlite
"""

import argparse
import json
import multiprocessing
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from storage import LabelStore, NotFound
from storage.testing import clip_table, random_dataset, seeded_labels, seeded_unilabels

REPO = Path(__file__).resolve().parents[1]
MOSEI_SIZES = (16326, 1871, 4659)  # train / valid / test clips of CMU-MOSEI (22,856)


def scaled_sizes(clips: int) -> tuple[int, int, int]:
    total = sum(MOSEI_SIZES)
    train, valid = (round(clips * n / total) for n in MOSEI_SIZES[:2])
    return train, valid, clips - train - valid


def percentile_ms(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1000, q))


class Expected:
    """What a label set of a given seed must hold; arrays cached per seed."""

    def __init__(self, clips: dict[str, np.ndarray]) -> None:
        self.clips = clips
        self.position = {c: i for i, c in enumerate(clips["clip_id"].tolist())}
        self._by_seed: dict[int, dict[str, np.ndarray]] = {}

    def values(self, seed: int) -> dict[str, np.ndarray]:
        if seed not in self._by_seed:
            self._by_seed[seed] = seeded_unilabels(len(self.clips["clip_id"]), seed)
        return self._by_seed[seed]

    def bulk_ok(self, arrays: dict[str, np.ndarray], seed: int) -> bool:
        want = self.values(seed)
        return (np.array_equal(arrays["clip_id"], self.clips["clip_id"])
                and np.array_equal(arrays["multimodal"], self.clips["multimodal"])
                and all(np.array_equal(arrays[m], want[m]) for m in want))

    def clip_ok(self, got: Any, seed: int) -> bool:
        i = self.position[got.clip_id]
        want = self.values(seed)
        # The store gives a float32 label as the shortest decimal of that float32.
        return all(np.float32(getattr(got, m)) == want[m][i] for m in want)


def build_store(location: str, files: str | None, clips_n: int, label_sets: int
                ) -> tuple[dict[str, np.ndarray], dict[int, int], dict[str, float]]:
    ds = random_dataset(scaled_sizes(clips_n), seed=0, prefix="mosei")
    clips = clip_table(ds)
    timings = {}
    with LabelStore.open(location, files=files) as store:
        start = time.perf_counter()
        store.register_dataset("mosei", ds, source_format="synthetic")
        timings["register_s"] = time.perf_counter() - start
        seeds = {}
        start = time.perf_counter()
        for seed in range(label_sets):
            info = store.publish_label_set("mosei", seeded_labels(clips, seed), method="copy",
                                           options={"bench": True}, seed=seed)
            seeds[info.id] = seed
        timings["publish_s_each"] = (time.perf_counter() - start) / label_sets
    return clips, seeds, timings


def measure_reads(location: str, files: str | None, clips: dict[str, np.ndarray],
                  seeds: dict[int, int], lookups: int) -> dict[str, float]:
    expected = Expected(clips)
    rng = random.Random(0)
    ids = clips["clip_id"].tolist()
    out: dict[str, float] = {}
    with LabelStore.open(location, files=files) as store:
        latest = max(seeds)
        store.lookup(ids[0])  # warm the label-set cache, as a long-running server would be
        times = []
        for _ in range(lookups):
            clip = rng.choice(ids)
            start = time.perf_counter()
            got = store.lookup(clip)
            times.append(time.perf_counter() - start)
            assert expected.clip_ok(got, seeds[latest]), clip
        out["lookup_p50_ms"] = percentile_ms(times, 50)
        out["lookup_p99_ms"] = percentile_ms(times, 99)
        times = []
        for _ in range(lookups // 4):
            clip = rng.choice(ids)
            start = time.perf_counter()
            got = store.lookup(clip, dataset="mosei", label_set=latest)
            times.append(time.perf_counter() - start)
        out["lookup_by_id_p50_ms"] = percentile_ms(times, 50)
        out["lookup_by_id_p99_ms"] = percentile_ms(times, 99)
    # Bulk reads in a running process: its engine is warm, the label set's file is not read
    # yet (first read of each set), then read again (served from the in-process cache).
    bulk, bulk_split, cached, fresh = [], [], [], []
    for _ in range(3):
        with LabelStore.open(location, files=files) as store:
            first, *others = seeds
            store.read_labels(first)
            for label_set in others:
                start = time.perf_counter()
                arrays = store.read_labels(label_set)
                bulk.append(time.perf_counter() - start)
                assert expected.bulk_ok(arrays, seeds[label_set])
                start = time.perf_counter()
                store.read_labels(label_set)
                cached.append(time.perf_counter() - start)
        with LabelStore.open(location, files=files) as store:
            store.read_labels(first)
            start = time.perf_counter()
            store.read_labels(others[0], split="train")
            bulk_split.append(time.perf_counter() - start)
        with LabelStore.open(location, files=files) as store:  # first call of a new process
            start = time.perf_counter()
            store.read_labels(first)
            fresh.append(time.perf_counter() - start)
    out["bulk_read_p50_ms"] = percentile_ms(bulk, 50)
    out["bulk_read_max_ms"] = max(bulk) * 1000
    out["bulk_read_cached_p50_ms"] = percentile_ms(cached, 50)
    out["bulk_read_train_p50_ms"] = percentile_ms(bulk_split, 50)
    out["bulk_read_first_call_p50_ms"] = percentile_ms(fresh, 50)
    return out


def reader(location: str, files: str | None, clips: dict[str, np.ndarray], seeds: dict[int, int],
           deadline: float, index: int, results: Any) -> None:
    expected = Expected(clips)
    ids = clips["clip_id"].tolist()
    rng = random.Random(index)
    counts = {"lookups": 0, "bulk_reads": 0, "errors": 0, "partial_reads": 0, "vanished": 0}
    messages: list[str] = []
    with LabelStore.open(location, files=files) as store:
        while time.time() < deadline:
            try:
                if rng.random() < 0.9:
                    got = store.lookup(rng.choice(ids))
                    seed = seeds.get(got.label_set) or store.get_label_set(got.label_set).seed
                    ok = expected.clip_ok(got, seed)
                    counts["lookups"] += 1
                else:
                    info = store.get_label_set(dataset="mosei")
                    arrays = store.read_labels(info.id)
                    ok = expected.bulk_ok(arrays, info.seed)
                    counts["bulk_reads"] += 1
                if not ok:
                    counts["partial_reads"] += 1
            except NotFound as exc:  # the newest set deleted between two steps: not an error
                counts["vanished"] += 1
                messages.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - counted and reported, the point of a soak
                counts["errors"] += 1
                messages.append(f"{type(exc).__name__}: {exc}")
    results.put({"reader": index, **counts, "messages": messages[:5]})


def publisher(location: str, files: str | None, clips: dict[str, np.ndarray], deadline: float,
              results: Any) -> None:
    counts = {"published": 0, "deleted": 0, "errors": 0}
    messages: list[str] = []
    mine: list[int] = []
    seed = 1000
    with LabelStore.open(location, files=files) as store:
        while time.time() < deadline:
            try:
                info = store.publish_label_set("mosei", seeded_labels(clips, seed),
                                               method="copy", options={"soak": True}, seed=seed)
                mine.append(info.id)
                counts["published"] += 1
                if len(mine) > 3:  # keep the store small; readers may race these deletions
                    store.delete_label_set(mine.pop(0))
                    counts["deleted"] += 1
            except Exception as exc:  # noqa: BLE001
                counts["errors"] += 1
                messages.append(f"{type(exc).__name__}: {exc}")
            seed += 1
    results.put({"publisher": True, **counts, "messages": messages[:5]})


def soak(location: str, files: str | None, clips: dict[str, np.ndarray], seeds: dict[int, int],
         readers: int, seconds: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    deadline = time.time() + 2 + seconds  # processes start, then all run for `seconds`
    procs = [ctx.Process(target=reader, args=(location, files, clips, seeds, deadline, i, results))
             for i in range(readers)]
    procs.append(ctx.Process(target=publisher, args=(location, files, clips, deadline, results)))
    for p in procs:
        p.start()
    collected = [results.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    reads = [r for r in collected if "reader" in r]
    pub = next(r for r in collected if "publisher" in r)
    total = {k: sum(r[k] for r in reads)
             for k in ("lookups", "bulk_reads", "errors", "partial_reads", "vanished")}
    return {"seconds": seconds, "readers": readers, **total,
            "publisher_published": pub["published"], "publisher_deleted": pub["deleted"],
            "publisher_errors": pub["errors"],
            "messages": [m for r in collected for m in r["messages"]][:10]}


def start_postgres(workdir: Path) -> tuple[str, Path]:
    cluster = Path(tempfile.mkdtemp(prefix="mug-bench-pg-"))
    url = subprocess.run([str(REPO / "scripts" / "pg_cluster.sh"), "start", str(cluster)],
                         check=True, capture_output=True, text=True).stdout.strip()
    return url, cluster


def fresh_database(server_url: str, name: str) -> str:
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def run_backend(backend: str, args: argparse.Namespace, workdir: Path, pg_url: str | None
                ) -> dict[str, Any]:
    if backend == "sqlite":
        location, files = str(workdir / "sqlite-store"), None
    else:
        assert pg_url is not None
        location, files = fresh_database(pg_url, "bench_store"), str(workdir / "pg-files")
    print(f"[{backend}] building a store with {args.clips} clips and {args.label_sets} label "
          "sets ...", file=sys.stderr)
    clips, seeds, build = build_store(location, files, args.clips, args.label_sets)
    print(f"[{backend}] measuring look-ups and bulk reads ...", file=sys.stderr)
    reads = measure_reads(location, files, clips, seeds, args.lookups)
    print(f"[{backend}] soak: {args.readers} readers + 1 publisher for {args.seconds:g} s ...",
          file=sys.stderr)
    return {"backend": backend, "clips": args.clips, **build, **reads,
            "soak": soak(location, files, clips, seeds, args.readers, args.seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=sum(MOSEI_SIZES),
                        help="clips in the dataset (default: 22856, CMU-MOSEI's count)")
    parser.add_argument("--label-sets", type=int, default=5, help="label sets in the store")
    parser.add_argument("--lookups", type=int, default=4000, help="timed per-clip look-ups")
    parser.add_argument("--readers", type=int, default=4, help="reader processes in the soak")
    parser.add_argument("--seconds", type=float, default=60.0, help="soak duration per backend")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--pg-url", help="PostgreSQL server URL to use (a database named "
                        "bench_store is created on it); default: start a throwaway cluster")
    parser.add_argument("--workdir", type=Path, help="directory for the stores (default: temp)")
    parser.add_argument("--json-out", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"--backends: unknown {', '.join(sorted(unknown))}")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mug-bench-store-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = None
    pg_url = args.pg_url
    if "postgresql" in backends and pg_url is None:
        pg_url, cluster = start_postgres(workdir)
    try:
        results = [run_backend(b, args, workdir, pg_url) for b in backends]
    finally:
        if cluster is not None:
            subprocess.run([str(REPO / "scripts" / "pg_cluster.sh"), "stop", str(cluster)],
                           check=False)
    for r in results:
        s = r["soak"]
        print(f"{r['backend']:>10}: lookup p50 {r['lookup_p50_ms']:.3f} ms, p99 "
              f"{r['lookup_p99_ms']:.3f} ms; bulk read {r['bulk_read_p50_ms']:.1f} ms (max "
              f"{r['bulk_read_max_ms']:.1f}, first call {r['bulk_read_first_call_p50_ms']:.1f}, "
              f"cached {r['bulk_read_cached_p50_ms']:.2f}); soak {s['seconds']:g} s: "
              f"{s['lookups']} look-ups + {s['bulk_reads']} bulk reads, {s['errors']} errors, "
              f"{s['partial_reads']} partial reads, {s['vanished']} vanished; publisher "
              f"{s['publisher_published']} published, {s['publisher_errors']} errors")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    failed = any(r["soak"]["errors"] or r["soak"]["partial_reads"] or r["soak"]["publisher_errors"]
                 for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
