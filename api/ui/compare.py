"""The explorer's compare page: every chosen label set of a dataset against copy and truth in
one table (`labelgen compare`'s figures), then two of them (or one and the truth) clip by clip.

`a` and `b` pick the pair; `set` (repeatable) picks the label sets of the table, by default
every label set of the dataset, up to `MAX_SETS`."""

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import StoreDep
from api.errors import ApiError
from api.ui.auth import ui_reader
from api.ui.clips import DatasetExtras, distances, keep_mask, page_positions
from api.ui.rendering import HtmlRoute, page
from api.ui.svg import density
from labelgen.interop.compare import compare_rows, default_threshold
from mugcore.data.schema import MODALITIES, SPLITS
from mugcore.metrics import pearson
from storage import LabelSetInfo, LabelStore

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False,
                   dependencies=[Depends(ui_reader)])

# A table of more sets is unreadable, and each costs a label-set read.
MAX_SETS = 12
SplitFilter = Annotated[Literal["all", "train", "valid", "test"], Query()]
CompareSort = Literal["diff_any", "diff_text", "diff_audio", "diff_vision", "position"]


@router.get("/compare")
def compare_page(request: Request, store: StoreDep,
                 a: Annotated[int, Query(ge=1, description="label-set id")],
                 b: Annotated[str, Query(pattern=r"^(truth|[1-9][0-9]{0,18})$",
                                         description="label-set id, or 'truth'")],
                 sets: Annotated[list[int], Query(alias="set", max_length=MAX_SETS,
                                                  description="label sets of the table")] = (),  # type: ignore[assignment]
                 split: SplitFilter = "all", q: Annotated[str, Query(max_length=200)] = "",
                 sort: Annotated[CompareSort, Query()] = "diff_any",
                 order: Annotated[Literal["desc", "asc"], Query()] = "desc",
                 page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
                 per_page: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    from api.ui.pages import EXTRAS  # one cache of raw texts and truth for every page

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
    chosen = _table_sets(choices, sets, dataset.id)
    threshold = default_threshold(bound)
    table = compare_rows([(str(i.id), i.method, store.read_labels(i.id)) for i in chosen],
                         multimodal=left["multimodal"], truth=extras.truth,
                         threshold=threshold, mask=keep)
    return page(request, "compare.html", {
        "a": first, "b": b, "left_name": left_name, "right_name": right_name,
        "dataset": dataset, "summary": summary, "rows": rows, "total": total,
        "query": {"split": split, "q": q, "sort": sort, "order": order, "page": page_no,
                  "per_page": per_page},
        "pages": max(1, -(-total // per_page)), "choices": choices,
        "table": table, "table_ids": [i.id for i in chosen], "threshold": threshold,
        "sorts": {"diff_any": "largest disagreement, any modality",
                  **{f"diff_{m}": f"|{m}: a − b|" for m in MODALITIES},
                  "position": "dataset order"},
        "splits": [s for s in SPLITS if s in dataset.split_sizes]})


def _table_sets(choices: list[LabelSetInfo], wanted: list[int],
                dataset_id: int) -> list[LabelSetInfo]:
    """The label sets of the table: those asked for (each of this dataset), else all."""
    if not wanted:
        return choices[-MAX_SETS:]
    by_id = {i.id: i for i in choices}
    foreign = [w for w in wanted if w not in by_id]
    if foreign:
        raise ApiError(422, f"query.set: label set {foreign[0]} is not one of dataset "
                       f"{dataset_id}'s", field="query.set")
    return [by_id[w] for w in dict.fromkeys(wanted)]


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
    return pearson(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
