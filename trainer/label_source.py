"""Where stage 3 gets its dataset features and uni-labels: a local store or the HTTP API.

One interface (`LabelSource`), two implementations: `LocalStoreSource` reads a store
directory (or PostgreSQL URL) through `storage.LabelStore`; `HttpSource` talks to the API
with a bearer token. Both return the same `UniLabels`, which `align_targets` maps onto the
dataset's clips, with an error that lists every clip the labels do not cover.

`--label-set` takes a label-set id, `latest` (the newest label set of the dataset) or
`ground-truth` (the dataset's own per-modality labels, e.g. SIMS or synthetic data).
"""

import io
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mugcore.data.io import load_dataset
from mugcore.data.schema import MODALITIES, SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.data.validate import check_dataset
from mugcore.errors import UserError
from mugcore.ids import plain_int

GROUND_TRUTH = "ground-truth"
LATEST = "latest"
MAX_LISTED = 10  # how many missing clip ids an error message spells out


@dataclass
class UniLabels:
    """One label set: per clip its id, split, multimodal label and one label per modality."""

    clip_id: np.ndarray
    split: np.ndarray
    multimodal: np.ndarray
    per_modality: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)  # id, method, provenance, quality
    std: dict[str, np.ndarray] | None = None  # per-clip uncertainty, when the set carries it

    @classmethod
    def from_arrays(cls, arrays: Any, info: dict[str, Any]) -> "UniLabels":
        """From a mapping with keys clip_id, split, multimodal, text, audio, vision."""
        missing = [k for k in ("clip_id", "split", "multimodal", *MODALITIES) if k not in arrays]
        if missing:
            raise UserError(f"label set {info.get('id')}: missing arrays {missing}")
        std = ({m: np.asarray(arrays[f"{m}_std"], dtype=np.float32) for m in MODALITIES}
               if all(f"{m}_std" in arrays for m in MODALITIES) else None)
        return cls(clip_id=np.asarray(arrays["clip_id"]).astype(str),
                   split=np.asarray(arrays["split"]).astype(str),
                   multimodal=np.asarray(arrays["multimodal"], dtype=np.float32),
                   per_modality={m: np.asarray(arrays[m], dtype=np.float32) for m in MODALITIES},
                   info=info, std=std)

    @classmethod
    def ground_truth(cls, ds: MMSADataset) -> "UniLabels":
        if not ds.has_truth:
            raise UserError("--label-set ground-truth: the dataset has no per-modality labels "
                            f"({', '.join(TRUTH_KEYS.values())} in every split)")
        splits = [s for s in SPLITS if s in ds.splits]

        def cat(key: str) -> np.ndarray:
            return np.concatenate([np.asarray(ds.splits[s][key]).reshape(-1) for s in splits])

        return cls(clip_id=cat("id").astype(str),
                   split=np.concatenate([[s] * ds.size(s) for s in splits]).astype(str),
                   multimodal=cat("regression_labels").astype(np.float32),
                   per_modality={m: cat(TRUTH_KEYS[m]).astype(np.float32) for m in MODALITIES},
                   info={"id": GROUND_TRUTH, "method": GROUND_TRUTH})


def _rows(ds: MMSADataset, labels: UniLabels, split: str) -> np.ndarray:
    """Positions in `labels` of the clips of `split`, in the dataset's clip order."""
    position = {cid: i for i, cid in enumerate(labels.clip_id)}
    ids = np.asarray(ds.splits[split]["id"]).astype(str)
    missing = [cid for cid in ids if cid not in position]
    if missing:
        shown = ", ".join(missing[:MAX_LISTED])
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        raise UserError(f"label set {labels.info.get('id')}: {len(missing)} of {len(ids)} "
                        f"{split} clips of the dataset have no uni-labels: {shown}{more}")
    return np.fromiter((position[cid] for cid in ids), dtype=np.int64, count=len(ids))


def align_targets(ds: MMSADataset, labels: UniLabels, split: str) -> dict[str, np.ndarray]:
    """The uni-labels of `split`, in the dataset's clip order; every clip must be covered."""
    rows = _rows(ds, labels, split)
    return {m: labels.per_modality[m][rows] for m in MODALITIES}


