"""Other generators' label files, read into per-clip arrays (`clip_id`, `text`, `audio`,
`vision`) plus a description of the source for the label set's provenance.

- `selfmm`: the pickle MMSA's Self-MM writes with `save_labels=True`
  (`<res_save_dir>/self_mm-<dataset>-labels.pkl`): `{epoch: {'fusion', 'text', 'audio',
  'vision': float arrays over the train split, 'ids': list}}`. Two quirks of MMSA's code:
  the arrays are indexed by the clip's position in the pickle's train split (the loader's
  `index`), but `ids` is the order the *shuffled* loader visited the clips in the last epoch,
  so `ids[i]` is not the clip of `text[i]`: we attach labels by pickle order and use `ids`
  only to check that the file belongs to the dataset. And a run on the CPU saves numpy views
  of the live label tensors, so every epoch's arrays alias the final ones: all epochs read
  alike, and only the last is real. Self-MM labels the train split only.
- `csv`: a header with `clip_id,text,audio,vision` (other columns are ignored), one clip per
  line.
- `cmc`: refused, with the reason (see `CMC_REFUSAL`).

Files are hostile input: pickles go through the restricted unpickler only."""

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mugcore.data.safe_pickle import load_path
from mugcore.data.schema import MODALITIES
from mugcore.errors import UserError, shorten
from storage.files import sha256_file

FORMATS = ("selfmm", "csv", "cmc")
SELFMM_KEYS = {"fusion": "multimodal", "text": "text", "audio": "audio", "vision": "vision"}
CSV_COLUMNS = ("clip_id", "text", "audio", "vision")
CMC_REFUSAL = (
    "CMC's pseudo-label pickles cannot be imported as uni-labels: they hold, per video id, a "
    "distribution over 3 classes (negative, neutral, positive) for each modality, stored as "
    "pickled torch tensors, not a regression value in [-H, H]. Turning them into regression "
    "labels would need a mapping CMC does not define; if you choose one, write the values as "
    "CSV (clip_id,text,audio,vision) and import that")


@dataclass
class LabelFile:
    """Labels read from a file: arrays over the clips it labels, and where they came from."""

    labels: dict[str, np.ndarray]
    source: dict[str, Any]
    unlabelled_splits: tuple[str, ...] = ()  # splits the format never labels
    notes: list[str] = field(default_factory=list)


def format_for(path: Path, given: str | None) -> str:
    if given is not None:
        if given not in FORMATS:
            raise UserError(f"--format {given!r}: expected one of {', '.join(FORMATS)}")
        return given
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".pkl", ".pickle"):
        return "selfmm"
    raise UserError(f"{path.name}: cannot tell the format from the name; pass --format "
                    f"({', '.join(FORMATS)})")


def _source(path: Path, fmt: str, shown: str) -> dict[str, Any]:
    return {"format": fmt, "file": shown, "file_sha256": sha256_file(path)}


