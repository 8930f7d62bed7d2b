"""The explorer's data pages: datasets and their label sets, one label set (the compare page
is api/ui/compare.py).

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
    keep_mask,
    moved,
    page_positions,
)
from api.ui.rendering import HtmlRoute, page
from api.ui.summaries import gate_summary, quality_rows, trust_rows, uncertainty_summary
from api.ui.svg import density, histogram
from mugcore.data.schema import MODALITIES, SPLITS
from storage import LabelSetInfo
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
    quality = quality_rows(info.quality)
    uncertainty = info.provenance.get("uncertainty")
    return page(request, "label_set.html", {
        "ls": info, "dataset": dataset, "provenance": _sections(info),
        "summary": trust_rows(info.provenance, quality, arrays),
        "level": uncertainty.get("level") if isinstance(uncertainty, dict) else None,
        "quality": quality, "plots": _plots(arrays, extras, bound),
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
        # Every figure covers all clips of every split; each title says so.
        plots = [histogram(uni - y_m, -lim, lim, title=f"{m} − y_M · all clips",
                           xlabel=f"uni-label {m} − y_M"),
                 density(y_m, uni, -bound, bound, title=f"{m} vs y_M · all clips",
                         xlabel="y_M", ylabel=m)]
        if extras.truth is not None:
            plots.append(density(extras.truth[m], uni, -bound, bound,
                                 title=f"{m} vs truth · all clips", xlabel=f"truth ({m})",
                                 ylabel=m))
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
