"""`labelgen report`: how good is a label set? Quality tables and PNG plots.

Inputs
- A label set: a CSV with columns clip_id, split, multimodal, text, audio, vision, or a
  label-set HDF5 file of the store (`storage.files`). Either may carry per-modality ground
  truth (CSV columns / HDF5 datasets truth_text, truth_audio, truth_vision) and an HDF5 file
  may carry stage-1 representations (see `write_representations` for the layout).
- Ground truth from a dataset file (`--truth`: MMSA .pkl or HDF5; SIMS keys
  regression_labels_T/_A/_V), matched to the label set by clip id.
- Further label sets to compare (`--compare`), matched by clip id to the first one.

Outputs (nothing is written until every input has been read and checked)
- A table per split and modality: MAE and Pearson r of each label set's uni-labels against
  ground truth, beside the `copy` baseline (mugcore.metrics.unilabel_quality); also
  quality.json.
- unilabel_vs_truth.png: uni-label against ground truth per modality, with copy.
- unilabel_minus_multimodal.png: histogram of (uni-label - multimodal label) per modality.
- tsne_representations.png: t-SNE of unimodal representations h_u beside projected
  multimodal ones z_u, one row per label set that carries representations (a run with and
  one without the contrastive loss side by side when both are given).
- uncertainty.png and a coverage table, when the first label set carries per-clip intervals
  (labelgen/reporting/uncertainty_plots.py).
"""

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from tqdm import tqdm

from labelgen.reporting.uncertainty_plots import UNCERTAINTY_FILE
from labelgen.stages.representations import CachedReps
from mugcore.data.io import load_dataset
from mugcore.data.schema import MODALITIES, SPLITS, TRUTH_KEYS
from mugcore.errors import UserError
from mugcore.metrics import unilabel_quality
from storage.files import LABEL_KEYS, read_label_file

REPS_GROUP = "representations"
TRUTH_PREFIX = "truth_"
TSNE_MAX_POINTS = 1000  # h and z together, per panel
SCATTER_FILE = "unilabel_vs_truth.png"
HISTOGRAM_FILE = "unilabel_minus_multimodal.png"
TSNE_FILE = "tsne_representations.png"
QUALITY_FILE = "quality.json"
# Every file a report may write.
REPORT_FILES = (QUALITY_FILE, SCATTER_FILE, HISTOGRAM_FILE, TSNE_FILE, UNCERTAINTY_FILE)

Quality = dict[str, dict[str, dict[str, float]]]  # split -> modality -> figures


@dataclass
class LabelSet:
    """One label set, arrays over its clips in file order."""

    name: str
    clip_id: np.ndarray
    split: np.ndarray
    multimodal: np.ndarray
    labels: dict[str, np.ndarray]
    truth: dict[str, np.ndarray] | None = None
    # {"h": {modality: (N, d_u)}, "z": {modality: (N, d_u)}}
    reps: dict[str, dict[str, np.ndarray]] | None = None
    contrastive: bool | None = None
    # {modality: {"std", "lower", "upper": (N,)}} and the level, where the set carries them
    intervals: dict[str, dict[str, np.ndarray]] | None = None
    level: float | None = None

    def take(self, order: np.ndarray) -> "LabelSet":
        """The same label set with its clips in `order` (indices into the current order)."""
        reps = None
        if self.reps is not None:
            reps = {kind: {u: a[order] for u, a in per.items()} for kind, per in self.reps.items()}
        return LabelSet(
            name=self.name, clip_id=self.clip_id[order], split=self.split[order],
            multimodal=self.multimodal[order],
            labels={u: a[order] for u, a in self.labels.items()},
            truth=None if self.truth is None else {u: a[order] for u, a in self.truth.items()},
            reps=reps, contrastive=self.contrastive,
            intervals=None if self.intervals is None else {
                u: {k: a[order] for k, a in per.items()} for u, per in self.intervals.items()},
            level=self.level)


