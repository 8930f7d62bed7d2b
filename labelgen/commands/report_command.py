"""`labelgen report`: uni-label quality against ground truth, and plots of a label set."""

import argparse
from pathlib import Path

from mugcore.outputs import check_output_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="quality table and plots of a label set (against ground truth)",
        description="Print, per split and modality, the MAE and Pearson r of the uni-labels "
                    "against per-modality ground truth beside the copy baseline (the "
                    "multimodal label as uni-label), and write PNG plots: uni-label vs ground "
                    "truth, histograms of uni-label minus multimodal label, and a t-SNE of "
                    "unimodal vs projected multimodal representations when the label files "
                    "carry them. Without ground truth only the plots that do not need it are "
                    "written.")
    p.add_argument("labels", type=Path, metavar="LABELS",
                   help="label set: CSV (clip_id,split,multimodal,text,audio,vision[,truth_text,"
                        "truth_audio,truth_vision]) or a label-set .h5 file")
    p.add_argument("--truth", type=Path, metavar="FILE",
                   help="dataset file (.pkl MMSA or .h5) with per-modality ground truth "
                        "(regression_labels_T/_A/_V), matched to the labels by clip id; not "
                        "needed when LABELS carries truth_* columns")
    p.add_argument("--out", type=Path, default=Path("report"), metavar="DIR",
                   help="directory for quality.json and the PNGs (created; default: ./report)")
    p.add_argument("--compare", type=Path, nargs="+", default=[], metavar="LABELS2",
                   help="further label sets of the same dataset to show beside LABELS (e.g. "
                        "another method, or mug without the contrastive loss for the t-SNE)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    check_output_dir(args.out, flag="--out")  # before the t-SNE, not after it
    # t-SNE and plotting pull in scikit-learn and matplotlib: only load them when reporting.
    from labelgen.reporting.report import build_report

    report = build_report(args.labels, out_dir=args.out, truth=args.truth, compare=args.compare)
    print(report.text)
    return 0
