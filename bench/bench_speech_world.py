"""Benchmark of the real-speech audio world (bench/speech_world.py); THE DATA IS SYNTHETIC.

A MOSI-shaped synthetic dataset (make_synthetic("mosi"), 1,284 / 229 / 686 clips by default)
gets its audio replaced by eGeMAPS descriptors of espeak-ng speech. Reported:

- cost: seconds per clip of the cold run (synthesis + extraction, in 2 processes, into an empty
  cache), the same split into espeak-ng and openSMILE for a sample of clips in this process
  (wall and CPU seconds), and seconds per clip of a second run that only reads the cache;
- learnability of the audio sentiment s_A on the test split: a ridge regression (fit on train,
  alpha by cross-validation) on per-clip summaries (mean, std and slope over the real frames of
  each channel) against copying y_M, MAE and Pearson r; the same ridge on the generator's own
  formula-made audio for comparison.

    python bench/bench_speech_world.py --seed 1 --out bench/out/speech_world_s1.json
    python bench/bench_speech_world.py --seed 1 --save runs/speech_mosi_s1.h5   # for labelgen

The prosody mapping was tuned with --seed 100 (dataset and speech seed); report other seeds.
Needs espeak-ng and opensmile (see bench/speech_world.py). Prints `uptime` with the numbers,
since this machine is shared.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.speech_world import Prosody, extract, plan_utterances, speak, speechify_audio  # noqa: E402
from mugcore.data.io import save_dataset  # noqa: E402
from mugcore.data.schema import TRUTH_KEYS, MMSADataset  # noqa: E402
from mugcore.data.synth import make_synthetic  # noqa: E402


def summaries(audio: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(N, 3 D): mean, std and least-squares slope over normalised time of each channel,
    over each clip's real frames only."""
    rows = []
    for x, n in zip(audio, lengths, strict=True):
        x = x[:n].astype(np.float64)
        tau = np.linspace(-0.5, 0.5, n)[:, None]
        slope = (tau * (x - x.mean(0))).sum(0) / max((tau**2).sum(), 1e-12)
        rows.append(np.concatenate([x.mean(0), x.std(0), slope]))
    return np.asarray(rows)


def learnability(ds: MMSADataset) -> dict[str, dict[str, float]]:
    """Ridge on audio summaries vs copying y_M, as predictors of s_A on the test split."""
    tr, te = ds.splits["train"], ds.splits["test"]
    truth = np.asarray(te[TRUTH_KEYS["audio"]], np.float64)
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 25)))
    model.fit(summaries(tr["audio"], tr["audio_lengths"]), tr[TRUTH_KEYS["audio"]])
    pred = model.predict(summaries(te["audio"], te["audio_lengths"]))
    copy = np.asarray(te["regression_labels"], np.float64)
    return {name: {"MAE": float(np.abs(p - truth).mean()), "r": float(pearsonr(p, truth)[0])}
            for name, p in (("ridge", pred), ("copy", copy))}


def sample_costs(ds: MMSADataset, seed: int, n: int) -> dict[str, float]:
    """Seconds per clip of espeak-ng and of openSMILE, in this process, on n train clips."""
    tr = ds.splits["train"]
    plans = plan_utterances(tr["id"][:n], tr["raw_text"][:n],
                            tr[TRUTH_KEYS["audio"]][:n] / ds.label_bound, seed=seed,
                            prosody=Prosody())
    extract(speak(plans[0]))  # openSMILE's first call loads its configuration
    wall = {"espeak": 0.0, "opensmile": 0.0}
    cpu = dict(wall)
    seconds = 0.0
    for utt in plans:
        t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        signal = speak(utt)
        t1, c1, p1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN), \
            time.process_time()
        extract(signal)
        wall["espeak"] += t1 - t0
        wall["opensmile"] += time.perf_counter() - t1
        # CPU seconds as well as wall seconds: the shared machine's load inflates the latter.
        cpu["espeak"] += c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
        cpu["opensmile"] += time.process_time() - p1
        seconds += len(signal[0]) / signal[1]
    return {**{f"{k}_s_per_clip": v / n for k, v in wall.items()},
            **{f"{k}_cpu_s_per_clip": v / n for k, v in cpu.items()},
            "speech_s_per_clip": seconds / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1, help="dataset and speech seed")
    ap.add_argument("--sizes", type=int, nargs=3, default=(1284, 229, 686))
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="feature cache (default: a fresh temporary one, so the first run "
                    "is cold)")
    ap.add_argument("--sample", type=int, default=20, help="clips for the cost breakdown")
    ap.add_argument("--out", type=Path, default=None, help="JSON results")
    ap.add_argument("--save", type=Path, default=None, help="write the dataset (.h5 / .pkl)")
    args = ap.parse_args()

    n_train, n_valid, n_test = args.sizes
    base = make_synthetic("mosi", n_train=n_train, n_valid=n_valid, n_test=n_test,
                          seed=args.seed)
    n = sum(base.size(s) for s in base.splits)
    with tempfile.TemporaryDirectory(prefix="speech_cache_") as tmp:
        cache = args.cache_dir or Path(tmp)
        was_cached = any(cache.glob("*/*.npy"))
        t0 = time.perf_counter()
        ds = speechify_audio(base, cache_dir=cache, seed=args.seed, frames=args.frames)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = speechify_audio(base, cache_dir=cache, seed=args.seed, frames=args.frames,
                                progress=False)
        second = time.perf_counter() - t0
    if not np.array_equal(again.splits["test"]["audio"], ds.splits["test"]["audio"]):
        raise SystemExit("the cached run gave different features")
    lengths = np.concatenate([ds.splits[s]["audio_lengths"] for s in ds.splits])
    result = {
        "seed": args.seed, "clips": n, "sizes": list(args.sizes),
        "audio_shape": list(ds.splits["train"]["audio"].shape),
        "audio_hop_ms": ds.attrs["audio_hop_ms"],
        "frames_real": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                        "max": int(lengths.max())},
        "first_run": {"s": first, "s_per_clip": first / n, "cache_was_warm": was_cached},
        "cached_run": {"s": second, "s_per_clip": second / n},
        "sample_costs": sample_costs(base, args.seed, args.sample),
        "test_s_A": {"speech": learnability(ds), "formula_audio": learnability(base)},
        "tools": ds.attrs["audio_tools"],
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.save:
        save_dataset(ds, args.save)


if __name__ == "__main__":
    main()
