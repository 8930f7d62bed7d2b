"""`labelgen synth`: write a SYNTHETIC dataset with known per-modality labels."""

import argparse
import time
from pathlib import Path

from mugcore.data.io import dataset_kind, save_dataset
from mugcore.data.synth import PRESETS, make_synthetic
from mugcore.outputs import check_new_file


def register(subparsers: argparse._SubParsersAction) -> None:
    sizes = "; ".join(f"{name} {'/'.join(map(str, p.sizes))}" for name, p in PRESETS.items())
    p = subparsers.add_parser(
        "synth", help="generate a SYNTHETIC dataset with known per-modality (uni-)labels",
        description="Generate SYNTHETIC data (not real recordings) in the MMSA layout of "
                    "MOSI, MOSEI or SIMS, with ground-truth per-modality sentiment under "
                    "regression_labels_T/_A/_V, for tests, demos and benchmarks of uni-label "
                    "generation. The file's attributes (HDF5) and the clip ids "
                    "('synthetic_<preset>_...') mark it synthetic. Default split sizes "
                    f"(train/valid/test) are the real datasets': {sizes}. See "
                    "mugcore.data.synth for the generative story.")
    p.add_argument("--preset", required=True, choices=sorted(PRESETS),
                   help="which dataset's shapes and label bound to imitate: mosi and mosei "
                        "have labels in [-3, 3], sims in [-1, 1]")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="file to write: .pkl/.pickle (MMSA pickle) or .h5/.hdf5 (HDF5)")
    for split in ("train", "valid", "test"):
        p.add_argument(f"--n-{split}", type=int, metavar="N",
                       help=f"clips in the {split} split (default: the real dataset's size)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed; the same seed gives the same file content (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args: argparse.Namespace) -> int:
    # Checked before generating: a MOSEI-size dataset takes a while to make.
    dataset_kind(args.out)
    check_new_file(args.out, flag="--out", force=args.force)
    given = (args.n_train, args.n_valid, args.n_test)
    n_train, n_valid, n_test = (default if n is None else n
                                for n, default in zip(given, PRESETS[args.preset].sizes,
                                                      strict=True))
    start = time.perf_counter()
    ds = make_synthetic(args.preset, n_train=n_train, n_valid=n_valid, n_test=n_test,
                        seed=args.seed, progress=True)
    save_dataset(ds, args.out, progress=True)
    counts = ", ".join(f"{split} {ds.size(split)}" for split in ds.splits)
    print(f"wrote SYNTHETIC {args.preset} dataset ({counts}; seed {args.seed}) to {args.out} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0