def uncertainty_weights(ds: MMSADataset, labels: UniLabels,
                        split: str) -> dict[str, np.ndarray]:
    """Per modality, loss weights w = 1 / (1 + (std / median std)^2) over `split`'s clips,
    scaled to mean 1 (so beta keeps its meaning): a clip of median uncertainty counts half as
    much as a certain one, and no weight exceeds twice the mean of a flat set."""
    if labels.std is None:
        raise UserError(f"--weight-by-uncertainty: label set {labels.info.get('id')} "
                        f"(method {labels.info.get('method')}) carries no per-clip uncertainty")
    rows = _rows(ds, labels, split)
    out = {}
    for m in MODALITIES:
        std = labels.std[m][rows].astype(np.float64)
        scale = max(float(np.median(std)), 1e-6)
        w = 1.0 / (1.0 + (std / scale) ** 2)
        out[m] = (w / w.mean()).astype(np.float32)
    return out


def check_same_clips(ds: MMSADataset, reference_ids: dict[str, list[str]], source: str) -> None:
    """--data must hold the store's dataset: the same clip ids in every split."""
    problems = []
    for split, ids in reference_ids.items():
        have = set(np.asarray(ds.splits.get(split, {}).get("id", [])).astype(str))
        missing = [cid for cid in ids if cid not in have]
        if missing:
            shown = ", ".join(missing[:MAX_LISTED])
            more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
            problems.append(f"{split}: {len(missing)} clips missing: {shown}{more}")
    if problems:
        raise UserError(f"--data {source}: clip ids do not match the store's dataset: "
                        + "; ".join(problems))


class LabelSource(ABC):
    """A dataset (features) and its label sets, from wherever they are stored."""

    def __init__(self, dataset: str, data_file: Path | None) -> None:
        self.dataset_ref = dataset
        self.data_file = data_file

    @abstractmethod
    def dataset_info(self) -> dict[str, Any]:
        """id, name, label_bound, ... of the dataset."""

    @abstractmethod
    def _store_features(self) -> MMSADataset:
        """The dataset's features as the store holds them."""

    @abstractmethod
    def _store_clip_ids(self) -> dict[str, list[str]]:
        """split -> clip ids, as the store knows them (to check --data against)."""

    @abstractmethod
    def _read_label_set(self, label_set: str) -> UniLabels:
        """A stored label set by id, or the newest one for `latest`."""

    def load_dataset(self) -> MMSADataset:
        if self.data_file is None:
            return self._store_features()
        ds = load_dataset(self.data_file, validate=False)
        # An MMSA pickle carries no attributes; the store knows the dataset's label bound.
        ds.attrs.setdefault("label_bound", float(self.dataset_info()["label_bound"]))
        check_dataset(ds, str(self.data_file))
        check_same_clips(ds, self._store_clip_ids(), str(self.data_file))
        return ds

    def load_labels(self, label_set: str, ds: MMSADataset) -> UniLabels:
        if label_set == GROUND_TRUTH:
            return UniLabels.ground_truth(ds)
        return self._read_label_set(label_set)


class LocalStoreSource(LabelSource):
    """A store directory (SQLite + HDF5 files) or a PostgreSQL URL with `files`."""

    def __init__(self, location: str, dataset: str, *, data_file: Path | None = None,
                 files: str | None = None) -> None:
        from storage import LabelStore

        super().__init__(dataset, data_file)
        self.store = LabelStore.open(location, files=files, create=False)  # reads only
        self._dataset = self.store.get_dataset(dataset)

    def dataset_info(self) -> dict[str, Any]:
        return self._dataset.to_dict()

    def _store_features(self) -> MMSADataset:
        return self.store.load_features(self._dataset.id)

    def _store_clip_ids(self) -> dict[str, list[str]]:
        # the ids alone: loading the store's whole features file beside --data held the
        # dataset twice (16.2 GB for a MOSEI-sized set, issue 18)
        from mugcore.data.h5format import read_h5_keys

        splits = read_h5_keys(self.store.features_path(self._dataset.id), ["id"])
        return {s: list(np.asarray(v["id"]).astype(str)) for s, v in splits.items() if "id" in v}

    def _read_label_set(self, label_set: str) -> UniLabels:
        if label_set != LATEST:
            _label_set_id(label_set)  # a clear error for anything but an id
        info = self.store.get_label_set(label_set, dataset=self._dataset.id)
        return UniLabels.from_arrays(self.store.read_labels(info.id), info.to_dict())


