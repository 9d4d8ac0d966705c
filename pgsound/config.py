"""Typed training configuration: presets in YAML, overrides from the command line (book: chapter 7).

A run is described by one ``TrainConfig``: nested dataclasses whose fields are the only valid keys. Presets
live in ``pgsound/presets/NAME.yaml`` and hold only what differs from the defaults here. Overrides use
dotted keys (``--set g.fmap_max=256``); an unknown key or a value of the wrong type is an error that names
the closest valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pgsound.errors import UserError
from pgsound.files import atomic_write
from pgsound.schedule import ScheduleConfig, check_range


class YamlLoader(yaml.SafeLoader):
    """YAML as people write numbers: ``1e-3`` is a float (YAML 1.1 wants ``1.0e-3``), ``no`` stays a string."""


# Floats with an exponent and no dot (1e-3, 2E+4) too; YAML 1.1's pattern needs a dot and a signed exponent.
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"), list("-+0123456789."),
)
# Only true and false are booleans: "no", "off", "yes" and "on" stay strings (YAML 1.1 made them booleans).
for first in "yYnNoO":
    YamlLoader.yaml_implicit_resolvers[first] = [
        (tag, pattern) for tag, pattern in YamlLoader.yaml_implicit_resolvers.get(first, [])
        if tag != "tag:yaml.org,2002:bool"
    ]


def check_choices(instance: Any, prefix: str = "") -> None:
    """Refuse a value outside its ``Literal`` choices in a config dataclass built directly (not from YAML)."""
    hints = typing.get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        hint = hints[f.name]
        value = getattr(instance, f.name)
        if typing.get_origin(hint) is list and typing.get_origin(typing.get_args(hint)[0]) is Literal:
            hint, values = typing.get_args(hint)[0], list(value)
        elif typing.get_origin(hint) is Literal:
            values = [value]
        else:
            continue
        for item in values:
            if item not in typing.get_args(hint):
                choices = ", ".join(map(repr, typing.get_args(hint)))
                raise UserError(f"{prefix}{f.name} must be one of {choices}, got {item!r}")


def parse_yaml(text: str) -> Any:
    """Parse a preset, a saved config or an override value with :class:`YamlLoader`."""
    return yaml.load(text, Loader=YamlLoader)


PRESET_DIR = Path(__file__).with_name("presets")
SEED_LIMIT = 2**32  # NumPy's and torch's seeds are 32-bit unsigned integers


def check_seed(seed: int) -> None:
    """The one check of a seed, for the config, the dataset preparations and ``seed_everything`` alike.

    NumPy's global generator and torch take 32-bit unsigned seeds, so a seed is a whole number below
    :data:`SEED_LIMIT`; the ``--seed`` option's range is the same.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < SEED_LIMIT:
        raise UserError(f"seed must be a whole number from 0 to {SEED_LIMIT - 1}, got {seed!r}")


@dataclass
class NetworkConfig:
    """Widths of G or D: ``nf(stage) = min(fmap_base / 2**(stage * fmap_decay), fmap_max)``."""

    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512


@dataclass
class LossConfig:
    """WGAN-GP as in the paper, or the non-saturating logistic loss with R1 (``kind: logistic``)."""

    kind: Literal["wgan-gp", "logistic"] = "wgan-gp"
    gp_lambda: float = 10.0
    gp_target: float = 1.0  # gamma, NVIDIA's iwass_target
    drift: float = 0.001  # epsilon, NVIDIA's iwass_epsilon
    r1_gamma: float = 10.0  # only for kind: logistic
    label_weight: float = 1.0  # AC-GAN label term, only with labels

    def __post_init__(self) -> None:
        check_choices(self, "loss.")
        check_range("loss.gp_lambda", self.gp_lambda, minimum=0.0)
        check_range("loss.gp_target", self.gp_target, minimum=0.0, inclusive=False)
        check_range("loss.drift", self.drift, minimum=0.0)
        check_range("loss.r1_gamma", self.r1_gamma, minimum=0.0)
        check_range("loss.label_weight", self.label_weight, minimum=0.0)