def read_csv(path: Path, *, shown: str | None = None) -> LabelFile:
    shown = shown or path.name
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{shown}: not UTF-8 text at byte {exc.start}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise UserError(f"{shown}: empty file; expected a header {','.join(CSV_COLUMNS)}")
    header = [h.strip() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise UserError(f"{shown}: header lacks column(s) {', '.join(missing)} (got "
                        f"{shorten(','.join(header), 120)}); expected {','.join(CSV_COLUMNS)}")
    at = {c: header.index(c) for c in CSV_COLUMNS}
    ids: list[str] = []
    values: dict[str, list[float]] = {m: [] for m in MODALITIES}
    for line, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise UserError(f"{shown} line {line}: {len(row)} field(s), the header has "
                            f"{len(header)}")
        ids.append(row[at["clip_id"]])
        for m in MODALITIES:
            cell = row[at[m]].strip()
            try:
                values[m].append(float(cell))
            except ValueError:
                raise UserError(f"{shown} line {line}, column {m}: {shorten(cell)} is not a "
                                "number") from None
    if not ids:
        raise UserError(f"{shown}: no rows under the header")
    labels = {"clip_id": np.array(ids, dtype=str),
              **{m: np.array(values[m], dtype=np.float64) for m in MODALITIES}}
    source = _source(path, "csv", shown) | {"ignored_columns": [h for h in header
                                                               if h not in CSV_COLUMNS]}
    return LabelFile(labels=labels, source=source)


def read_selfmm(path: Path, train_ids: Sequence[str], train_multimodal: np.ndarray, *,
                epoch: int | None = None, shown: str | None = None) -> LabelFile:
    """Self-MM's `save_labels` pickle against the dataset's train split (ids and multimodal
    labels in pickle order); `epoch` None takes the last one saved."""
    shown = shown or path.name
    epochs = _load_selfmm(path, shown)
    chosen = max(epochs) if epoch is None else epoch
    if chosen not in epochs:
        raise UserError(f"--epoch {epoch}: {shown} holds epochs {_span(epochs)}")
    saved = epochs[chosen]
    n = len(train_ids)
    for key in SELFMM_KEYS:
        if len(saved[key]) != n:
            raise UserError(f"{shown} epoch {chosen}/{key}: {len(saved[key])} labels, the "
                            f"dataset's train split has {n} clips (Self-MM labels the train "
                            "split, in the pickle's order)")
    saved_ids = [str(c) for c in saved["ids"]]
    if sorted(saved_ids) != sorted(str(c) for c in train_ids):
        unknown = sorted(set(saved_ids) - {str(c) for c in train_ids})[:5]
        raise UserError(f"{shown} epoch {chosen}/ids: not the dataset's train clips "
                        f"({len(saved_ids)} ids, e.g. unknown {unknown}); was the file made "
                        "from this dataset?")
    # `fusion` is never updated by Self-MM: it is the train split's multimodal label in pickle
    # order, so it checks the order we attach the uni-labels in.
    off = np.flatnonzero(~np.isclose(saved["fusion"].astype(np.float64),
                                     np.asarray(train_multimodal, dtype=np.float64), atol=1e-4))
    if len(off):
        raise UserError(f"{shown} epoch {chosen}/fusion: differs from the train split's "
                        f"multimodal labels at {len(off)} position(s), e.g. clip "
                        f"{train_ids[int(off[0])]!r}; the labels were saved for another "
                        "ordering of the train split")
    notes = ["labels attached in the train split's pickle order; the saved 'ids' (the "
             "shuffled loader's order of the last epoch) were checked as a set only"]
    aliased = _aliased(epochs)
    if aliased:
        notes.append(f"all {len(epochs)} saved epochs hold identical labels: a CPU run, "
                     "where MMSA saved views of the live label tensors, so every epoch shows "
                     "the final labels; only the last epoch is real")
        if chosen != max(epochs):
            raise UserError(f"--epoch {chosen}: {shown} comes from a CPU run whose saved epochs "
                            f"all alias the last one ({max(epochs)}); epoch {chosen}'s labels "
                            "were never stored")
    labels = {"clip_id": np.array([str(c) for c in train_ids], dtype=str),
              **{m: saved[m].astype(np.float64) for m in MODALITIES}}
    source = _source(path, "selfmm", shown) | {
        "epoch": chosen, "epochs_saved": sorted(epochs), "cpu_aliased_epochs": aliased,
        "splits_labelled": ["train"]}
    return LabelFile(labels=labels, source=source, unlabelled_splits=("valid", "test"),
                     notes=notes)


def read_cmc(path: Path) -> LabelFile:
    raise UserError(f"{path.name}: {CMC_REFUSAL}")


def _load_selfmm(path: Path, shown: str) -> dict[int, dict[str, Any]]:
    data = load_path(path, shown=shown)
    if not isinstance(data, dict) or not data:
        raise UserError(f"{shown}: top level is {type(data).__name__}, expected Self-MM's "
                        "{epoch: {'fusion', 'text', 'audio', 'vision', 'ids'}}")
    epochs: dict[int, dict[str, Any]] = {}
    for key, saved in data.items():
        if not isinstance(key, int) or isinstance(key, bool) or key < 1:
            raise UserError(f"{shown}: key {shorten(key)} is not an epoch number")
        if not isinstance(saved, dict):
            raise UserError(f"{shown} epoch {key}: a {type(saved).__name__}, expected a dict")
        for name in (*SELFMM_KEYS, "ids"):
            if name not in saved:
                raise UserError(f"{shown} epoch {key}: no {name!r}")
        clean = {"ids": saved["ids"]}
        if not isinstance(saved["ids"], list | tuple | np.ndarray):
            raise UserError(f"{shown} epoch {key}/ids: expected a list of clip ids")
        for name in SELFMM_KEYS:
            value = saved[name]
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
                raise UserError(f"{shown} epoch {key}/{name}: expected a numeric array")
            clean[name] = value.reshape(-1)
        epochs[key] = clean
    return epochs


def _aliased(epochs: dict[int, dict[str, Any]]) -> bool:
    if len(epochs) < 2:
        return False
    last = epochs[max(epochs)]
    return all(np.array_equal(saved[m], last[m]) for saved in epochs.values()
               for m in MODALITIES)


def _span(epochs: dict[int, Any]) -> str:
    keys = sorted(epochs)
    return f"{keys[0]}..{keys[-1]}" if len(keys) > 1 else str(keys[0])
