"""`trainer eval`: the metrics of a saved checkpoint on any split of any dataset file."""

import argparse
import json
from pathlib import Path

import numpy as np

from mugcore.data.io import load_dataset
from mugcore.data.schema import SPLITS
from mugcore.errors import UserError
from trainer.report import write_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a checkpoint on a dataset file",
        description="Rebuild the network of a `trainer run` checkpoint (best.pt) and report "
                    "the metrics of its multimodal predictions on one split or all of them.")
    p.add_argument("--checkpoint", type=Path, required=True, metavar="CKPT",
                   help="checkpoint written by `trainer run` (DIR/best.pt or DIR/seed_N/best.pt)")
    p.add_argument("--data", type=Path, required=True, metavar="FILE",
                   help="dataset file (.h5 or MMSA .pkl) with the features the net was trained on")
    p.add_argument("--split", default="test", choices=(*SPLITS, "all"),
                   help="split to evaluate (default: test; 'all': every split in the file)")
    p.add_argument("--metrics", choices=("auto", "mosi", "sims"),
                   help="metric family (default: the one the checkpoint was trained with)")
    p.add_argument("--batch-size", type=int, default=64, help="evaluation batch size")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="device (default: cuda when available)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads (default 0: torch's choice)")
    p.add_argument("--out", type=Path, metavar="FILE.json", help="also write the metrics here")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise UserError(f"--batch-size: must be >= 1, got {args.batch_size}")
    # torch and scikit-learn load only when the command runs, so that --help is quick.
    from trainer import distributed
    from trainer.recipe import build_net, load_checkpoint, metric_fn, predict

    ckpt = load_checkpoint(args.checkpoint)
    ds = load_dataset(args.data)
    splits = [s for s in SPLITS if s in ds.splits] if args.split == "all" else [args.split]
    if args.split not in ("all", *ds.splits):
        raise UserError(f"--split {args.split}: {args.data} has splits {', '.join(ds.splits)}")
    distributed.set_threads(args.threads)
    env = distributed.init(args.device)
    net = build_net(ckpt["net_config"]).to(env.device)
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise UserError(f"--checkpoint {args.checkpoint}: weights do not fit its net config "
                        f"({str(exc).splitlines()[0]})") from None
    family = args.metrics or ckpt.get("metrics_family", "auto")
    metrics = metric_fn(family, float(ckpt.get("label_bound", ds.label_bound)))
    result = {}
    for split in splits:
        pred = predict(net, ds, split, env, args.batch_size)
        result[split] = metrics(pred, np.asarray(ds.splits[split]["regression_labels"]))
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(result, args.out)
    return 0