@dataclass
class OptimizerConfig:
    """Adam for both networks (paper: lr from the schedule, betas (0, 0.99), eps 1e-8)."""

    beta1: float = 0.0
    beta2: float = 0.99
    eps: float = 1e-8
    # Clear Adam's moments whenever the floor or the ceiling of the continuous level changes, that is at the
    # start and at the end of every fade-in: NVIDIA's reset_opt_for_new_lod, on by default in their code.
    reset_on_growth: bool = True

    def __post_init__(self) -> None:
        check_range("optimizer.beta1", self.beta1, minimum=0.0, maximum=1.0, inclusive_max=False)
        check_range("optimizer.beta2", self.beta2, minimum=0.0, maximum=1.0, inclusive_max=False)
        check_range("optimizer.eps", self.eps, minimum=0.0, inclusive=False)


@dataclass
class TrainConfig:
    """Everything a run needs besides the data file."""

    seed: int = 0
    latent_size: int | None = None  # None: nf(0), 512 with the paper's widths
    # The data this preset is sized for, (channels, height, width): what `pgsound preflight` walks without
    # --data. Training reads the shape from its dataset and ignores this.
    data_shape: tuple[int, int, int] | None = None
    base_shape: tuple[int, int] = (4, 4)
    conditional: bool = False  # one-hot labels into G, AC-GAN label outputs in D
    mirror_augment: bool = False
    g: NetworkConfig = field(default_factory=NetworkConfig)
    d: NetworkConfig = field(default_factory=NetworkConfig)
    g_first_gain_tf: bool = True  # sqrt(2)/4 on G's first dense layer, as the TF port
    # Minibatch stddev over groups of min(this, per-process minibatch) samples, which must divide it; at least
    # the largest minibatch makes each minibatch one group (NVIDIA's v1 preset: 16), 0 or 1 turns the layer off.
    mbstd_group_size: int = 4
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    ema_beta: float = 0.999  # generator EMA (Gs) per step, as in the paper
    ema_rampup: float | None = None  # cap Gs's half-life at rampup * images shown (stylegan2-ada: 0.05)
    # Count those images from the start of the run ("run", stylegan2-ada) or from the start of the current
    # level's fade-in ("level"): a short run's Gs then does not average in the untrained layers of a new level.
    ema_rampup_from: Literal["run", "level"] = "run"
    # Outputs, counted in ticks (one tick = schedule.tick_kimg images).
    samples_every_ticks: int = 1
    sample_audio_iters: int = 1000  # Griffin-Lim iterations for the WAV samples of spectrogram runs
    checkpoint_every_ticks: int = 1
    keep_checkpoints: int = 3
    milestone_every_kimg: float = 500.0
    metrics: list[Literal["swd", "ms_ssim", "ndb", "audio", "notes"]] = field(default_factory=list)
    metrics_every_ticks: int = 0
    metrics_images: int = 1024
    sample_grid: tuple[int, int] = (4, 4)
    # Speed: applied only on CUDA; on the CPU training runs in float32 eager unless cpu_bf16 says otherwise.
    precision: Literal["bf16", "fp32"] = "bf16"  # bf16 autocast or fp32
    # bf16 autocast on the CPU too: a 1.2-1.9x faster step on CPUs with bf16 matrix units (Intel AMX), slower
    # on CPUs without them, so it is opt-in (benchmarks/README.md, "bf16 on the CPU").
    cpu_bf16: bool = False
    channels_last: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        check_choices(self)
        check_seed(self.seed)
        if self.latent_size is not None:
            check_range("latent_size", self.latent_size, minimum=1)
        # A tuple once, here: every user of the base shape (levels, networks, the schedule) takes it as it is.
        self.base_shape = tuple(self.base_shape)
        for side in self.base_shape:
            check_range("base_shape", side, minimum=1)
        if self.data_shape is not None:
            for size in self.data_shape:
                check_range("data_shape", size, minimum=1)
        for name, net in (("g", self.g), ("d", self.d)):
            check_range(f"{name}.fmap_base", net.fmap_base, minimum=1)
            check_range(f"{name}.fmap_max", net.fmap_max, minimum=1)
            check_range(f"{name}.fmap_decay", net.fmap_decay, minimum=0.0)
        check_range("mbstd_group_size", self.mbstd_group_size, minimum=0)
        check_range("ema_beta", self.ema_beta, minimum=0.0, maximum=1.0, inclusive_max=False)
        if self.ema_rampup is not None:
            check_range("ema_rampup", self.ema_rampup, minimum=0.0, inclusive=False)
        check_range("samples_every_ticks", self.samples_every_ticks, minimum=1)
        check_range("sample_audio_iters", self.sample_audio_iters, minimum=0)
        check_range("checkpoint_every_ticks", self.checkpoint_every_ticks, minimum=1)
        check_range("keep_checkpoints", self.keep_checkpoints, minimum=1)
        check_range("milestone_every_kimg", self.milestone_every_kimg, minimum=0.0)
        check_range("metrics_every_ticks", self.metrics_every_ticks, minimum=0)
        check_range("metrics_images", self.metrics_images, minimum=2, maximum=1 << 20)
        for side in self.sample_grid:
            check_range("sample_grid", side, minimum=1, maximum=64)
        if self.metrics and not self.metrics_every_ticks:
            raise UserError(
                f"metrics {self.metrics} are never computed with metrics_every_ticks=0: set metrics_every_ticks "
                f"to how often (in ticks) to compute them"
            )
        if self.cpu_bf16 and self.precision != "bf16":
            raise UserError(f"cpu_bf16=true needs precision 'bf16', got precision {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts, lists and numbers (YAML-, JSON- and weights_only-safe)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build and validate a config; unknown keys and wrong types raise ``ValueError``."""
        return _build(cls, data, prefix="")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def all_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key of a config class, e.g. ``schedule.lod_training_kimg``."""
    keys = []
    for f in dataclasses.fields(cls):
        inner = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(inner):
            keys += all_keys(inner, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def _unknown_key_error(key: str) -> UserError:
    inside = [k for k in all_keys() if k.startswith(key + ".")]
    if inside:
        return UserError(f"{key!r} is a section of the config, not a key: set one of {', '.join(inside)}")
    close = difflib.get_close_matches(key, all_keys(), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"expected one of {', '.join(all_keys())}"
    return UserError(f"unknown config key {key!r}; {hint}")


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a type hint, converting where it is lossless (int -> float, list -> tuple)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, key)
            except ValueError as error:
                errors.append(str(error))
        raise UserError(errors[0])
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise UserError(f"{key} expects one of {', '.join(map(repr, args))}, got {value!r}")
    expected = origin or hint
    if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if expected in (bool, str) and isinstance(value, expected):
        return value
    if expected in (tuple, list) and isinstance(value, (list, tuple)):
        item_hints = args if expected is tuple and Ellipsis not in args else [args[0] if args else Any] * len(value)
        if expected is tuple and len(item_hints) != len(value):
            raise UserError(f"{key} expects {len(item_hints)} values, got {list(value)!r}")
        items = [v if h is Any else _convert(v, h, f"{key}[{i}]") for i, (v, h) in enumerate(zip(value, item_hints))]
        return tuple(items) if expected is tuple else items
    if expected is dict and isinstance(value, dict):
        key_hint, value_hint = args
        return {_convert(k, key_hint, f"{key} key"): _convert(v, value_hint, f"{key}[{k}]") for k, v in value.items()}
    name = getattr(expected, "__name__", str(expected))
    raise UserError(f"{key} expects {name}, got {value!r} ({type(value).__name__})")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise UserError(f"{prefix.rstrip('.') or 'the config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key_error(prefix + key)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _convert(value, hint, prefix + key)
    return cls(**kwargs)  # its checks name each key in full


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The raw mapping of a preset file (only what differs from the defaults)."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        close = difflib.get_close_matches(name, preset_names(), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"unknown preset {name!r}: expected one of {', '.join(preset_names())}{hint}")
    return parse_yaml(path.read_text()) or {}


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``key.sub=value`` to a nested mapping; the value is parsed as YAML (``3``, ``1e-3``, ``[4, 8]``).

    A table (``schedule.lr={64: 0.002, 128: 0.001}``) replaces the preset's whole table.
    """
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"override {assignment!r} must look like key=value, e.g. schedule.total_kimg=100")
    if key not in all_keys():
        raise _unknown_key_error(key)
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    try:
        node[leaf] = parse_yaml(raw)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UserError(f"override {assignment!r}: the value {raw!r} is not valid YAML ({problem})") from None


def resolve_config(preset: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Defaults, then the preset, then each ``key=value`` override, validated.

    (book: chapter 7, The training loop)
    """
    data = load_preset(preset) if preset else {}
    for assignment in overrides:
        apply_override(data, assignment)
    return TrainConfig.from_dict(data)


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the config as YAML (atomically: a run folder never holds half a config)."""
    with atomic_write(path) as temp:
        temp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def load_config(path: str | Path) -> TrainConfig:
    return TrainConfig.from_dict(parse_yaml(Path(path).read_text()) or {})
