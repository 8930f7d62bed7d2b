"""`labelgen labels` and `labelgen store ls|show|rm` on both backends."""

import json

import pytest

from labelgen.commands import store_commands
from mugcore.cli import build_parser, run_cli
from storage.testing import clip_table, seeded_labels


def labelgen(spec, *argv: str) -> int:
    store_args = ["--store", spec.location] + (["--files", spec.files] if spec.files else [])
    parser = build_parser("labelgen", "test", [store_commands])
    # Store options belong to the subcommand: put them after its name(s).
    head = 2 if argv[0] == "store" else 1
    return run_cli(parser, [*argv[:head], *store_args, *argv[head:]])


@pytest.fixture
def filled(spec, store, small_ds):
    store.register_dataset("mosi", small_ds, source_format="pickle")
    clips = clip_table(small_ds)
    first = store.publish_label_set("mosi", seeded_labels(clips, 1), method="copy", options={},
                                    seed=1)
    second = store.publish_label_set("mosi", seeded_labels(clips, 2), method="mug",
                                     options={"noise": 0.3}, seed=2)
    return store, clips, first, second


def test_labels(spec, filled, capsys):
    store, clips, first, second = filled
    clip = str(clips["clip_id"][13])
    assert labelgen(spec, "labels", clip) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"clip_id", "split", "multimodal", "text", "audio", "vision",
                        "label_set_id"}
    assert (out["clip_id"], out["split"], out["label_set_id"]) == (clip, "valid", second.id)
    assert out["text"] == pytest.approx(float(seeded_labels(clips, 2)["text"][13]))
    assert labelgen(spec, "labels", clip, "--dataset", "mosi", "--label-set", str(first.id)) == 0
    assert json.loads(capsys.readouterr().out)["label_set_id"] == first.id

    assert labelgen(spec, "labels", "no-such-clip") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["labelgen: error: unknown clip id 'no-such-clip'"]


def test_ls_show_rm(spec, filled, capsys):
    store, clips, first, second = filled
    assert labelgen(spec, "store", "ls") == 0
    out = capsys.readouterr().out
    assert "dataset 1 mosi: 20 clips (train/valid/test 12/4/4)" in out
    assert f"label set {second.id}: mug, seed 2" in out
    assert labelgen(spec, "store", "show", "mosi") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["label_sets"] == [first.id, second.id] and shown["name"] == "mosi"
    assert labelgen(spec, "store", "show", "--label-set", str(second.id)) == 0
    assert json.loads(capsys.readouterr().out)["options"] == {"noise": 0.3}

    assert labelgen(spec, "store", "rm", "--label-set", str(second.id)) == 0
    assert [x.id for x in store.list_label_sets()] == [first.id]
    job = store.create_job("mosi", {})
    capsys.readouterr()
    assert labelgen(spec, "store", "rm", "mosi") == 2
    assert f"in use by job(s) {job.id}" in capsys.readouterr().err
    store.request_cancel(job.id)
    assert labelgen(spec, "store", "rm", "mosi") == 0
    assert "deleted dataset mosi and 1 label set(s)" in capsys.readouterr().out
    assert store.list_datasets() == []
    assert labelgen(spec, "store", "show", "mosi") == 2
    assert "no dataset 'mosi'" in capsys.readouterr().err
    assert labelgen(spec, "store", "show") == 2
    assert "exactly one" in capsys.readouterr().err


def test_store_option_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MUG_STORE", raising=False)
    parser = build_parser("labelgen", "test", [store_commands])
    assert run_cli(parser, ["store", "ls"]) == 2
    assert "no label store given" in capsys.readouterr().err
    assert run_cli(parser, ["store", "ls", "--store", "postgresql://u@127.0.0.1:9/x"]) == 2
    assert "needs a files directory" in capsys.readouterr().err
