"""Stage-3 configuration: a dataclass read from YAML (a named preset or a file) plus overrides.

A preset name (`mosi`, `mosei`, `sims`, `fast`) resolves to `configs/trainer/<name>.yaml`;
`--set key=value` overrides one field after the file is read (`--set lr=3e-4`,
`--set net.hidden=64`). Values in `--set` are parsed as YAML scalars, so `1e-3`, `true`
and `[1, 2]` mean what they look like.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mugcore.errors import UserError

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs" / "trainer"
PRESETS = ("mosi", "mosei", "sims", "fast")
METRIC_FAMILIES = ("auto", "mosi", "sims")


@dataclass
class TrainerConfig:
    """Everything that decides a stage-3 run; stored in every checkpoint and in metrics.json."""

    # Keyword overrides for mugcore.models.NetConfig.from_dataset (encoder kind, sizes, dropout).
    net: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 32
    epochs: int = 20
    lr: float = 1e-3
    # BERT fine-tuning wants a smaller step than the LSTMs and heads.
    text_lr: float = 5e-5
    weight_decay: float = 0.0
    # Weight of the unimodal tasks on the uni-labels; 0 trains the multimodal task alone.
    beta: float = 0.1
    # Weight each clip's unimodal losses by its uni-label's uncertainty (label sets that carry
    # one, e.g. mug's): trainer.label_source.uncertainty_weights
    weight_by_uncertainty: bool = False
    # Stop a seed when validation MAE has not improved for this many epochs (0: never).
    patience: int = 5
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    # Metric family for test/valid figures; `auto` picks it from the dataset's label bound.
    metrics: str = "auto"
    grad_clip: float = 1.0
    # Training batches of clips with like text length (less padding; see docs/results.md for
    # its effect on the metrics); False: plain shuffled batches.
    bucket_by_length: bool = False
    # bf16 autocast of the training forward pass (for GPUs with bf16; on a CPU it runs, but
    # is rarely faster); evaluation stays in float32.
    bf16_autocast: bool = False
    # Page-locked training batches for asynchronous copies to a GPU; no effect on a CPU.
    pin_memory: bool = False

    def __post_init__(self) -> None:
        checks = [
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("epochs", self.epochs >= 1, "must be >= 1"),
            ("lr", self.lr > 0, "must be > 0"),
            ("text_lr", self.text_lr > 0, "must be > 0"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("beta", self.beta >= 0, "must be >= 0"),
            ("patience", self.patience >= 0, "must be >= 0"),
            ("seeds", len(self.seeds) >= 1, "needs at least one seed"),
            ("metrics", self.metrics in METRIC_FAMILIES, f"must be one of {METRIC_FAMILIES}"),
            ("grad_clip", self.grad_clip >= 0, "must be >= 0 (0: no clipping)"),
            ("net", isinstance(self.net, dict), "must be a mapping of NetConfig fields"),
            *((name, isinstance(getattr(self, name), bool), "must be true or false")
              for name in ("bucket_by_length", "bf16_autocast", "pin_memory",
                           "weight_by_uncertainty")),
        ]
        for name, ok, problem in checks:
            if not ok:
                raise UserError(f"config field '{name}' = {getattr(self, name)!r}: {problem}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainerConfig)}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise UserError(f"--config {path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"--config {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"--config {path}: top level must be a mapping of config fields")
    return data


def resolve_config_path(name_or_path: str) -> Path:
    """A preset name or a YAML path; an unknown name lists the presets."""
    if name_or_path in PRESETS:
        return PRESET_DIR / f"{name_or_path}.yaml"
    path = Path(name_or_path)
    if not path.exists():
        raise UserError(f"--config {name_or_path}: no such file and not a preset "
                        f"(presets: {', '.join(PRESETS)})")
    return path


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise UserError(f"--set {item!r}: expected KEY=VALUE (e.g. lr=3e-4 or net.hidden=64)")
    value = yaml.safe_load(raw) if raw else ""
    head, _, sub = key.partition(".")
    if head not in _field_names():
        raise UserError(f"--set {key}: unknown config field '{head}' "
                        f"(fields: {', '.join(sorted(_field_names()))})")
    if sub:
        if head != "net":
            raise UserError(f"--set {key}: only 'net' has sub-fields")
        data.setdefault("net", {})[sub] = value
    else:
        data[head] = value


def load_config(name_or_path: str | None = None, overrides: Sequence[str] = ()) -> TrainerConfig:
    """Defaults, then the YAML (preset or file), then each `KEY=VALUE` override in order."""
    data: dict[str, Any] = {}
    source = "defaults"
    if name_or_path:
        path = resolve_config_path(name_or_path)
        data = _read_yaml(path)
        source = str(path)
    unknown = sorted(set(data) - _field_names())
    if unknown:
        raise UserError(f"{source}: unknown config fields {unknown} "
                        f"(fields: {', '.join(sorted(_field_names()))})")
    data = {**data, "net": dict(data.get("net") or {})}
    for item in overrides:
        _apply_override(data, item)
    if "seeds" in data and isinstance(data["seeds"], int):
        data["seeds"] = [data["seeds"]]
    return TrainerConfig(**{k: _coerce(k, v, source) for k, v in data.items()})


_NUMERIC = {f.name: f.type for f in dataclasses.fields(TrainerConfig) if f.type in (int, float)}


def _coerce(name: str, value: Any, source: str) -> Any:
    """YAML reads `1e-3` as a string (it wants `1.0e-3`); numbers are numbers here."""
    kind = _NUMERIC.get(name)
    if kind is None or isinstance(value, bool):
        return value
    try:
        number = float(value)
        if kind is int and number != int(number):
            raise ValueError
        return kind(number)
    except (TypeError, ValueError):
        raise UserError(f"{source}: config field '{name}' = {value!r}: "
                        f"expected {'an integer' if kind is int else 'a number'}") from None


def parse_seeds(text: str) -> list[int]:
    """`1,2,3` -> [1, 2, 3] for --seeds."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(
            f"--seeds {text!r}: expected comma-separated integers, e.g. 1,2,3") from None
    if not seeds:
        raise UserError("--seeds: give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: seeds repeat")
    return seeds
