"""`labelgen import | validate | export`: MMSA feature pickles <-> the project's HDF5 format."""

import argparse
import time
from pathlib import Path

import numpy as np

from labelgen.interop.mmsa_export import provenance_path, write_export
from mugcore.data.hashing import dataset_hash
from mugcore.data.io import dataset_kind, load_dataset, save_dataset
from mugcore.data.schema import LENGTH_KEYS, MMSADataset
from mugcore.data.validate import FEATURE_KEYS, check_dataset
from mugcore.errors import UserError
from mugcore.outputs import check_new_file
from storage.cli import add_store_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import", help="validate an MMSA feature pickle and convert it to HDF5",
        description="Read an MMSA feature pickle through the restricted unpickler (it admits "
                    "only numpy arrays and plain containers), validate it and write the "
                    "project's HDF5 format. Nothing is written if any problem is found.")
    p.add_argument("file", type=Path, metavar="FILE.pkl", help="MMSA feature pickle to read")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.h5",
                   help="HDF5 file to write (.h5 or .hdf5)")
    p.add_argument("--label-bound", type=float, metavar="H",
                   help="label bound H: labels live in [-H, H] (default: 1 when the file has "
                        "SIMS per-modality labels and all labels lie in [-1, 1], otherwise 3)")
    p.add_argument("--zero-nonfinite", action="store_true",
                   help="replace NaN and inf in the feature arrays by 0 before validating, as "
                        "MMSA's own loader does (MOSEI's audio features hold -inf)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser(
        "validate", help="check a dataset file (MMSA pickle or HDF5) and list every problem",
        description="Exit 0 and print a summary when FILE is a valid dataset; otherwise list "
                    "every problem (split, key, index) and exit with status 2.")
    p.add_argument("file", type=Path, metavar="FILE",
                   help="dataset file: .pkl/.pickle (MMSA) or .h5/.hdf5")
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser(
        "export", help="write an MMSA feature pickle, optionally carrying a label set's "
                       "uni-labels",
        description="Validate an HDF5 dataset (FILE.h5, or --store/--dataset) and write it as an "
                    "MMSA feature pickle (protocol 4) holding the same arrays, bit for bit. With "
                    "--label-set or --labels, the uni-labels go into regression_labels_T/_A/_V "
                    "(and classification_labels_T/_A/_V: 0 negative, 1 neutral, 2 positive), "
                    "which MMSA's multi-task models read; everything else stays as imported, "
                    "and OUT.provenance.json records where the labels came from.")
    p.add_argument("file", type=Path, nargs="?", metavar="FILE.h5",
                   help="HDF5 dataset to read (default with --store: the dataset's own copy)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.pkl",
                   help="pickle file to write (.pkl or .pickle)")
    add_store_arguments(p)
    p.add_argument("--dataset", metavar="NAME|ID", help="dataset in --store")
    p.add_argument("--label-set", metavar="ID|latest",
                   help="label set of --dataset whose uni-labels to write (with --store)")
    p.add_argument("--labels", type=Path, metavar="FILE",
                   help="uni-labels from a file instead: a label-set HDF5 file (labelgen run "
                        "--out, the API's ?format=hdf5) or a CSV clip_id,text,audio,vision")
    p.add_argument("--force", action="store_true",
                   help="overwrite --out (and its .provenance.json) if they exist")
    p.set_defaults(func=cmd_export)


