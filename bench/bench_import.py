"""Benchmark `labelgen import` on a real-size MOSI-format unaligned pickle of RANDOM data.

The file generated here is random test data in the shape of MMSA's MOSI
`unaligned_50.pkl` (2,199 clips split 1284/229/686; text 50x768, audio 375x5,
vision 500x20; text_bert (N, 3, 50); about 440 MB). It is NOT CMU-MOSI and says
nothing about sentiment: ids are `random$_$<n>` and every transcript says so.

    python bench/bench_import.py /tmp/bench      # generates the pickle once, then times import

Targets: under 60 s wall time and under 2.5 GB peak resident memory.
"""

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mugcore.data.io import save_dataset
from mugcore.data.schema import MMSADataset

SIZES = {"train": 1284, "valid": 229, "test": 686}
TEXT_LEN, TEXT_DIM = 50, 768
AUDIO_LEN, AUDIO_DIM = 375, 5
VISION_LEN, VISION_DIM = 500, 20
TARGET_S, TARGET_GB = 60.0, 2.5
FILE_NAME = "RANDOM_mosi_format_unaligned_50.pkl"


def random_mosi_format(seed: int = 0) -> MMSADataset:
    rng = np.random.default_rng(seed)
    splits, first = {}, 0
    for split, n in SIZES.items():
        labels = np.round(rng.uniform(-3, 3, n) / 0.2) * 0.2
        splits[split] = {
            "id": np.array([f"random$_${first + i}" for i in range(n)], dtype=object),
            "raw_text": np.array(["random test data, not MOSI"] * n, dtype=object),
            "text": rng.standard_normal((n, TEXT_LEN, TEXT_DIM), dtype=np.float32),
            "text_bert": rng.integers(0, 30522, (n, 3, TEXT_LEN)).astype(np.float32),
            "audio": rng.standard_normal((n, AUDIO_LEN, AUDIO_DIM), dtype=np.float32),
            "vision": rng.standard_normal((n, VISION_LEN, VISION_DIM), dtype=np.float32),
            # MMSA stores the lengths as python lists of ints.
            "audio_lengths": rng.integers(1, AUDIO_LEN + 1, n).tolist(),
            "vision_lengths": rng.integers(1, VISION_LEN + 1, n).tolist(),
            "regression_labels": labels.astype(np.float32),
            "classification_labels": np.sign(labels).astype(np.float32),
            "annotations": np.where(labels >= 0, "Positive", "Negative").astype(object),
        }
        first += n
    return MMSADataset(splits=splits)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path,
                        help="where the random pickle is generated (once) and imported")
    parser.add_argument("--keep", action="store_true", help="keep the imported .h5 file")
    args = parser.parse_args()
    args.directory.mkdir(parents=True, exist_ok=True)
    pkl = args.directory / FILE_NAME
    if not pkl.exists():
        print(f"generating {pkl} (random test data, not MOSI) ...", flush=True)
        save_dataset(random_mosi_format(), pkl)
    out = pkl.with_suffix(".h5")
    out.unlink(missing_ok=True)

    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "labelgen.cli", "import", str(pkl),
                             "--out", str(out)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    # ru_maxrss of waited-for children, in KiB on Linux: the import is the only child.
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9
    print(result.stdout + result.stderr, end="")
    if result.returncode != 0:
        print(f"import failed with exit status {result.returncode}")
        return 1
    print(f"input {pkl.stat().st_size / 1e6:.0f} MB, output {out.stat().st_size / 1e6:.0f} MB")
    print(f"wall {wall:.1f} s (target < {TARGET_S:g}), peak RSS {peak_gb:.2f} GB "
          f"(target < {TARGET_GB:g})")
    if not args.keep:
        out.unlink()
    return 0 if wall < TARGET_S and peak_gb < TARGET_GB else 1


if __name__ == "__main__":
    sys.exit(main())