@dataclass
class Report:
    text: str  # the printed table and notes
    quality: dict[str, Quality] = field(default_factory=dict)  # label set name -> figures
    files: list[Path] = field(default_factory=list)


def write_representations(f: h5py.File, reps: CachedReps, *, contrastive: bool) -> None:
    """Store h_u and z_u of every clip in a label-set HDF5 file, for the t-SNE plot.

    Layout: group `representations` with datasets `h_<modality>` and `z_<modality>`, each
    (N, d_u) float32 over all clips in the label file's order (train, valid, test), and the
    group attribute `contrastive` (whether stage 1 used the contrastive loss).
    """
    group = f.create_group(REPS_GROUP)
    group.attrs["contrastive"] = bool(contrastive)
    for u in MODALITIES:
        for kind in ("h", "z"):
            per_split = [getattr(reps.splits[s], kind)[u] for s in SPLITS]
            group.create_dataset(f"{kind}_{u}", data=np.concatenate(per_split).astype(np.float32))


def read_label_set(path: Path, name: str | None = None) -> LabelSet:
    """A label set from a .csv or label-set .h5 file; `UserError` naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such label file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, name or path.stem)
    if suffix in (".h5", ".hdf5"):
        return _read_h5(path, name or path.stem)
    raise UserError(f"{path}: unknown label file type {suffix or '(no suffix)'!r} "
                    "(expected .csv, .h5 or .hdf5)")


def _read_csv(path: Path, name: str) -> LabelSet:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        header = list(rows[0]) if rows else []
    missing = [k for k in LABEL_KEYS if k not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} "
                        f"(a label CSV needs {', '.join(LABEL_KEYS)} and at least one row)")
    truth_columns = [TRUTH_PREFIX + u for u in MODALITIES]
    has_truth = all(c in header for c in truth_columns)

    def numbers(column: str) -> np.ndarray:
        values = np.empty(len(rows))
        for i, row in enumerate(rows):
            try:
                values[i] = float(row[column])
            except (TypeError, ValueError):
                raise UserError(f"{path}: row {i + 2}, column {column}: {row[column]!r} is not "
                                "a number") from None
            if not np.isfinite(values[i]):
                raise UserError(f"{path}: row {i + 2}, column {column}: value is not finite")
        return values

    return _checked(path, LabelSet(
        name=name,
        clip_id=np.array([r["clip_id"] for r in rows], dtype=str),
        split=np.array([r["split"] for r in rows], dtype=str),
        multimodal=numbers("multimodal"),
        labels={u: numbers(u) for u in MODALITIES},
        truth={u: numbers(TRUTH_PREFIX + u) for u in MODALITIES} if has_truth else None,
        intervals={u: {k: numbers(f"{u}_{k}") for k in ("std", "lower", "upper")}
                   for u in MODALITIES} if "text_std" in header else None))


def _read_h5(path: Path, name: str) -> LabelSet:
    try:
        arrays = read_label_file(path)
        with h5py.File(path, "r", locking=False) as f:
            truth = None
            if all(TRUTH_PREFIX + u in f for u in MODALITIES):
                truth = {u: f[TRUTH_PREFIX + u][()].astype(np.float64) for u in MODALITIES}
            reps, contrastive = None, None
            if REPS_GROUP in f:
                group = f[REPS_GROUP]
                reps = {kind: {u: group[f"{kind}_{u}"][()] for u in MODALITIES}
                        for kind in ("h", "z")}
                contrastive = bool(group.attrs["contrastive"]) \
                    if "contrastive" in group.attrs else None
            level = json.loads(f.attrs.get("meta", "{}")).get("uncertainty", {}).get("level")
    except (OSError, KeyError) as exc:
        raise UserError(f"{path}: not a readable label-set file ({exc})") from None
    return _checked(path, LabelSet(
        name=name, clip_id=arrays["clip_id"].astype(str), split=arrays["split"].astype(str),
        multimodal=arrays["multimodal"].astype(np.float64),
        labels={u: arrays[u].astype(np.float64) for u in MODALITIES},
        truth=truth, reps=reps, contrastive=contrastive,
        intervals={u: {k: arrays[f"{u}_{k}"].astype(np.float64) for k in ("std", "lower", "upper")}
                   for u in MODALITIES} if "text_std" in arrays else None, level=level))


def _checked(path: Path, ls: LabelSet) -> LabelSet:
    n = len(ls.clip_id)
    unknown = sorted(set(ls.split) - set(SPLITS))
    if unknown:
        raise UserError(f"{path}: unknown split name(s) {', '.join(unknown)} "
                        f"(expected {', '.join(SPLITS)})")
    if len(set(ls.clip_id)) != n:
        raise UserError(f"{path}: clip ids are not unique")
    arrays = {"multimodal": ls.multimodal, **ls.labels}
    if ls.truth is not None:
        arrays.update({TRUTH_PREFIX + u: a for u, a in ls.truth.items()})
    if ls.reps is not None:
        arrays.update({f"{REPS_GROUP}/{k}_{u}": a for k, per in ls.reps.items()
                       for u, a in per.items()})
    for key, values in arrays.items():
        if len(values) != n:
            raise UserError(f"{path}: {key} has {len(values)} rows but there are {n} clips")
        if not np.isfinite(values).all():
            raise UserError(f"{path}: {key} has non-finite values")
    return ls


def attach_truth(ls: LabelSet, dataset_path: Path) -> bool:
    """Fill `ls.truth` from a dataset file, matching clips by id; False if it has no truth."""
    ds = load_dataset(dataset_path)
    if not ds.has_truth:
        return False
    ids = np.concatenate([np.asarray(ds.splits[s]["id"]).astype(str) for s in SPLITS])
    position = {clip: i for i, clip in enumerate(ids)}
    absent = [c for c in ls.clip_id if c not in position]
    if absent:
        raise UserError(f"{dataset_path}: {len(absent)} clip(s) of label set {ls.name} are not "
                        f"in this dataset (first: {', '.join(absent[:3])}); wrong --truth file?")
    index = np.array([position[c] for c in ls.clip_id], dtype=np.int64)
    multimodal = np.concatenate(
        [np.asarray(ds.splits[s]["regression_labels"], np.float64).reshape(-1) for s in SPLITS])
    differ = int((np.abs(multimodal[index] - ls.multimodal) > 1e-4).sum())
    if differ:
        raise UserError(f"{dataset_path}: the multimodal labels of {differ} clip(s) differ from "
                        f"label set {ls.name}'s; wrong --truth file?")
    ls.truth = {}
    for u in MODALITIES:
        values = np.concatenate(
            [np.asarray(ds.splits[s][TRUTH_KEYS[u]], np.float64).reshape(-1) for s in SPLITS])
        ls.truth[u] = values[index]
    return True


def align(primary: LabelSet, other: LabelSet) -> LabelSet:
    """`other` restricted to, and ordered as, the clips of `primary`."""
    position = {clip: i for i, clip in enumerate(other.clip_id)}
    absent = [c for c in primary.clip_id if c not in position]
    if absent:
        raise UserError(f"label set {other.name} lacks {len(absent)} clip(s) of {primary.name} "
                        f"(first: {', '.join(absent[:3])}); compare label sets of one dataset")
    aligned = other.take(np.array([position[c] for c in primary.clip_id], dtype=np.int64))
    if not np.allclose(aligned.multimodal, primary.multimodal, atol=1e-4):
        raise UserError(f"label sets {primary.name} and {other.name} have different multimodal "
                        "labels for the same clips; compare label sets of one dataset")
    if aligned.truth is None:
        aligned.truth = primary.truth
    return aligned


def quality(ls: LabelSet) -> Quality:
    """Per split present in the set (train, valid, test order) and modality."""
    assert ls.truth is not None
    out: Quality = {}
    for split in SPLITS:
        mask = ls.split == split
        if mask.any():
            out[split] = unilabel_quality({u: ls.labels[u][mask] for u in MODALITIES},
                                          {u: ls.truth[u][mask] for u in MODALITIES},
                                          ls.multimodal[mask])
    return out


def format_table(names: Sequence[str], qualities: Sequence[Quality]) -> str:
    """Rows split x modality; columns copy, then each label set (MAE and r)."""
    header = ["split", "modality", "copy MAE", "copy r"]
    for name in names:
        header += [f"{name} MAE", f"{name} r"]
    rows = [header]
    for split in qualities[0]:
        for u in MODALITIES:
            first = qualities[0][split][u]
            row = [split, u, f"{first['copy_mae']:.4f}", f"{first['copy_corr']:.4f}"]
            for q in qualities:
                row += [f"{q[split][u]['mae']:.4f}", f"{q[split][u]['corr']:.4f}"]
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _save(fig: Figure, path: Path) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    fig.savefig(temp, format="png", dpi=110)
    os.replace(temp, path)


def plot_scatter(sets: Sequence[LabelSet], path: Path) -> None:
    fig = Figure(figsize=(5 * len(MODALITIES), 4.6), layout="constrained")
    for ax, u in zip(fig.subplots(1, len(MODALITIES)), MODALITIES, strict=True):
        truth = sets[0].truth
        assert truth is not None
        ax.scatter(truth[u], sets[0].multimodal, s=8, c="0.65", label="copy (multimodal)")
        for ls in sets:
            ax.scatter(truth[u], ls.labels[u], s=8, alpha=0.7, label=ls.name)
        low, high = float(truth[u].min()), float(truth[u].max())
        ax.plot([low, high], [low, high], "k--", lw=1, label="y = x")
        ax.set(title=u, xlabel=f"ground-truth {u} label", ylabel="uni-label")
        ax.legend(fontsize="small")
    fig.suptitle("Uni-labels against ground truth")
    _save(fig, path)


def plot_differences(sets: Sequence[LabelSet], path: Path) -> None:
    fig = Figure(figsize=(5 * len(MODALITIES), 4.2), layout="constrained")
    diffs = {(ls.name, u): ls.labels[u] - ls.multimodal for ls in sets for u in MODALITIES}
    reach = max(float(np.abs(d).max()) for d in diffs.values()) or 1.0
    bins = np.linspace(-reach, reach, 41)
    for ax, u in zip(fig.subplots(1, len(MODALITIES)), MODALITIES, strict=True):
        for ls in sets:
            ax.hist(diffs[ls.name, u], bins=bins, histtype="step", lw=1.5, label=ls.name)
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set(title=u, xlabel=f"{u} uni-label - multimodal label", ylabel="clips")
        ax.legend(fontsize="small")
    fig.suptitle("How far the uni-labels move from the multimodal label")
    _save(fig, path)


def plot_tsne(sets: Sequence[LabelSet], path: Path, *, seed: int = 0) -> None:
    """One row per label set with representations, one column per modality."""
    fig = Figure(figsize=(4.6 * len(MODALITIES), 4.2 * len(sets)), layout="constrained")
    axes = np.asarray(fig.subplots(len(sets), len(MODALITIES), squeeze=False))
    # disable=None: a bar on a terminal only, so logs and tests stay clean.
    bar = tqdm(total=len(sets) * len(MODALITIES), desc="t-SNE", unit="panel", disable=None)
    for row, ls in zip(axes, sets, strict=True):
        assert ls.reps is not None
        n = len(ls.clip_id)
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(n, size=min(n, TSNE_MAX_POINTS // 2), replace=False))
        loss = {True: "with contrastive loss", False: "without contrastive loss",
                None: "contrastive loss unknown"}[ls.contrastive]
        for ax, u in zip(row, MODALITIES, strict=True):
            h, z = ls.reps["h"][u][keep], ls.reps["z"][u][keep]  # (k, d_u) each
            points = np.concatenate([h, z]).astype(np.float64)  # (2k, d_u)
            embedded = TSNE(n_components=2, perplexity=min(30.0, (len(points) - 1) / 3),
                            init="pca", max_iter=500,
                            random_state=seed).fit_transform(points)  # (2k, 2)
            k = len(keep)
            ax.scatter(*embedded[:k].T, s=6, alpha=0.7, label=f"h_{u[0]} (unimodal)")
            ax.scatter(*embedded[k:].T, s=6, alpha=0.7, label=f"z_{u[0]} (projected multimodal)")
            ax.set(title=f"{ls.name}: {u}, {loss}", xticks=[], yticks=[])
            ax.legend(fontsize="small")
            bar.update()
    bar.close()
    fig.suptitle(f"t-SNE of representations (up to {TSNE_MAX_POINTS // 2} clips per panel)")
    _save(fig, path)


def build_report(labels: Path, *, out_dir: Path, truth: Path | None = None,
                 compare: Sequence[Path] = ()) -> Report:
    """Read and check every input, then print-ready text, quality.json and the PNGs."""
    primary = read_label_set(labels)
    lines: list[str] = []
    if truth is not None and not attach_truth(primary, truth):
        lines.append(f"{truth}: the dataset has no per-modality ground truth "
                     f"({', '.join(TRUTH_KEYS.values())})")
    names = {primary.name}
    sets = [primary]
    for path in compare:
        name = path.stem if path.stem not in names else f"{path.stem}#{len(sets) + 1}"
        names.add(name)
        sets.append(align(primary, read_label_set(path, name)))

    report = Report(text="")
    lines.append(f"label sets: {', '.join(f'{ls.name} ({len(ls.clip_id)} clips)' for ls in sets)}")
    has_truth = primary.truth is not None
    if has_truth:
        report.quality = {ls.name: quality(ls) for ls in sets}
        lines += ["uni-label quality against ground truth (MAE lower is better, r higher):",
                  format_table([ls.name for ls in sets], list(report.quality.values()))]
    else:
        lines.append("no quality figures: uni-label quality needs ground truth (pass --truth "
                     "DATASET with per-modality labels, or a label file carrying truth_* "
                     "columns); writing the plots that do not need it")
    with_reps = [ls for ls in sets if ls.reps is not None]
    if not with_reps:
        lines.append("no t-SNE plot: no label file carries representations (a label-set .h5 "
                     f"with a '{REPS_GROUP}' group)")

    out_dir.mkdir(parents=True, exist_ok=True)
    if has_truth:
        quality_path = out_dir / QUALITY_FILE
        temp = quality_path.with_name(f".{quality_path.name}.tmp")
        temp.write_text(json.dumps(report.quality, indent=2))
        os.replace(temp, quality_path)
        plot_scatter(sets, out_dir / SCATTER_FILE)
        report.files += [quality_path, out_dir / SCATTER_FILE]
    plot_differences(sets, out_dir / HISTOGRAM_FILE)
    report.files.append(out_dir / HISTOGRAM_FILE)
    if with_reps:
        plot_tsne(with_reps, out_dir / TSNE_FILE)
        report.files.append(out_dir / TSNE_FILE)
    if primary.intervals is not None:
        from labelgen.reporting.uncertainty_plots import (
            UNCERTAINTY_FILE,
            coverage_figures,
            format_coverage,
            plot_uncertainty,
        )

        if has_truth:
            assert primary.truth is not None
            lines.append(format_coverage(coverage_figures(
                primary.labels, primary.truth, primary.intervals, primary.split), primary.level))
        plot_uncertainty(primary.labels, primary.truth, primary.intervals, primary.level,
                         out_dir / UNCERTAINTY_FILE)
        report.files.append(out_dir / UNCERTAINTY_FILE)
    lines.append("wrote " + ", ".join(str(p) for p in report.files))
    report.text = "\n".join(lines)
    return report

