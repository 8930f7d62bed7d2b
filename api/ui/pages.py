"""The explorer's data pages: datasets and their label sets, one label set, two compared.

Every page reads label arrays through the store's bulk read (cached per label set), so a page
of a 22,000-clip label set sorts and filters in numpy and renders only the rows it shows."""

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import StoreDep
from api.errors import ApiError
from api.schemas import IdPath
from api.ui.auth import ui_reader
from api.ui.clips import (
    DatasetExtras,
    ExtrasCache,
    distances,
    keep_mask,
    moved,
    page_positions,
)
from api.ui.rendering import HtmlRoute, page
from api.ui.summaries import gate_summary, quality_rows, uncertainty_summary
from api.ui.svg import density, histogram
from mugcore.data.schema import MODALITIES, SPLITS
from storage import LabelSetInfo, LabelStore
from storage.uncertainty import UNCERTAINTY_KEYS

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False,
                   dependencies=[Depends(ui_reader)])

PROVENANCE_SECTIONS = ("gate", "selection", "uncertainty", "ensemble")
SplitFilter = Annotated[Literal["all", "train", "valid", "test"], Query()]
TextFilter = Annotated[str, Query(max_length=200)]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]
PerPage = Annotated[int, Query(ge=1, le=500)]
Order = Annotated[Literal["desc", "asc"], Query()]
ClipSort = Literal["moved_any", "moved_text", "moved_audio", "moved_vision", "std_text",
                   "std_audio", "std_vision", "position"]
CompareSort = Literal["diff_any", "diff_text", "diff_audio", "diff_vision", "position"]

EXTRAS = ExtrasCache()


@router.get("/")
def datasets_page(request: Request, store: StoreDep) -> Response:
    label_sets: dict[int, list[dict[str, Any]]] = {}
    for ls in store.list_label_sets():
        label_sets.setdefault(ls.dataset_id, []).append({
            "info": ls, "quality": quality_rows(ls.quality),
            "gate": gate_summary(ls.provenance.get("gate")),
            "uncertainty": uncertainty_summary(ls.provenance.get("uncertainty"))})
    return page(request, "datasets.html", {"datasets": store.list_datasets(),
                                           "label_sets": label_sets})


