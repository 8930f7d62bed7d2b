"""Every numeric option has a documented upper bound, and the check enforces it."""

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from labelgen.config import MAXIMA, Stage1Config, Stage2Config, load_config
from labelgen.methods import mlc, ulgm
from mugcore.errors import UserError
from mugcore.models.multimodal_net import NetConfig

METHOD_DOC = Path(__file__).resolve().parents[2] / "docs" / "method.md"


def _numeric_options() -> list[str]:
    names = []
    for prefix, cls in (("stage1.", Stage1Config), ("stage2.", Stage2Config),
                        ("stage1.net.", NetConfig), ("mlc.", mlc.Config), ("ulgm.", ulgm.Config)):
        for f in dataclasses.fields(cls):
            kinds = set(typing.get_args(f.type)) | {f.type}
            if kinds & {int, float} and not f.name.endswith("_in_dim"):
                names.append(prefix + f.name)
    return names


@pytest.mark.parametrize("option", _numeric_options())
def test_every_numeric_option_is_bounded_and_documented(option: str) -> None:
    assert option in MAXIMA, f"{option} has no upper bound in labelgen.config.MAXIMA"
    short = option.rsplit(".", 1)[-1]
    assert re.search(rf"`({re.escape(option)}|{re.escape(short)})`",
                     METHOD_DOC.read_text().split("## Bounds of the options")[1]), option
    just_over = MAXIMA[option] * 2 + 1
    value = int(just_over) if isinstance(just_over, int) else just_over
    with pytest.raises(UserError, match=re.escape(option)):
        load_config(overrides={option: value})
