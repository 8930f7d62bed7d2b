"""Options of stages 1-2 and of the baselines: dataclasses, per-dataset presets, YAML, overrides.

A configuration is built in three layers: a preset (`mosi`, `mosei`, `sims`, `fast`; chosen
from the dataset when not named), then a YAML file, then `--set section.key=value` overrides.
Every key is checked: an unknown key or a value of the wrong type is a `UserError` naming it.
Options marked *(choice)* in DESIGN.md section 3 are all here; docs/method.md lists them.
"""

import dataclasses
import importlib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from mugcore.errors import UserError, shorten

_options = dataclasses.dataclass(kw_only=True)

# The largest value of every numeric option, by dotted name (lower bounds are in each `check`):
# one job must neither tie up a worker for ever nor ask for more memory than a machine has.
# Values are also finite. docs/method.md lists these; tests/labelgen/test_config.py checks that
# every numeric option has one.
MAXIMA: dict[str, float] = {
    **{f"stage1.{k}": v for k, v in {
        "batch_size": 4096, "max_epochs": 1000, "patience": 1000, "lr": 10.0, "bert_lr": 10.0,
        "weight_decay": 10.0, "contrastive_weight": 100.0, "temperature": 100.0,
        "projector_hidden": 4096, "cross_fit_folds": 20, "max_iterations": 10_000_000}.items()},
    **{f"stage1.net.{k}": 4096 for k in (
        "text_dim", "audio_dim", "vision_dim", "text_hidden", "audio_hidden", "vision_hidden",
        "fusion_dim", "fusion_hidden", "predictor_hidden")},
    "stage1.net.dropout": 1.0,
    **{f"stage2.{k}": v for k, v in {
        "epochs": 10_000, "batch_size": 4096, "hidden": 4096, "label_embed_dim": 1024,
        "inner_lr": 10.0, "meta_lr": 10.0, "noise_text": 10.0, "noise_audio": 10.0,
        "noise_vision": 10.0, "meta_test_noise": 10.0, "average_last": 1.0,
        "min_steps": 1_000_000}.items()},
    "selection.noise_grid": 10.0, "selection.noise_scale": 10.0,
    "selection.cross_fit_folds": 20, "selection.memorisation_gap": 1.0,
    "selection.ensemble_below": 1_000_000, "selection.ensemble_seeds": 10,
    **{f"gate.{k}": 100.0 for k in ("min_signal_z", "min_own_z")},
    "gate.unique_low": 1.0, "gate.unique_high": 1.0, "gate.summary_below": 1.0,
    "uncertainty.level": 0.999,
    **{f"uncertainty.spread_weight_{m}": 100.0 for m in ("text", "audio", "vision")},
    "uncertainty.push_reach": 10.0,
    **{f"mlc.{k}": v for k, v in {
        "epochs": 10_000, "batch_size": 4096, "hidden": 4096, "label_embed_dim": 1024,
        "inner_lr": 10.0, "meta_lr": 10.0}.items()},
    "ulgm.eps": 1.0,
}
# The baselines whose options are a config section built into their module's `Config`.
BASELINE_SECTIONS = ("ulgm", "mlc")


