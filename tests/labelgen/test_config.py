"""Config: presets, YAML files, overrides and their errors."""

from pathlib import Path

import pytest
import yaml

from labelgen.config import PRESETS, load_config, preset_for_dataset
from mugcore.errors import UserError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_presets_apply_and_overrides_win(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("preset: fast\nstage2:\n  noise_audio: 0.5\n  output: plain\n")
    config = load_config(path, overrides=["stage2.noise_audio=0.25", "stage1.cross_fit_folds=5",
                                          "stage1.net.text_dim=8"])
    assert config.preset == "fast"
    assert config.stage1.net == {"text_encoder": "lstm", "text_hidden": 32, "text_dim": 8}
    assert config.stage2.noise_audio == 0.25 and config.stage2.output == "plain"
    assert config.stage1.cross_fit_folds == 5
    assert config.stage2.noise("text") == pytest.approx(0.03)


@pytest.mark.parametrize(("override", "message"), [
    ("stage2.bogus=1", "unknown option stage2.bogus"),
    ("bogus=1", "unknown option bogus"),
    ("stage1.net.bogus=1", "unknown option stage1.net.bogus"),
    ("stage2.epochs=1.5", "stage2.epochs must be an integer"),
    ("stage2.output=maybe", "stage2.output must be one of residual, plain"),
    ("stage2.skip_rule=3", "stage2.skip_rule must be true or false"),
    ("stage2.inner_lr=0", "stage2.inner_lr must be > 0"),
    ("stage1.cross_fit_folds=1", "stage1.cross_fit_folds must be 0 (off) or at least 2"),
    ("stage2", "must look like section.key=value"),
])
def test_bad_options_name_the_key(override: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(overrides=[override])


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(UserError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "p.yaml").write_text("preset: imdb\n")
    with pytest.raises(UserError, match="unknown preset 'imdb'"):
        load_config(tmp_path / "p.yaml")


@pytest.mark.parametrize("name", ["mosi", "mosei", "sims", "fast"])
def test_shipped_yaml_files_are_the_presets(name: str) -> None:
    path = CONFIGS / f"{name}.yaml"
    text = path.read_text()
    assert text.startswith("# labelgen run ") and f"--config configs/{name}.yaml" in text
    assert yaml.safe_load(text)["preset"] == name
    assert load_config(path) == load_config(preset=name)
    assert name in PRESETS


def test_dataset_picks_its_preset() -> None:
    # the family's preset where a GPU fine-tunes BERT; its frozen-BERT variant on a CPU
    assert preset_for_dataset({"preset": "mosei"}, 3.0, gpu=True) == "mosei"
    assert preset_for_dataset({}, 1.0, gpu=True) == "sims"
    assert preset_for_dataset({"preset": "other"}, 3.0, gpu=True) == "mosi"
    assert preset_for_dataset({"preset": "mosei"}, 3.0) == "mosei-cpu"
