"""The whole MUG flow end to end on this machine (what `make demo` runs).

1. write a small SYNTHETIC MOSI-like dataset (known per-modality truth) to runs/demo/, from a
   world where audio and vision depart far from the multimodal label (bench/worlds.py's
   `divergent`), so that the data support correcting their labels;
2. start the API (`python -m api.main`) with one embedded worker on an embedded store;
3. POST the dataset with generate=true (uni-label generation with `mug`, fast preset);
4. follow the job with a progress bar;
5. GET a few clips' uni-labels;
6. run `trainer run` against the API (stage 3, fast preset);
7. print what mug decided per modality (in plain words, one line each), the uni-label
   quality against the synthetic ground truth beside `copy` (the multimodal label as every
   uni-label; lower MAE is better), the test metrics and the label explorer's URL for the
   new label set (at a terminal: wait for Enter);
8. stop the server.

Sized to finish within minutes on 2 CPU cores. The numbers describe synthetic data only.
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
from tqdm import tqdm

from labelgen.trust.report import decision_lines, quality_lines
from mugcore.data.io import save_dataset
from mugcore.data.synth import World, make_synthetic

REPO = Path(__file__).resolve().parents[1]
TERMINAL = ("succeeded", "failed", "cancelled")
# bench/worlds.py's `divergent`: equal shares of y_M, modalities far apart
DEMO_WORLD = World(weights=(0.34, 0.33, 0.33), deviation_sd=(0.35, 0.55, 0.55))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(store: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(log, "wb") as f:
        # The console script a user would run, from the environment running this demo.
        mug_api = str(Path(sys.executable).with_name("mug-api"))
        proc = subprocess.Popen([mug_api, "--store", str(store),
                                 "--port", str(port), "--workers", "1"],
                                cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the API server exited; see {log}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"demo: the API server did not answer within 120 s; see {log}")


def follow_job(client: httpx.Client, job_id: int) -> dict:
    """Poll the job until it ends, showing its stage, progress and ETA."""
    bar = tqdm(total=100, desc="label generation", unit="%", bar_format=(
        "{desc}: {percentage:3.0f}%|{bar}| {elapsed} elapsed{postfix}"))
    try:
        while True:
            job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
            bar.n = round(100 * job["progress"])
            eta = f", eta {job['eta_s']:.0f}s" if job.get("eta_s") is not None else ""
            bar.set_postfix_str(f"{job['status']}: {job['stage'] or '-'}{eta}")
            bar.refresh()
            if job["status"] in TERMINAL:
                return job
            time.sleep(1.0)
    finally:
        bar.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=REPO / "runs" / "demo",
                   help="where the dataset, store and run go (wiped first)")
    p.add_argument("--clips", type=int, nargs=3, default=(480, 120, 120),
                   metavar=("TRAIN", "VALID", "TEST"), help="synthetic split sizes")
    p.add_argument("--method", default="mug", help="label generator of the job")
    p.add_argument("--seeds", default="1", help="trainer seeds, e.g. 1,2,3")
    args = p.parse_args()
    started = time.monotonic()

    work: Path = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "synthetic_mosi.h5"
    n_train, n_valid, n_test = args.clips
    print(f"[1/8] writing a SYNTHETIC MOSI-like dataset ({n_train}/{n_valid}/{n_test} clips) "
          f"to {data}")
    save_dataset(make_synthetic("mosi", n_train=n_train, n_valid=n_valid, n_test=n_test,
                                seed=0, world=DEMO_WORLD), data)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    print(f"[2/8] starting the API on {url} (store {work / 'store'}, log {work / 'api.log'})")
    server = start_api(work / "store", port, work / "api.log")
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            print(f"[3/8] POST /v1/datasets?generate=true&method={args.method}&preset=fast")
            with open(data, "rb") as f:
                created = client.post("/v1/datasets", params={
                    "name": "demo-mosi", "generate": "true", "method": args.method,
                    "preset": "fast"}, files={"file": (data.name, f)}).raise_for_status().json()
            print(f"      dataset {created['id']} ({created['n_clips']} clips), "
                  f"job {created['job_id']}")

            print("[4/8] following the job")
            job = follow_job(client, created["job_id"])
            if job["status"] != "succeeded":
                print(f"demo: job {job['id']} {job['status']}: {job.get('error')}",
                      file=sys.stderr)
                return 1
            label_set = client.get(f"/v1/label-sets/{job['label_set_id']}").json()
            print(f"      label set {label_set['id']} ({label_set['method']})")
            for line in decision_lines(label_set["provenance"]):
                print(f"      {line}")

            print("[5/8] GET a few uni-labels")
            page = client.get(f"/v1/datasets/{created['id']}/labels",
                              params={"limit": 3}).raise_for_status().json()
            for row in page["items"]:
                clip = client.get(f"/v1/labels/{row['clip_id']}").raise_for_status().json()
                print(f"      {clip['clip_id']:>24} ({clip['split']}): multimodal "
                      f"{clip['multimodal']:+.2f}  text {clip['text']:+.2f}  "
                      f"audio {clip['audio']:+.2f}  vision {clip['vision']:+.2f}")

        run_dir, trainer_log = work / "run", work / "trainer.log"
        print(f"[6/8] trainer run against the API (log {trainer_log})")
        # --data: the API serves labels; the features come from the local copy of the file.
        # Its output goes to a log: the demo prints the metrics once, below, with their key.
        with open(trainer_log, "wb") as log:
            trained = subprocess.run(
                [sys.executable, "-m", "trainer.cli", "run", "--store", url, "--dataset",
                 "demo-mosi", "--label-set", str(label_set["id"]), "--data", str(data),
                 "--config", "fast", "--seeds", args.seeds, "--threads", "1", "--no-progress",
                 "--out", str(run_dir)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        if trained.returncode != 0:
            tail = trainer_log.read_text(errors="replace").splitlines()[-5:]
            print("demo: trainer run failed:\n" + "\n".join(tail), file=sys.stderr)
            return 1
        print_results(json.loads((run_dir / "metrics.json").read_text()))
        print(f"      label explorer: {url}/ui/label-sets/{label_set['id']}")
        if sys.stdin is not None and sys.stdin.isatty():  # a person; CI and pipes do not wait
            waited = time.monotonic()
            input("      press Enter to stop the server ")
            started += time.monotonic() - waited  # time spent reading is not the demo's work
    finally:
        print("[8/8] stopping the API server")
        server.terminate()
        server.wait(timeout=60)

    print(f"done in {time.monotonic() - started:.0f} s of work; report: {run_dir / 'report.md'}")
    return 0


# Short names of the trainer's test metrics, in the order printed, and what they mean.
METRIC_NAMES = {"MAE": "MAE", "Corr": "r", "Has0_acc_2": "Acc2", "Has0_F1_score": "F1",
                "Non0_acc_2": "Acc2*", "Non0_F1_score": "F1*", "Mult_acc_2": "Acc2",
                "Mult_acc_3": "Acc3", "Mult_acc_5": "Acc5", "Mult_acc_7": "Acc7",
                "F1_score": "F1"}
METRIC_KEY = ("key: MAE, r: error and Pearson r; Acc2, F1: sign right (*: zeros left out); "
              "AccK: K classes")


def print_results(result: dict) -> None:
    seeds = len(result["per_seed"])
    print(f"[7/8] stage-3 model on the test split (SYNTHETIC data; {seeds} seed(s)"
          f"{', mean ± sd' if seeds > 1 else ''}):")
    mean, std = result["test"]["mean"], result["test"]["std"]
    order = [n for n in METRIC_NAMES if n in mean] + [n for n in mean if n not in METRIC_NAMES]
    figures = [f"{METRIC_NAMES.get(name, name)} {mean[name]:.3f}"
               + (f"±{std[name]:.3f}" if seeds > 1 else "") for name in order]
    half = (len(figures) + 1) // 2 if seeds > 1 else len(figures)  # ± needs two lines
    for start in range(0, len(figures), half):
        print("      " + "  ".join(figures[start:start + half]))
    print(f"      {METRIC_KEY}")
    for line in quality_lines(result.get("unilabel_quality") or {}):
        print(f"      {line}")


if __name__ == "__main__":
    sys.exit(main())
