"""`labelgen report`: uni-label quality against ground truth, and plots of a label set."""

import argparse
from pathlib import Path

from mugcore.errors import UserError
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
    p.add_argument("--force", action="store_true",
                   help="write into an --out folder that holds files already (the report's "
                        "own files are replaced, plots of an earlier report that this one "
                        "does not draw are removed, other files stay)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    out: Path = args.out
    check_output_dir(out, flag="--out")  # before the t-SNE, not after it
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not args.force:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise UserError(f"--out {out}: holds files already ({shown}); pass --force to write "
                        "the report there anyway, or name another --out")
    # t-SNE and plotting pull in scikit-learn and matplotlib: only load them when reporting.
    from labelgen.reporting.report import REPORT_FILES, build_report

    report = build_report(args.labels, out_dir=out, truth=args.truth, compare=args.compare)
    for name in set(REPORT_FILES) & set(held) - {p.name for p in report.files}:
        (out / name).unlink(missing_ok=True)  # an earlier report's plot would mislead
    print(report.text)
    return 0
