"""Label sets: provenance (method, options, seed, versions, timings) and quality figures."""

from typing import Any

from fastapi import APIRouter

from api.deps import ReadAccess, StoreDep
from api.schemas import IdPath, LabelSetOut

router = APIRouter(prefix="/v1/label-sets", tags=["label sets"])


@router.get("/{label_set_id}", response_model=LabelSetOut, dependencies=[ReadAccess],
            operation_id="get_label_set")
def get_label_set(label_set_id: IdPath, store: StoreDep) -> dict[str, Any]:
    out = store.get_label_set(label_set_id).to_dict()
    out.pop("file")  # a server-side path
    return out