class HttpSource(LabelSource):
    """The API at `url`; features come from --data or are downloaded once into a cache."""

    def __init__(self, url: str, dataset: str, *, data_file: Path | None = None,
                 token: str | None = None, cache_dir: Path | None = None,
                 timeout_s: float = 60.0) -> None:
        import httpx

        super().__init__(dataset, data_file)
        # One INFO line per request drowns the progress bars; errors still surface as ours.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        token = token or os.environ.get("MUG_READ_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self.cache_dir = Path(cache_dir or Path.home() / ".cache" / "mug")
        self._dataset = self._find_dataset(dataset)

    def _find_dataset(self, dataset: str) -> dict[str, Any]:
        if plain_int(dataset) is not None:
            return self._get_json(f"/v1/datasets/{dataset}")
        for item in self._get_json("/v1/datasets")["items"]:
            if item["name"] == dataset:
                return item
        raise UserError(f"--dataset {dataset}: no dataset of that name at {self.url}")

    def _get(self, path: str, **params: Any) -> Any:
        import httpx

        try:
            response = self.client.get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise UserError(f"--store {self.url}: cannot reach the API ({exc})") from None
        if response.status_code >= 400:
            detail = _error_detail(response)
            raise UserError(f"GET {self.url}{path}: HTTP {response.status_code}: {detail}")
        return response

    def _get_json(self, path: str, **params: Any) -> Any:
        return self._get(path, **params).json()

    def dataset_info(self) -> dict[str, Any]:
        return dict(self._dataset)

    def _store_features(self) -> MMSADataset:
        return load_dataset(self._cached_features())

    def _cached_features(self) -> Path:
        """Download the dataset's HDF5 file once; keyed by content hash, so never stale."""
        key = self._dataset.get("content_hash") or f"dataset-{self._dataset['id']}"
        path = self.cache_dir / "features" / f"{key}.h5"
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        endpoint = f"/v1/datasets/{self._dataset['id']}/features"
        try:
            with self.client.stream("GET", endpoint) as response:
                if response.status_code == 404:
                    raise UserError(f"{self.url}{endpoint}: the API serves no feature download; "
                                    "pass --data FILE, a local copy of the dataset")
                if response.status_code >= 400:
                    response.read()
                    raise UserError(f"GET {self.url}{endpoint}: HTTP {response.status_code}: "
                                    f"{_error_detail(response)}")
                with open(tmp, "wb") as f:
                    for chunk in response.iter_bytes():
                        f.write(chunk)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def _store_clip_ids(self) -> dict[str, list[str]]:
        """The API lists a dataset's clips through its label sets (each covers every clip)."""
        try:
            labels = self._read_label_set(LATEST)
        except UserError:
            raise UserError(f"--data: cannot check its clip ids against dataset "
                            f"{self.dataset_ref} at {self.url}: the dataset has no label set "
                            "yet, and the API lists clips only through label sets") from None
        out: dict[str, list[str]] = {}
        for cid, split in zip(labels.clip_id.tolist(), labels.split.tolist(), strict=True):
            out.setdefault(split, []).append(cid)
        return out

    def _read_label_set(self, label_set: str) -> UniLabels:
        params: dict[str, Any] = {"format": "npz"}
        if label_set != LATEST:
            params["label_set"] = _label_set_id(label_set)
        response = self._get(f"/v1/datasets/{self._dataset['id']}/labels", **params)
        with np.load(io.BytesIO(response.content), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        set_id = response.headers.get("X-Label-Set-Id") or params.get("label_set")
        return UniLabels.from_arrays(arrays, self._get_json(f"/v1/label-sets/{set_id}"))


def open_source(store: str, dataset: str, *, data_file: Path | None = None,
                token: str | None = None, cache_dir: Path | None = None,
                files: str | None = None) -> LabelSource:
    """An http(s) URL is the API; anything else is a local store (directory or database URL)."""
    if store.startswith(("http://", "https://")):
        return HttpSource(store, dataset, data_file=data_file, token=token, cache_dir=cache_dir)
    return LocalStoreSource(store, dataset, data_file=data_file, files=files)


def _label_set_id(label_set: str) -> int:
    number = plain_int(label_set)
    if number is None:
        raise UserError(f"--label-set {label_set!r}: expected a label-set id, "
                        f"'{LATEST}' or '{GROUND_TRUTH}'")
    return number


def _error_detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or body)
    return str(body)