@_options
class Stage1Config:
    """Pre-training of encoders, fusion, predictors and the contrastive projection module."""

    # Options of mugcore.models.NetConfig (text_encoder "bert" | "lstm" (choice), bert_checkpoint,
    # finetune_bert, text_dim / audio_dim / vision_dim (d_u), *_hidden, fusion_dim (d_M),
    # fusion_hidden, predictor_hidden, dropout); unset ones keep NetConfig's defaults.
    net: dict[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int = 32
    max_epochs: int = 30
    patience: int = 5  # early stopping: epochs without a better validation MAE
    # (choice) the validation MAE early stopping watches: P_M's alone, or the mean of P_M's
    # and the unimodal predictors' (all against y_M), which waits for the slower encoders
    early_stopping: Literal["multimodal", "mean"] = "mean"
    lr: float = 1e-3
    bert_lr: float = 5e-5  # learning rate of the BERT weights when fine-tuned
    weight_decay: float = 1e-4
    contrastive: bool = True  # (choice) InfoNCE of the CPM; False = ablation --no-contrastive
    contrastive_weight: float = 0.1  # lambda
    temperature: float = 0.2  # tau of InfoNCE
    projector_hidden: int = 64  # hidden width of each projector Phi_u
    cross_fit_folds: int = 0  # (choice) K-fold out-of-fold representations; 0 = off
    cross_fit_by: Literal["video", "clip"] = "video"  # (choice) fold unit: whole videos or clips
    max_iterations: int = 0  # stop each training run after this many batches; 0 = no limit
    # training batches of clips with like text length (less padding for BERT); see
    # docs/results.md for its effect
    bucket_by_length: bool = False
    # on a GPU: BERT alone under bf16 autocast (its matrix products are what bf16 speeds up;
    # the LSTMs and heads stay float32); refused on a CPU. bench/bench_gpu.py measures it
    bf16_bert: bool = False

    def check(self) -> None:
        _positive(self, "batch_size", "max_epochs", "patience", "projector_hidden", "lr",
                  "bert_lr", "temperature")
        _non_negative(self, "weight_decay", "contrastive_weight", "max_iterations")
        from mugcore.models.multimodal_net import NetConfig  # torch-heavy; only when checking

        known = {f.name for f in dataclasses.fields(NetConfig) if not f.name.endswith("_in_dim")}
        hints = typing.get_type_hints(NetConfig)
        for key, value in self.net.items():
            if key not in known:
                raise UserError(f"unknown option stage1.net.{key}; "
                                f"known: {', '.join(sorted(known))}")
            _coerce(hints[key], value, f"stage1.net.{key}")
        try:  # NetConfig's own checks, with stand-ins for the dataset's feature widths
            NetConfig(text_in_dim=1, audio_in_dim=1, vision_in_dim=1, **self.net)
        except UserError as exc:
            raise UserError(f"stage1.net.{exc}") from None
        if self.cross_fit_folds == 1 or self.cross_fit_folds < 0:
            raise UserError(f"stage1.cross_fit_folds must be 0 (off) or at least 2, "
                            f"got {self.cross_fit_folds}")


@_options
class Stage2Config:
    """Meta-learning of one MUCN per modality on the cached stage-1 representations."""

    epochs: int = 40  # with the last half averaged, 40 matched 100 on the tuning worlds
    batch_size: int = 64
    hidden: int = 64  # MUCN hidden width
    label_embed_dim: int = 16  # width of the label embedding fed beside x
    output: Literal["residual", "plain"] = "residual"  # (choice) y~ + delta, or H * tanh(.)
    inner_lr: float = 0.05  # alpha: meta-training (inner) step size
    meta_lr: float = 0.05  # mu: bi-level meta-update step size
    # (choice) Gaussian label noise sigma per modality, as a fraction of H.
    noise_text: float = 0.03
    noise_audio: float = 0.3
    noise_vision: float = 0.3
    meta_test_noise: float | None = None  # sigma' of meta-test as a fraction of H; None: as above
    skip_rule: bool = True  # (choice) accept phi' when it already lowers the meta-test loss
    second_order: bool = True  # (choice) differentiate through the inner step; False: first order
    multimodal_denoising: bool = True  # (choice) meta-test task; False = ablation
    normalise_reps: bool = False  # (choice) standardise representations before MUCN
    # labels from the mean of the MUCN parameters after each of this last fraction of epochs
    # (0: the last iterate)
    average_last: float = 0.5
    min_steps: int = 800  # at least this many meta-steps: small train splits get more epochs

    def check(self) -> None:
        _positive(self, "epochs", "batch_size", "hidden", "label_embed_dim", "inner_lr", "meta_lr")
        _non_negative(self, "noise_text", "noise_audio", "noise_vision", "min_steps")
        if not 0 <= self.average_last <= 1:
            raise UserError(f"stage2.average_last must be in [0, 1], got {self.average_last}")
        if self.meta_test_noise is not None:
            _non_negative(self, "meta_test_noise")

    def noise(self, modality: str) -> float:
        return float(getattr(self, f"noise_{modality}"))


@_options
class SelectionConfig:
    """How `mug` chooses its settings per dataset from train/valid data and y_M alone
    (labelgen/trust/selection.py, labelgen/trust/cross_fit.py).
    enabled=false: the stage2/stage1 values."""

    enabled: bool = True
    # candidate label noises (fractions of H), all trained in one grouped stage 2
    noise_grid: list[float] = dataclasses.field(
        default_factory=lambda: [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.55, 0.7])
    noise_scale: float = 1.0  # the denoising criterion's noise: this times residual_sd
    # cross-fit stage 1 with this many folds when its unimodal predictors fit the train clips
    # better than held-out clips by more than memorisation_gap (in R^2); 0: never
    cross_fit_folds: int = 3
    memorisation_gap: float = 0.1
    # below this many train clips `mug` serves the mean uni-labels of ensemble_seeds whole
    # runs from different seeds (labelgen/trust/ensemble.py); ensemble_seeds 1: never
    ensemble_below: int = 600
    ensemble_seeds: int = 3

    def check(self) -> None:
        if not self.noise_grid or len(self.noise_grid) > 32:
            raise UserError("selection.noise_grid must list 1 to 32 noise levels")
        if min(self.noise_grid) <= 0:
            raise UserError("selection.noise_grid: every noise level must be > 0")
        _positive(self, "noise_scale", "ensemble_seeds")
        _non_negative(self, "memorisation_gap", "ensemble_below")
        if self.cross_fit_folds == 1 or self.cross_fit_folds < 0:
            raise UserError(f"selection.cross_fit_folds must be 0 (never) or at least 2, "
                            f"got {self.cross_fit_folds}")


@_options
class GateConfig:
    """The per-modality safety gate of `mug` (labelgen/trust/gate.py). enabled=false: keep every
    correction."""

    enabled: bool = True
    min_signal_z: float = 2.0  # below: the features predict held-out y_M too little -> copy
    # the modality's own information (share of Var(y_M) only it explains): at or below
    # unique_low -> copy, at or above unique_high -> the whole correction, between: shrink;
    # and none unless it is at least min_own_z standard errors above zero
    unique_low: float = 0.015
    unique_high: float = 0.03
    min_own_z: float = 1.0
    # the other two add less than this share of Var(y_M) beyond the modality, and it adds less
    # beyond them: a summary of the other two -> copy (0: never)
    summary_below: float = 0.12

    def check(self) -> None:
        _non_negative(self, "min_signal_z", "min_own_z", "unique_low", "summary_below")
        if not self.unique_high > self.unique_low:
            raise UserError(f"gate.unique_high must exceed gate.unique_low, got "
                            f"{self.unique_high} <= {self.unique_low}")


@_options
class CorrectionConfig:
    """Which way `mug`'s corrections may point (labelgen/trust/consistency.py).

    mode `consistent` (default): MUCN's labels moved onto the constraint that the modalities'
    labels, mixed by weights estimated from the data, reproduce y_M, so a dominant modality's
    label can move away from zero; `mucn`: the paper's MUCN labels as they come (gated), which
    only ever shrink toward what the modality predicts of y_M. direction_check: apply the
    consistent correction only as far as the validation clips confirm its direction."""

    mode: Literal["consistent", "mucn"] = "consistent"
    direction_check: bool = True

    def check(self) -> None:
        pass


@_options
class UncertaintyConfig:
    """Per-clip uncertainty of `mug`'s uni-labels (labelgen/trust/uncertainty.py)."""

    enabled: bool = True
    level: float = 0.9  # coverage the intervals are calibrated for
    # weight of the candidate MUCNs' disagreement in each clip's scale, per modality; chosen
    # on the robustness suite's tuning seeds (docs/robustness.md)
    spread_weight_text: float = 4.0
    spread_weight_audio: float = 2.0
    spread_weight_vision: float = 2.0
    # with the consistent correction, how far past the moved label an interval reaches, in
    # multiples of the push (1: MUCN's interval and the moved one; chosen on tuning seeds)
    push_reach: float = 2.0

    def check(self) -> None:
        if not self.push_reach >= 1:
            raise UserError(f"uncertainty.push_reach must be >= 1, got {self.push_reach}")
        if not 0.5 <= self.level < 1:
            raise UserError(f"uncertainty.level must be in [0.5, 1), got {self.level}")
        _non_negative(self, "spread_weight_text", "spread_weight_audio", "spread_weight_vision")

    def spread_weight(self, modality: str) -> float:
        return float(getattr(self, f"spread_weight_{modality}"))


@_options
class LabelgenConfig:
    """All options of a label-generation run; `ulgm` and `mlc` belong to those baselines."""

    preset: str = "mosi"
    stage1: Stage1Config = dataclasses.field(default_factory=Stage1Config)
    stage2: Stage2Config = dataclasses.field(default_factory=Stage2Config)
    selection: SelectionConfig = dataclasses.field(default_factory=SelectionConfig)
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)
    correction: CorrectionConfig = dataclasses.field(default_factory=CorrectionConfig)
    uncertainty: UncertaintyConfig = dataclasses.field(default_factory=UncertaintyConfig)
    ulgm: dict[str, Any] = dataclasses.field(default_factory=dict)
    mlc: dict[str, Any] = dataclasses.field(default_factory=dict)

    def check(self) -> None:
        for section in (self.stage1, self.stage2, self.selection, self.gate, self.correction,
                        self.uncertainty):
            section.check()
        for name in BASELINE_SECTIONS:  # built as the method will build them when it runs
            module = importlib.import_module(f"labelgen.methods.{name}")
            build_dataclass(module.Config, getattr(self, name), where=f"{name}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Presets differ from the dataclass defaults only where a dataset calls for it.
PRESETS: dict[str, dict[str, Any]] = {
    "mosi": {},
    "mosei": {"stage1": {"batch_size": 64, "max_epochs": 15, "patience": 3}},
    "sims": {"stage1": {"max_epochs": 20}},
    "fast": {
        "stage1": {"net": {"text_encoder": "lstm", "text_hidden": 32}, "projector_hidden": 32,
                   "max_epochs": 15, "patience": 4, "lr": 2e-3},
        "stage2": {"hidden": 32},
    },
}
# A family's preset for a CPU: its text encoder's BERT frozen, so its [CLS] states are computed
# once (mugcore.models.text_states) where fine-tuning runs BERT forward and backward on every
# batch: 6 to 25 hours estimated for a MOSI-sized set on 2 busy cores (issue 18).
CPU_SUFFIX = "-cpu"
for _family in ("mosi", "mosei", "sims"):
    _stage1 = PRESETS[_family].get("stage1", {})
    PRESETS[_family + CPU_SUFFIX] = {**PRESETS[_family], "stage1": {
        **_stage1, "net": {**_stage1.get("net", {}), "finetune_bert": False}}}

# The preset of each known dataset family (`preset` attribute of a dataset file).
DATASET_PRESETS = {"mosi": "mosi", "mosei": "mosei", "sims": "sims"}


def default_preset(attrs: Mapping[str, Any], bound: float, *, gpu: bool) -> tuple[str, str]:
    """(preset, why) for a dataset when no --config names one: the family's preset (from the
    file's `preset` attribute, else from the label bound), with a frozen BERT unless the
    run has a GPU to fine-tune it on."""
    name = str(attrs.get("preset", "")).lower()
    if name in DATASET_PRESETS:
        family, source = DATASET_PRESETS[name], f"the file says preset {name!r}"
    else:
        family = "sims" if bound == 1.0 else "mosi"
        source = f"labels in [-{bound:g}, {bound:g}]"
    if gpu:
        return family, f"{source}; a GPU: BERT fine-tuned"
    return family + CPU_SUFFIX, (f"{source}; no GPU: BERT frozen, its [CLS] states computed "
                                 "once (--config " + family + " fine-tunes it, far slower)")


def preset_for_dataset(attrs: Mapping[str, Any], bound: float, *, gpu: bool = False) -> str:
    """The preset a dataset gets when no --config names one (default_preset's name)."""
    return default_preset(attrs, bound, gpu=gpu)[0]


def load_config(path: Path | str | None = None, *, preset: str | None = None,
                overrides: Sequence[str] | Mapping[str, Any] = ()) -> LabelgenConfig:
    """Preset, then the YAML file at `path`, then overrides ("stage2.noise_audio=0.4")."""
    data = _read_yaml(Path(path)) if path is not None else {}
    return config_from_dict(data, preset=preset, overrides=overrides)


def config_from_dict(data: Mapping[str, Any], *, preset: str | None = None,
                     overrides: Sequence[str] | Mapping[str, Any] = ()) -> LabelgenConfig:
    """Like load_config with the file's content given as a (nested) mapping.

    The mapping's own `preset` key wins over the `preset` argument (the dataset's default).
    Mapping overrides use dotted keys ({"stage2.noise_audio": 0.4}).
    """
    if not isinstance(data, Mapping):
        raise UserError(f"config must be a mapping of options, got {type(data).__name__}")
    data = dict(data)
    name = str(data.pop("preset", None) or preset or "mosi")
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    merged = _merge({"preset": name}, PRESETS[name])
    merged = _merge(merged, data)
    items = overrides.items() if isinstance(overrides, Mapping) else map(parse_override,
                                                                           overrides)
    for key, value in items:
        merged = _merge(merged, _nest(key, value))
    config = build_dataclass(LabelgenConfig, merged, where="")
    config.check()
    return config


def build_dataclass(cls: type, data: Mapping[str, Any], *, where: str) -> Any:
    """Build dataclass `cls` from a mapping, checking every key and value type."""
    if not isinstance(data, Mapping):
        raise UserError(f"{where or 'config'} must be a mapping of options, "
                        f"got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise UserError(f"unknown option {where}{key}; known: {', '.join(fields)}")
        values[key] = _coerce(hints[key], value, f"{where}{key}")
    return cls(**values)


_SCALARS: dict[type, tuple[tuple[type, ...], str]] = {
    bool: ((bool,), "true or false"),
    int: ((int,), "an integer"),
    float: ((int, float), "a number"),
    str: ((str,), "a string"),
}


def _coerce(kind: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        return build_dataclass(kind, value, where=f"{where}.")
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _coerce(inner, value, where)
    if origin is Literal:
        allowed = typing.get_args(kind)
        if value not in allowed:
            raise UserError(f"{where} must be one of {', '.join(map(str, allowed))}, "
                            f"got {shorten(value)}")
        return value
    if origin is dict:
        if not isinstance(value, Mapping):
            raise UserError(f"{where} must be a mapping, got {shorten(value)}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise UserError(f"{where} must be a list, got {shorten(value)}")
        (inner,) = typing.get_args(kind)
        return [_coerce(inner, item, where) for item in value]
    if kind in _SCALARS:
        accepted, what = _SCALARS[kind]
        # bool is an int in Python; keep true/false out of numbers and numbers out of flags
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, accepted):
            raise UserError(f"{where} must be {what}, got {shorten(value)}")
        if kind in (int, float):
            _check_number(value, where)
        return float(value) if kind is float else value
    raise TypeError(f"{where}: unsupported option type {kind!r}")


def _check_number(value: float, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where} must be a finite number, got {shorten(value)}")
    maximum = MAXIMA.get(where)
    if maximum is not None and value > maximum:
        raise UserError(f"{where} must be at most {maximum:g}, got {shorten(value)}")


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of options")
    return data


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases: a value is what it says, never an expansion of an anchor (a few
    hundred bytes of nested aliases would expand to megabytes of stored job options)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed in an override")
        return super().compose_node(parent, index)


def parse_override(text: str) -> tuple[str, Any]:
    """("section.key", value) from "section.key=value", the value read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"override {shorten(text)} must look like section.key=value")
    try:
        value = yaml.load(raw, Loader=_NoAliasLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0][:120]
        raise UserError(f"override {shorten(text)}: value is not valid YAML ({reason})") from exc
    return key.strip(), value


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        if not getattr(obj, name) > 0:
            raise UserError(f"{_section(obj)}.{name} must be > 0, got {getattr(obj, name)}")


def _non_negative(obj: Any, *names: str) -> None:
    for name in names:
        if not getattr(obj, name) >= 0:
            raise UserError(f"{_section(obj)}.{name} must be >= 0, got {getattr(obj, name)}")


def _section(obj: Any) -> str:
    return {Stage1Config: "stage1", Stage2Config: "stage2", SelectionConfig: "selection",
            GateConfig: "gate", UncertaintyConfig: "uncertainty"}.get(type(obj),
                                                                      type(obj).__name__)
