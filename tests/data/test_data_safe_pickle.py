"""The restricted unpickler: numpy arrays and plain containers load, anything else is refused."""

import collections
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from mmsa_builders import listing, make_mmsa

from labelgen.cli import main as labelgen
from mugcore.data.io import load_dataset
from mugcore.data.safe_pickle import safe_load
from mugcore.errors import DatasetError, UnsafePickleError


class Hostile:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def write_hostile(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    splits = make_mmsa().splits
    splits["train"]["annotations"] = Hostile(marker)  # deep inside an otherwise valid file
    path = tmp_path / "hostile.pkl"
    path.write_bytes(pickle.dumps(splits, protocol=4))
    # Sanity check that the file really is dangerous under plain pickle (in a scratch dir).
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    pickle.loads(pickle.dumps(Hostile(scratch / "proof"), protocol=4))
    assert (scratch / "proof").exists()
    return path, marker


@pytest.mark.parametrize("command", ["import", "validate"])
def test_hostile_pickle_is_refused_by_the_cli(tmp_path: Path, command: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path, marker = write_hostile(tmp_path)
    before = listing(tmp_path)
    argv = [command, str(path)] + (["--out", str(tmp_path / "out.h5")] if command == "import"
                                   else [])
    assert labelgen(argv) == 2
    err = capsys.readouterr().err
    assert f"{os.system.__module__}.system" in err and "refused" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()
    assert listing(tmp_path) == before  # nothing written


@pytest.mark.parametrize(("module", "name"), [
    ("builtins", "eval"), ("builtins", "getattr"), ("subprocess", "Popen"), ("numpy", "load"),
    ("__builtin__", "eval"), ("numpy.testing", "_private"),
])
def test_any_other_global_is_refused_before_it_runs(module: str, name: str) -> None:
    payload = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n)R."
    with pytest.raises(UnsafePickleError, match=rf"refused to load {module}\.{name}"):
        safe_load(io.BytesIO(payload))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_numpy_and_plain_containers_load_in_every_protocol(protocol: int) -> None:
    value = {
        "floats": np.arange(6, dtype=np.float32).reshape(2, 3),
        "object_strings": np.array(["a$_$1", "b\u00e9"], dtype=object),
        "unicode": np.array(["x", "yz"]),
        "scalars": [np.int64(3), np.float32(0.5), True, None, 2 + 1j, b"raw"],
        "ordered": collections.OrderedDict(a=(1, 2), b={3}, c=frozenset({4})),
        "slice": slice(1, 2),
    }
    loaded = safe_load(io.BytesIO(pickle.dumps(value, protocol=protocol)))
    assert loaded["floats"].tobytes() == value["floats"].tobytes()
    assert loaded["object_strings"].dtype == object
    assert loaded["object_strings"].tolist() == value["object_strings"].tolist()
    assert loaded["unicode"].dtype == value["unicode"].dtype
    assert loaded["scalars"] == value["scalars"]
    assert type(loaded["scalars"][0]) is np.int64
    assert loaded["ordered"] == value["ordered"]
    assert type(loaded["ordered"]) is collections.OrderedDict
    assert loaded["slice"] == slice(1, 2)


def test_numpy_1_module_names_load() -> None:
    # Files written with numpy < 2 name numpy.core.multiarray, as MMSA's published files do.
    data = pickle.dumps(np.arange(4, dtype=np.float32), protocol=2)
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert old != data
    loaded = safe_load(io.BytesIO(old))
    assert loaded.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(("content", "needle"), [
    (pickle.dumps(make_mmsa().splits, protocol=4)[:5000], "not a readable pickle"),
    (b"", "not a readable pickle (EOFError"),
    (b"\x80\x04garbage that is not a pickle", "not a readable pickle"),
    (pickle.dumps([1, 2, 3]), "top level is a list, expected a dict of splits"),
    (pickle.dumps({"train": np.zeros(3)}), "split 'train' is a ndarray"),
    (pickle.dumps({"train": {1: np.zeros(3)}}), "split 'train' has key 1, not a string"),
    (pickle.dumps({("a",): {}}), "split name ('a',) is not a string"),
])
def test_malformed_pickles_give_a_dataset_error(tmp_path: Path, content: bytes, needle: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert str(path) in str(info.value) and needle in str(info.value)
    assert labelgen(["import", str(path), "--out", str(tmp_path / "bad.h5")]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert listing(tmp_path) == ["bad.pkl"]