def cmd_import(args: argparse.Namespace) -> int:
    _check_out(args.out, "hdf5", args.force)
    start = time.perf_counter()
    ds = load_dataset(args.file, validate=False)
    if args.label_bound is not None:
        if not args.label_bound > 0:
            raise UserError(f"--label-bound: must be positive, got {args.label_bound:g}")
        ds.attrs["label_bound"] = args.label_bound
    if args.zero_nonfinite:
        ds.attrs["nonfinite_features_zeroed"] = _zero_nonfinite(ds)
    check_dataset(ds, str(args.file))
    digest = dataset_hash(ds)
    save_dataset(ds, args.out, progress=True)
    print(f"imported {args.file} -> {args.out} in {time.perf_counter() - start:.1f} s")
    print(_summary(ds, digest))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    ds = load_dataset(args.file, validate=False)
    check_dataset(ds, str(args.file))
    print(f"ok: {args.file}")
    print(_summary(ds, dataset_hash(ds)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.file is not None and dataset_kind(args.file) != "hdf5":
        raise UserError(f"{args.file}: export reads an HDF5 dataset (.h5 or .hdf5)")
    with_labels = args.label_set is not None or args.labels is not None
    if args.label_set is not None and args.labels is not None:
        raise UserError("--label-set and --labels: give one source of uni-labels, not both")
    if (args.label_set is not None or args.file is None) and not (args.store and args.dataset):
        raise UserError("--store and --dataset are needed to read a dataset or label set "
                        "from a store (or give FILE.h5)")
    _check_out(args.out, "pickle", args.force)
    if with_labels:
        check_new_file(provenance_path(args.out), flag="--out", force=args.force)
    if args.store and args.dataset:
        from labelgen.commands.label_commands import store_export_inputs

        ds, labels, source = store_export_inputs(args)
    else:
        ds, labels, source = load_dataset(args.file), None, {}
    if args.labels is not None:
        from labelgen.commands.label_commands import read_label_file_for

        labels, source = read_label_file_for(args.labels)
    digest = dataset_hash(ds)
    if labels is None:
        save_dataset(ds, args.out)
        print(f"exported {args.file or args.dataset} -> {args.out}")
    else:
        provenance = write_export(ds, labels, args.out, source=source)
        print(f"exported {args.file or args.dataset} with uni-labels from "
              f"{source.get('label_set_id', source.get('file'))} -> {args.out}")
        print(f"  provenance: {provenance_path(args.out)} (pickle sha256 "
              f"{provenance['file_sha256'][:12]})")
        if provenance["replaced_keys"]:
            print(f"  replaced the dataset's own {', '.join(provenance['replaced_keys'])}")
    print(_summary(ds, digest))
    return 0


def _check_out(out: Path, kind: str, force: bool) -> None:
    if dataset_kind(out) != kind:
        wanted = ".h5 or .hdf5" if kind == "hdf5" else ".pkl or .pickle"
        raise UserError(f"--out {out}: expected a {wanted} file")
    check_new_file(out, flag="--out", force=force)


def _zero_nonfinite(ds: MMSADataset) -> int:
    """Set NaN and inf feature values to 0 in place; returns how many were replaced."""
    replaced = 0
    for data in ds.splits.values():
        for key in FEATURE_KEYS:
            value = data.get(key)
            if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                continue
            if not value.flags.writeable:  # arrays unpickled from protocol-5 buffers
                value = data[key] = value.copy()
            for row in value:  # one clip at a time keeps the mask small
                bad = ~np.isfinite(row)
                replaced += int(bad.sum())
                row[bad] = 0
    return replaced


def _summary(ds: MMSADataset, digest: str) -> str:
    sizes = ", ".join(f"{name} {len(data['regression_labels'])}"
                      for name, data in ds.splits.items())
    first = next(iter(ds.splits.values()))
    dims = ", ".join(f"{key} {'x'.join(str(d) for d in first[key].shape[1:])}"
                     for key in FEATURE_KEYS if key in first)
    aligned = "unaligned" if any(k in first for k in LENGTH_KEYS.values()) else "aligned"
    truth = ", per-modality labels" if ds.has_truth else ""
    synthetic = ", SYNTHETIC data" if ds.attrs.get("synthetic") else ""
    return (f"  clips: {sizes}\n  dims: {dims} ({aligned}{truth}{synthetic})\n"
            f"  H: {ds.label_bound:g}\n  sha256: {digest}")
