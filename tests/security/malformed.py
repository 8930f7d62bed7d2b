"""Malformed and hostile dataset files of the second probe (issue 19): files whose reading
raised inside h5py (and froze the server), strings that escaped the memory budget, unbounded
clip ids and attributes. Each builder takes a valid project HDF5 file (or a dataset, for
pickles) and writes a variant; `WORDS` says what its refusal names."""

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from mugcore.data.schema import MMSADataset

_STR = h5py.string_dtype("utf-8")


def _edit(valid: Path, out: Path, edit: Callable[[h5py.File], None]) -> Path:
    shutil.copy(valid, out)
    with h5py.File(out, "r+") as f:
        edit(f)
    return out


def _replace_strings(f: h5py.File, where: str, values: list[bytes]) -> None:
    attrs = dict(f[where].attrs)
    del f[where]
    f.create_dataset(where, data=np.array(values, dtype=object), dtype=_STR)
    f[where].attrs.update(attrs)


def _ids(f: h5py.File) -> list[bytes]:
    return [s.encode() for s in f["train/id"].asstr()[()]]


def _set_id(f: h5py.File, value: bytes) -> None:
    ids = _ids(f)
    ids[1] = value
    _replace_strings(f, "train/id", ids)
    f["train/id"].attrs["dtype"] = "|O"  # an object array: no width that would cut it short


def _root_attrs_without(f: h5py.File, name: str) -> None:
    """Drop `name` from attrs_json too, so that the root attribute is what the reader uses."""
    attrs = json.loads(f.attrs["attrs_json"])
    attrs.pop(name, None)
    f.attrs["attrs_json"] = json.dumps(attrs)


def item_str_on_numbers(f: h5py.File) -> None:
    f["train/audio"].attrs["item"] = "str"


def invalid_utf8_id(f: h5py.File) -> None:
    _set_id(f, b"\xff\xfe-not-utf8")


def string_fill_value(f: h5py.File) -> None:
    """A chunked string dataset none of whose chunks is written, with a 10 KB fill value:
    every element would read as that string (2 GB from a small file)."""
    del f["train/annotations"]
    dset = f["train"].create_dataset("annotations", shape=(200_000,), dtype=_STR,
                                     chunks=(4096,), fillvalue=b"x" * 10_000)
    dset.attrs.update({"container": "ndarray", "dtype": "|O", "item": "str"})


def object_dtype_on_numbers(f: h5py.File) -> None:
    f["train/audio"].attrs["dtype"] = "|O"


def long_id(f: h5py.File) -> None:
    _set_id(f, b"v" * 2_000_000)


def id_cut_short(f: h5py.File) -> None:
    """A long id in a dataset whose dtype attribute (<U24) is narrower: cutting it short would
    change the data without a word."""
    ids = _ids(f)
    ids[1] = b"w" * 100
    _replace_strings(f, "train/id", ids)


def empty_id(f: h5py.File) -> None:
    _set_id(f, b"")


def newline_id(f: h5py.File) -> None:
    _set_id(f, b"video$_$1\nvideo$_$2")


def attrs_json_huge(f: h5py.File) -> None:
    attrs = json.loads(f.attrs["attrs_json"])
    attrs["blob"] = "x" * 20_000_000
    f.attrs["attrs_json"] = json.dumps(attrs)


def attrs_json_invalid(f: h5py.File) -> None:
    f.attrs["attrs_json"] = '{"synthetic": true,'


def attrs_json_list(f: h5py.File) -> None:
    f.attrs["attrs_json"] = "[1, 2, 3]"


def attrs_json_deep(f: h5py.File) -> None:
    f.attrs["attrs_json"] = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"


def format_version_text(f: h5py.File) -> None:
    f.attrs["format_version"] = "one"


def missing_synthetic(f: h5py.File) -> None:
    _root_attrs_without(f, "synthetic")
    del f.attrs["synthetic"]


def _label_bound(value: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        _root_attrs_without(f, "label_bound")
        f.attrs["label_bound"] = value
    return edit


HDF5_CASES: dict[str, tuple[Callable[[h5py.File], None], tuple[str, ...]]] = {
    "item-str-on-numbers": (item_str_on_numbers, ("train/audio", "item 'str'")),
    "invalid-utf8-id": (invalid_utf8_id, ("train/id index 1", "UTF-8")),
    "string-fill-value": (string_fill_value, ("train/annotations", "fill value")),
    "object-dtype-on-numbers": (object_dtype_on_numbers, ("train/audio", "strings")),
    "long-id": (long_id, ("train/id index 1", "longer than 1024")),
    "id-cut-short": (id_cut_short, ("train/id index 1", "dtype attribute")),
    "empty-id": (empty_id, ("train/id index 1", "empty")),
    "newline-id": (newline_id, ("train/id index 1", "control character")),
    "attrs-json-huge": (attrs_json_huge, ("attrs_json", "bytes")),
    "attrs-json-invalid": (attrs_json_invalid, ("attrs_json", "not valid JSON")),
    "attrs-json-list": (attrs_json_list, ("attrs_json", "JSON object")),
    "attrs-json-deep": (attrs_json_deep, ("attrs_json",)),
    "format-version-text": (format_version_text, ("format_version",)),
    "missing-synthetic": (missing_synthetic, ("synthetic",)),
    "label-bound-text": (_label_bound("3"), ("label_bound",)),
    "label-bound-infinite": (_label_bound(np.inf), ("label_bound", "inf")),
    "label-bound-nan": (_label_bound(np.nan), ("label_bound", "nan")),
    "label-bound-zero": (_label_bound(0.0), ("label_bound",)),
}


def hdf5_case(name: str, valid: Path, out: Path) -> Path:
    return _edit(valid, out, HDF5_CASES[name][0])


def _pickle_with(ds: MMSADataset, edit: Callable[[dict], None]) -> bytes:
    splits = {s: dict(v) for s, v in ds.splits.items()}
    edit(splits)
    return pickle.dumps(splits, protocol=4)


def _pickle_id(value: str) -> Callable[[dict], None]:
    def edit(splits: dict) -> None:
        ids = list(splits["train"]["id"])
        ids[1] = value
        splits["train"]["id"] = np.array(ids, dtype=object)
    return edit


def _ragged(splits: dict) -> None:
    n = len(splits["train"]["regression_labels"])
    splits["train"]["regression_labels"] = [[0.5]] + [[0.1, 0.2]] * (n - 1)


PICKLE_CASES: dict[str, tuple[Callable[[dict], None], tuple[str, ...]]] = {
    "long-id": (_pickle_id("v" * 2_000_000), ("train/id index 1", "longer than 1024")),
    "empty-id": (_pickle_id(""), ("train/id index 1", "empty")),
    "newline-id": (_pickle_id("a\nb"), ("train/id index 1", "control character")),
    "ragged-list": (_ragged, ("train/regression_labels", "different shapes")),
}


def pickle_case(name: str, ds: MMSADataset) -> bytes:
    return _pickle_with(ds, PICKLE_CASES[name][0])
