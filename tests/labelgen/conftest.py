"""Tiny options so that stage 1 on the 48/16/16-clip fixtures takes a second or two."""

import pytest

from labelgen.config import LabelgenConfig, load_config

TINY = [
    "stage1.max_epochs=2", "stage1.patience=1", "stage1.batch_size=16",
    "stage1.projector_hidden=8",
    *(f"stage1.net.{k}=8" for k in ("text_hidden", "audio_hidden", "vision_hidden", "text_dim",
                                    "audio_dim", "vision_dim", "fusion_hidden",
                                    "predictor_hidden")),
    "stage1.net.fusion_dim=8",
    "stage2.epochs=2", "stage2.hidden=8", "stage2.batch_size=16",
]


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)


@pytest.fixture
def tiny_config() -> LabelgenConfig:
    return load_config(preset="fast", overrides=TINY)