@router.get("/label-sets/{label_set_id}")
def label_set_page(request: Request, label_set_id: IdPath, store: StoreDep,
                   split: SplitFilter = "all", q: TextFilter = "",
                   sort: Annotated[ClipSort, Query()] = "moved_any",
                   order: Order = "desc", page_no: Annotated[PageNo, Query(alias="page")] = 1,
                   per_page: PerPage = 50,
                   moved_by: Annotated[float | None, Query(alias="moved", gt=0, le=100)] = None,
                   ) -> Response:
    info = store.get_label_set(label_set_id)
    dataset = store.get_dataset(info.dataset_id)
    arrays = store.read_labels(info.id)
    extras = EXTRAS.get(store, dataset)
    has_uncertainty = UNCERTAINTY_KEYS[0] in arrays
    if sort.startswith("std_") and not has_uncertainty:
        raise ApiError(422, f"query.sort: label set {info.id} carries no per-clip uncertainty "
                       "to sort by", field="query.sort")
    bound = dataset.label_bound
    threshold = moved_by if moved_by is not None else round(bound / 6, 3)
    distance = moved(arrays)
    score = None if sort == "position" else (
        distance[sort.removeprefix("moved_")] if sort.startswith("moved_")
        else arrays[f"{sort.removeprefix('std_')}_std"])
    keep = keep_mask(arrays["split"], extras, split=None if split == "all" else split, text=q)
    positions, total = page_positions(keep, score, descending=order == "desc", page=page_no,
                                      per_page=per_page)
    rows = [_clip_row(arrays, extras, int(i), has_uncertainty) for i in positions]
    return page(request, "label_set.html", {
        "ls": info, "dataset": dataset, "provenance": _sections(info),
        "quality": quality_rows(info.quality), "plots": _plots(arrays, extras, bound),
        "moved": _moved_fractions(arrays, distance, threshold), "threshold": threshold,
        "has_uncertainty": has_uncertainty, "rows": rows, "total": total,
        "query": {"split": split, "q": q, "sort": sort, "order": order, "page": page_no,
                  "per_page": per_page},
        "pages": max(1, -(-total // per_page)), "sorts": _sort_labels(has_uncertainty),
        "splits": [s for s in SPLITS if s in dataset.split_sizes]})


def _sections(info: LabelSetInfo) -> dict[str, Any]:
    return {k: info.provenance[k] for k in PROVENANCE_SECTIONS if k in info.provenance}


def _sort_labels(has_uncertainty: bool) -> dict[str, str]:
    labels = {"moved_any": "|uni − y_M|, largest modality",
              **{f"moved_{m}": f"|{m} − y_M|" for m in MODALITIES}}
    if has_uncertainty:
        labels |= {f"std_{m}": f"{m} uncertainty (std)" for m in MODALITIES}
    return labels | {"position": "dataset order"}


def _clip_row(arrays: dict[str, np.ndarray], extras: DatasetExtras, i: int,
              has_uncertainty: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"clip_id": str(arrays["clip_id"][i]), "split": str(arrays["split"][i]),
                           "raw_text": extras.raw_text[i],
                           "multimodal": float(arrays["multimodal"][i]), "labels": {}}
    for m in MODALITIES:
        cell: dict[str, Any] = {"value": float(arrays[m][i])}
        if has_uncertainty:
            cell |= {s: float(arrays[f"{m}_{s}"][i]) for s in ("std", "lower", "upper")}
        row["labels"][m] = cell
    return row


def _limit(values: np.ndarray, bound: float) -> float:
    """A symmetric axis limit for differences: the largest one, rounded up, within [H/10, 2H]."""
    largest = float(np.abs(values).max()) if values.size else 0.0
    step = bound / 10
    return float(min(2 * bound, max(step, np.ceil(largest / step) * step)))


def _plots(arrays: dict[str, np.ndarray], extras: DatasetExtras,
           bound: float) -> list[dict[str, Any]]:
    y_m = arrays["multimodal"].astype(np.float64)
    out = []
    for m in MODALITIES:
        uni = arrays[m].astype(np.float64)
        lim = _limit(uni - y_m, bound)
        plots = [histogram(uni - y_m, -lim, lim, title=f"{m}: uni-label − y_M",
                           xlabel=f"{m} − y_M"),
                 density(y_m, uni, -bound, bound, title=f"{m} vs y_M", xlabel="y_M",
                         ylabel=m)]
        if extras.truth is not None:
            plots.append(density(extras.truth[m], uni, -bound, bound, title=f"{m} vs truth",
                                 xlabel=f"truth ({m})", ylabel=m))
        out.append({"modality": m, "svgs": plots})
    return out


def _moved_fractions(arrays: dict[str, np.ndarray], distance: dict[str, np.ndarray],
                     threshold: float) -> list[dict[str, Any]]:
    """Per modality, the fraction of clips (all, and per split) moved by more than threshold."""
    masks = {"all": np.ones(len(arrays["split"]), dtype=bool)}
    masks |= {s: arrays["split"] == s for s in SPLITS}
    return [{"modality": m, **{k: float((distance[m][mask] > threshold).mean())
                                if mask.any() else None for k, mask in masks.items()}}
            for m in MODALITIES]


@router.get("/compare")
def compare_page(request: Request, store: StoreDep,
                 a: Annotated[int, Query(ge=1, description="label-set id")],
                 b: Annotated[str, Query(pattern=r"^(truth|[1-9][0-9]{0,18})$",
                                         description="label-set id, or 'truth'")],
                 split: SplitFilter = "all", q: TextFilter = "",
                 sort: Annotated[CompareSort, Query()] = "diff_any",
                 order: Order = "desc", page_no: Annotated[PageNo, Query(alias="page")] = 1,
                 per_page: PerPage = 50) -> Response:
    first = store.get_label_set(a)
    dataset = store.get_dataset(first.dataset_id)
    extras = EXTRAS.get(store, dataset)
    left = store.read_labels(first.id)
    right, right_name = _other_side(store, dataset.id, extras, b)
    diff = distances(left, right)
    score = None if sort == "position" else diff[sort.removeprefix("diff_")]
    keep = keep_mask(left["split"], extras, split=None if split == "all" else split, text=q)
    positions, total = page_positions(keep, score, descending=order == "desc", page=page_no,
                                      per_page=per_page)
    bound = dataset.label_bound
    left_name = f"label set {first.id} ({first.method})"
    summary = [{"modality": m, "mae": float(diff[m][keep].mean()) if keep.any() else None,
                "corr": _corr(left[m][keep], right[m][keep]),
                "svg": density(np.asarray(left[m], dtype=np.float64), right[m], -bound, bound,
                               title=m, xlabel=left_name, ylabel=right_name)}
               for m in MODALITIES]
    rows = [{"clip_id": str(left["clip_id"][i]), "split": str(left["split"][i]),
             "raw_text": extras.raw_text[i], "multimodal": float(left["multimodal"][i]),
             "pairs": {m: (float(left[m][i]), float(right[m][i]), float(diff[m][i]))
                       for m in MODALITIES}} for i in positions]
    choices = store.list_label_sets(dataset.id)
    return page(request, "compare.html", {
        "a": first, "b": b, "left_name": left_name, "right_name": right_name,
        "dataset": dataset, "summary": summary, "rows": rows, "total": total,
        "query": {"split": split, "q": q, "sort": sort, "order": order, "page": page_no,
                  "per_page": per_page},
        "pages": max(1, -(-total // per_page)), "choices": choices,
        "sorts": {"diff_any": "largest disagreement, any modality",
                  **{f"diff_{m}": f"|{m}: a − b|" for m in MODALITIES},
                  "position": "dataset order"},
        "splits": [s for s in SPLITS if s in dataset.split_sizes]})


def _other_side(store: LabelStore, dataset_id: int, extras: DatasetExtras,
                b: str) -> tuple[dict[str, np.ndarray], str]:
    """The labels to compare against: another label set of the dataset, or its own truth."""
    if b == "truth":
        if extras.truth is None:
            raise ApiError(422, "query.b: this dataset has no per-modality truth to compare "
                           "with", field="query.b")
        return {m: extras.truth[m] for m in MODALITIES}, "dataset truth"
    other = store.get_label_set(int(b))
    if other.dataset_id != dataset_id:
        raise ApiError(422, f"query.b: label set {other.id} belongs to dataset "
                       f"{other.dataset!r}; compare label sets of one dataset", field="query.b")
    arrays = store.read_labels(other.id)
    return ({m: arrays[m].astype(np.float64) for m in MODALITIES},
            f"label set {other.id} ({other.method})")


def _corr(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])
