"""`labelgen import-labels` (another generator's labels into the store) and `labelgen compare`
(a dataset's label sets side by side against copy and truth); the label sources of
`labelgen export`."""

import argparse
import json
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labelgen.interop.compare import compare_rows, default_threshold, format_table
from labelgen.interop.imports import import_label_file
from labelgen.interop.label_files import FORMATS, format_for, read_csv
from mugcore.data.h5safety import check_h5_file
from mugcore.data.hashing import dataset_hash
from mugcore.data.io import load_dataset
from mugcore.data.schema import MMSADataset
from mugcore.errors import DatasetError, UserError
from storage.cli import add_store_arguments, open_store


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import-labels", help="publish another generator's uni-labels as a label set",
        description="Read uni-labels made elsewhere and publish them as a label set of "
                    "--dataset, with provenance naming the source. Formats: selfmm (the pickle "
                    "MMSA's Self-MM writes with save_labels; train split only, valid and test "
                    "get copy), csv (header clip_id,text,audio,vision, every clip). CMC's "
                    "pseudo-label pickles are refused with the reason (3-class distributions, "
                    "not regression labels). Checked like any upload: the dataset's ids, "
                    "finite, within [-H, H].")
    p.add_argument("file", type=Path, metavar="FILE", help="label file to read")
    add_store_arguments(p)
    p.add_argument("--dataset", required=True, metavar="NAME|ID", help="dataset in --store")
    p.add_argument("--format", choices=FORMATS,
                   help="file format (default: csv for .csv, selfmm for .pkl/.pickle)")
    p.add_argument("--epoch", type=int, metavar="N",
                   help="selfmm: the saved epoch to take (default: the last)")
    p.set_defaults(func=cmd_import_labels)

    p = subparsers.add_parser(
        "compare", help="a dataset's label sets side by side against copy and truth",
        description="One table: per label set and modality, MAE and Pearson r against the "
                    "dataset's per-modality truth (where it has one), the mean |uni-label - "
                    "y_M|, the fraction of clips moved from y_M by more than --moved, and the "
                    "share of truths inside the set's intervals (where it has them). The copy "
                    "baseline is the first row.")
    p.add_argument("label_sets", nargs="*", metavar="SET", help="label set ids (or 'latest')")
    add_store_arguments(p)
    p.add_argument("--dataset", metavar="NAME|ID",
                   help="dataset (default: the first label set's)")
    p.add_argument("--all", action="store_true", help="every label set of --dataset")
    p.add_argument("--split", choices=("all", "train", "valid", "test"), default="all",
                   help="clips to compare on (default: all; Self-MM imports label only train)")
    p.add_argument("--moved", type=float, metavar="T",
                   help="a clip counts as moved when |uni-label - y_M| > T (default H/6)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_compare)


def read_label_file_for(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Uni-labels for `labelgen export --labels`: a label-set HDF5 file or a CSV."""
    if not path.is_file():
        raise UserError(f"--labels {path}: no such file")
    if path.suffix.lower() == ".csv":
        got = read_csv(path)
        return got.labels, got.source
    from storage.files import LABEL_FORMAT, read_label_file, sha256_file

    try:
        with h5py.File(path, "r") as f:
            check_h5_file(f, path)
            if f.attrs.get("format") != LABEL_FORMAT:
                raise UserError(f"--labels {path}: not a label-set file (format attribute "
                                f"{f.attrs.get('format')!r}, expected {LABEL_FORMAT!r})")
            meta = json.loads(f.attrs.get("meta", "{}"))
        arrays = read_label_file(path)
    except (OSError, DatasetError, ValueError, TypeError) as exc:
        raise UserError(f"--labels {path}: cannot read ({exc})") from None
    source = {"file": path.name, "file_sha256": sha256_file(path), "format": LABEL_FORMAT,
              "method": meta.get("method"), "seed": meta.get("seed"),
              "dataset_hash": meta.get("dataset_hash")}
    return arrays, source


def store_export_inputs(args: argparse.Namespace
                        ) -> tuple[MMSADataset, dict[str, np.ndarray] | None, dict[str, Any]]:
    """`labelgen export --store --dataset`: the features (FILE.h5 when given, else the
    store's copy) and, with --label-set, that label set's arrays and description."""
    with open_store(args) as store:
        info = store.get_dataset(args.dataset)
        ds = load_dataset(args.file if args.file is not None else store.features_path(info.id))
        if args.label_set is None:
            return ds, None, {}
        if args.file is not None and dataset_hash(ds) != info.content_hash:
            raise UserError(f"{args.file}: other content than dataset {info.name!r} in the store "
                            "(its label sets were made for that content)")
        ls = store.get_label_set(args.label_set, dataset=info.id)
        arrays = store.read_labels(ls.id)
    source = {"store": store.location, "dataset": info.name, "dataset_id": info.id,
              "label_set_id": ls.id, "method": ls.method, "seed": ls.seed,
              "label_set_sha256": ls.file_sha256, "created_at": ls.created_at.isoformat()}
    return ds, dict(arrays), source


def cmd_import_labels(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise UserError(f"{args.file}: no such file")
    fmt = format_for(args.file, args.format)
    with open_store(args) as store:
        info, got = import_label_file(store, args.dataset, args.file, fmt, epoch=args.epoch)
    print(f"imported {args.file} ({fmt}) as label set {info.id} of dataset {info.dataset} "
          f"(method {info.method})")
    for split in got.unlabelled_splits:
        print(f"  {split}: not labelled by {fmt}; copy (the multimodal label) stands in")
    for note in got.notes:
        print(f"  note: {note}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.all == bool(args.label_sets):
        raise UserError("name label sets (SET ...) or pass --all, one of the two")
    if args.all and args.dataset is None:
        raise UserError("--all needs --dataset")
    from storage.imports import dataset_clips, dataset_truth

    with open_store(args) as store:
        if args.all:
            infos = store.list_label_sets(args.dataset)
            if not infos:
                raise UserError(f"dataset {args.dataset!r} has no label sets")
        else:
            first = store.get_label_set(args.label_sets[0], dataset=args.dataset)
            dataset = args.dataset if args.dataset is not None else first.dataset_id
            infos = [store.get_label_set(s, dataset=dataset) for s in args.label_sets]
        dataset_info = store.get_dataset(infos[0].dataset_id)
        index = dataset_clips(store, dataset_info.id)
        truth = dataset_truth(store, dataset_info.id)
        sets = [(str(i.id), i.method, store.read_labels(i.id)) for i in infos]
    threshold = args.moved if args.moved is not None else default_threshold(
        dataset_info.label_bound)
    if not threshold > 0:
        raise UserError(f"--moved: must be positive, got {threshold:g}")
    mask = None if args.split == "all" else index.split == args.split
    rows = compare_rows(sets, multimodal=index.multimodal, truth=truth, threshold=threshold,
                        mask=mask)
    if args.json:
        print(json.dumps({"dataset": dataset_info.name, "split": args.split,
                          "moved_threshold": threshold, "has_truth": truth is not None,
                          "rows": [r.__dict__ for r in rows]}, indent=2))
        return 0
    n = len(index.clip_id) if mask is None else int(mask.sum())
    synthetic = ", SYNTHETIC data" if dataset_info.attrs.get("synthetic") else ""
    print(f"dataset {dataset_info.name}: {n} clips ({args.split}{synthetic}), H "
          f"{dataset_info.label_bound:g}, moved = |uni - y_M| > {threshold:g}"
          + ("" if truth is not None else "; no per-modality truth"))
    print(format_table(rows))
    print(f"({time.perf_counter() - started:.2f} s)")
    return 0
