"""`labelgen labels CLIP_ID` and `labelgen store ls | show | check | rm`: read, check and manage
a label store."""

import argparse
import json
from typing import Any

from mugcore.errors import UserError
from storage.cli import add_store_arguments, open_store


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "labels", help="print the labels of one clip as JSON",
        description="Print one JSON object with the clip's id, split, multimodal label, its "
                    "text/audio/vision uni-labels and the label set they come from.")
    p.add_argument("clip_id", metavar="CLIP_ID", help="clip id as in the dataset, e.g. 'abc$_$3'")
    add_store_arguments(p)
    p.add_argument("--dataset", metavar="NAME",
                   help="dataset holding the clip (needed when the id is in several datasets)")
    p.add_argument("--label-set", default="latest", metavar="ID|latest",
                   help="label set to read (default: the dataset's newest)")
    p.set_defaults(func=cmd_labels)

    store = subparsers.add_parser(
        "store", help="list, describe and delete datasets and label sets in a label store",
        description="Manage the datasets and label sets of a label store.")
    sub = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")

    p = sub.add_parser("ls", help="list datasets with their label sets",
                       description="List datasets, each with its label sets (id, method, seed, "
                                   "time).")
    add_store_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("show", help="describe a dataset or a label set as JSON",
                       description="Print everything the store knows about a dataset or a label "
                                   "set (provenance, options, versions, timings, quality).")
    add_store_arguments(p)
    _target_arguments(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("check", help="list the store's missing or damaged files",
                       description="Check every file the store's rows name: each label-set "
                                   "file against the sha256 recorded when it was published, each "
                                   "dataset's features file by opening it. Prints one line per "
                                   "missing or damaged file; exit status 1 if there is any.")
    add_store_arguments(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("rm", help="delete a dataset (with its label sets) or one label set",
                       description="Delete a dataset with all its label sets and files, or one "
                                   "label set. Refused while a queued or running job uses it.")
    add_store_arguments(p)
    _target_arguments(p)
    p.set_defaults(func=cmd_rm)


def _target_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", nargs="?", metavar="DATASET", help="dataset name or id")
    p.add_argument("--label-set", type=int, metavar="ID", help="a label set id instead")


def _target(args: argparse.Namespace) -> str:
    if (args.dataset is None) == (args.label_set is None):
        raise UserError("name a DATASET or pass --label-set ID (exactly one of them)")
    return "dataset" if args.dataset is not None else "label_set"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def cmd_labels(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        got = store.lookup(args.clip_id, dataset=args.dataset, label_set=args.label_set)
    print(json.dumps({"clip_id": got.clip_id, "dataset": got.dataset, "split": got.split,
                      "multimodal": got.multimodal, "text": got.text, "audio": got.audio,
                      "vision": got.vision, "label_set_id": got.label_set}))  # as the API names it
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        datasets = store.list_datasets()
        label_sets = store.list_label_sets()
    if args.json:
        _print_json({"datasets": [d.to_dict() for d in datasets],
                     "label_sets": [x.to_dict() for x in label_sets]})
        return 0
    if not datasets:
        print(f"store {store.location}: no datasets")
        return 0
    for d in datasets:
        sizes = "/".join(str(d.split_sizes.get(s, 0)) for s in ("train", "valid", "test"))
        print(f"dataset {d.id} {d.name}: {d.n_clips} clips (train/valid/test {sizes}), "
              f"H={d.label_bound:g}, {d.source_format}, hash {d.content_hash[:12]}")
        own = [x for x in label_sets if x.dataset_id == d.id]
        for x in own:
            print(f"  label set {x.id}: {x.method}, seed {x.seed}, "
                  f"{x.created_at:%Y-%m-%d %H:%M:%S} UTC")
        if not own:
            print("  (no label sets)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    kind = _target(args)
    with open_store(args) as store:
        if kind == "dataset":
            info = store.get_dataset(args.dataset).to_dict()
            info["label_sets"] = [x.id for x in store.list_label_sets(args.dataset)]
            info["active_jobs"] = [j.id for j in store.list_jobs(dataset=args.dataset)
                                   if j.status in ("queued", "running")]
        else:
            info = store.get_label_set(args.label_set).to_dict()
    _print_json(info)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        damage = store.find_damage(deep=True)
        checked = len(store.list_datasets()) + len(store.list_label_sets())
    for d in damage:
        print(f"damaged: {d}")
    if damage:
        print(f"store {store.location}: {len(damage)} of {checked} files missing or damaged; "
              "delete what they belong to (labelgen store rm) or restore them from a backup")
        return 1
    print(f"store {store.location}: all {checked} files sound")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    kind = _target(args)
    with open_store(args) as store:
        if kind == "dataset":
            name = store.get_dataset(args.dataset).name
            removed = store.delete_dataset(args.dataset)
            print(f"deleted dataset {name} and {len(removed)} label set(s)")
        else:
            store.delete_label_set(args.label_set)
            print(f"deleted label set {args.label_set}")
    return 0
