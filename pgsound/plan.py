"""What a run will do at each level, and the checks that arithmetic alone can make (book: chapter 10).

A progressive run changes its resolution, minibatch and widths as it grows; a setting that fails at 256x256
fails only after hours of training. ``level_plans`` lists, for every level the schedule reaches, the image
shape, the minibatch (and each process's share), the learning rate and the widths of G and D;
``check_run`` refuses at the start, with a message that names the setting and the fix, what would fail
later: a minibatch that does not split across the processes or into minibatch-stddev groups, a layer
with no channels, data whose shape the networks cannot grow to, labels asked for but absent.
``pgsound train`` runs these checks before it builds anything; ``pgsound preflight`` runs them and then one
real step per phase, with the configs ``per_process_config`` (one process's share of every minibatch) and
``narrow_config`` (every width narrowed: the same run in seconds) derive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from pgsound.config import NetworkConfig, TrainConfig
from pgsound.errors import UserError
from pgsound.networks import count_levels, num_features
from pgsound.schedule import Schedule, level_resolution

NARROW_DIVISOR = 32  # preflight's --widths narrow: every width divided by up to this


class PlanError(UserError):
    """A setting that cannot work for this data or process count; the message names the key and the fix."""


@dataclass(frozen=True)
class LevelPlan:
    """One level of a run: what its images, minibatch and layers will be."""

    level: int
    shape: tuple[int, int]  # (H, W) of the level's images
    resolution: int  # the larger side: the key of the schedule's tables
    minibatch: int  # the global minibatch
    per_process: int  # each process's share


def run_schedule(config: TrainConfig, resolution: tuple[int, int]) -> Schedule:
    """The run's :class:`~pgsound.schedule.Schedule` on data of ``resolution`` (H, W).

    ``ValueError`` when the data is not the base shape doubled a whole number of times (``check_run`` words it).
    """
    return Schedule(config.schedule, count_levels(tuple(resolution), config.base_shape), config.base_shape)


def level_plans(schedule: Schedule, nproc: int = 1) -> list[LevelPlan]:
    """A :class:`LevelPlan` for every level the run reaches."""
    plans = []
    for level in schedule.reached_levels():
        shape = schedule.level_shape(level)
        batch = schedule.minibatch(level)
        plans.append(LevelPlan(
            level=level, shape=shape, resolution=max(shape), minibatch=batch, per_process=batch // nproc,
        ))
    return plans


def per_process_config(config: TrainConfig, nproc: int) -> TrainConfig:
    """One process's share of the run: every minibatch divided by ``nproc`` (``check_run`` made them divide)."""
    if nproc == 1:
        return config
    schedule = replace(
        config.schedule, minibatch_default=max(config.schedule.minibatch_default // nproc, 1),
        minibatch={res: batch // nproc for res, batch in config.schedule.minibatch.items()},
    )
    return replace(config, schedule=schedule)


def narrow_config(config: TrainConfig, num_levels: int) -> TrainConfig:
    """The same run with every width divided by up to 32, keeping at least one channel at the top level.

    The same shapes, minibatches and schedule at a fraction of the arithmetic: preflight's ``--widths narrow``.
    (book: chapter 10, Before renting a GPU)
    """

    def narrower(net: NetworkConfig) -> NetworkConfig:
        divisor = NARROW_DIVISOR
        while divisor > 1 and (
            num_features(num_levels, net.fmap_base // divisor, net.fmap_decay, max(net.fmap_max // divisor, 1)) < 1
        ):
            divisor //= 2
        return replace(net, fmap_base=max(net.fmap_base // divisor, 1), fmap_max=max(net.fmap_max // divisor, 1))

    latent = None if config.latent_size is None else max(config.latent_size // NARROW_DIVISOR, 1)
    return replace(config, g=narrower(config.g), d=narrower(config.d), latent_size=latent)


def check_run(
    config: TrainConfig, resolution: tuple[int, int], channels: int, num_labels: int = 0, nproc: int = 1
) -> list[LevelPlan]:
    """Refuse a config that cannot train on this data with ``nproc`` processes; return its level plans.

    (book: chapter 10, Before renting a GPU)
    """
    height, width = resolution
    base = config.base_shape
    try:
        schedule = run_schedule(config, (height, width))
    except ValueError:
        new_base = suggest_base((height, width))
        tables = "".join(f" --set 'schedule.{name}={table}'" for name, table in
                         rekeyed_tables(config, new_base, (height, width)).items())
        raise PlanError(
            f"data of {height}x{width} cannot be grown to from base_shape {list(base)}: each level doubles both "
            f"sides, so the data must be the base doubled a whole number of times: set base_shape="
            f"{list(new_base)} for this data{' (with' + tables + ')' if tables else ''}, or prepare the data at "
            f"another size"
        ) from None
    num_levels = schedule.num_levels
    if config.schedule.fixed_level is not None and config.schedule.fixed_level >= num_levels:
        raise PlanError(
            f"schedule.fixed_level {config.schedule.fixed_level} is beyond this data's levels 0..{num_levels - 1} "
            f"({height}x{width} from a {base[0]}x{base[1]} base)"
        )
    if channels < 1:
        raise PlanError(f"the data has {channels} channels")
    if config.conditional and num_labels == 0:
        raise PlanError("conditional=true needs labels, and this dataset has none: prepare it with labels, or "
                        "set conditional=false")
    _check_widths(config, num_levels, (height, width))
    _check_table_keys(config, base)
    plans = level_plans(schedule, nproc)
    _check_process_split(config, plans, nproc)
    _check_minibatch(config, plans, nproc)
    return plans


def _check_process_split(config: TrainConfig, plans: list[LevelPlan], nproc: int) -> None:
    """Every level's minibatch must split evenly across the processes; one message names them all."""
    bad = [plan for plan in plans if plan.minibatch % nproc]
    if not bad:
        return
    table = dict(config.schedule.minibatch)
    for plan in bad:
        table[plan.resolution] = max(plan.minibatch - plan.minibatch % nproc, nproc)
    listed = " and ".join(f"{p.minibatch} at {p.shape[0]}x{p.shape[1]}" for p in bad)
    verb = "does" if len(bad) == 1 else "do"
    example = "{" + ", ".join(f"{res}: {table[res]}" for res in sorted(table)) + "}"
    raise PlanError(
        f"minibatch {listed} {verb} not split across {nproc} processes: make each a multiple of {nproc} in "
        f"schedule.minibatch (for example --set 'schedule.minibatch={example}')"
    )


def rekeyed_tables(config: TrainConfig, base: tuple[int, int], resolution: tuple[int, int]) -> dict[str, dict]:
    """The schedule's per-resolution tables keyed by the levels of data of ``resolution`` grown from ``base``.

    An entry keeps its place below the top: the preset's key for half its data's size becomes half the new
    size (by level from the base where the preset names no data shape). Entries with no such level go.
    """
    top = max(resolution)
    sides = [max(base) * 2**level for level in range(16) if max(base) * 2**level <= top]
    old_top = max(config.data_shape[1:]) if config.data_shape else None
    tables = {}
    for name in ("minibatch", "lr", "tick_kimg"):
        table = getattr(config.schedule, name)
        moved = {}
        for key, value in table.items():
            if old_top:
                side = top * key // old_top if (top * key) % old_top == 0 else None
            else:
                side = max(base) * key // max(config.base_shape)
            if side in sides:
                moved[side] = value
        if table:
            tables[name] = moved
    return tables


def suggest_base(resolution: tuple[int, int]) -> tuple[int, int]:
    """The smallest base with both sides at least 4 (any size for data narrower than 4) that doubles to it."""
    height, width = resolution
    target = 4 if min(height, width) >= 4 else 1
    while height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= target:
        height, width = height // 2, width // 2
    return height, width


def _check_widths(config: TrainConfig, num_levels: int, resolution: tuple[int, int]) -> None:
    for name in ("g", "d"):
        net = getattr(config, name)
        for stage in range(num_levels + 1):
            if num_features(stage, net.fmap_base, net.fmap_decay, net.fmap_max) >= 1:
                continue
            shape = "the latent" if stage == 0 else "x".join(
                map(str, level_resolution(stage - 1, config.base_shape)))
            need = math.ceil(2.0 ** ((num_levels) * net.fmap_decay))
            raise PlanError(
                f"{name}.fmap_base {net.fmap_base} gives 0 channels at {shape} (nf({stage}) = min(int("
                f"{net.fmap_base} / 2**({stage} * {net.fmap_decay:g})), {net.fmap_max}) = 0) on "
                f"{resolution[0]}x{resolution[1]} data: set {name}.fmap_base to at least {need}, or use a "
                f"preset sized for data of this size"
            )


def _check_table_keys(config: TrainConfig, base: tuple[int, ...]) -> None:
    sides = {max(base) * 2**level for level in range(16)}
    for table in ("minibatch", "lr", "tick_kimg"):
        for key in getattr(config.schedule, table):
            if key not in sides:
                valid = ", ".join(str(s) for s in sorted(sides)[:10])
                raise PlanError(
                    f"schedule.{table} has the key {key}, which is no level's resolution from a {base[0]}x{base[1]} "
                    f"base (the keys are the larger side of a level: {valid}, ...)"
                )


def _check_minibatch(config: TrainConfig, plans: list[LevelPlan], nproc: int) -> None:
    """Each per-process minibatch must split into minibatch-stddev groups of min(group size, minibatch).

    One message names every level that does not, with fixes that hold at every level when followed.
    """
    group_size = config.mbstd_group_size
    if group_size <= 1:
        return
    bad = [p for p in plans if p.per_process % min(group_size, p.per_process)]
    if not bad:
        return
    sizes = [p.per_process for p in plans]
    common = math.gcd(*sizes)
    fixes = [f"mbstd_group_size={max(sizes)} (or more: each minibatch is then one group, as in NVIDIA's v1 "
             f"preset)"]
    if common > 1 and common != max(sizes):
        fixes.append(f"mbstd_group_size={common} (it divides every level's minibatch)")
    multiple = group_size * nproc
    table = {p.resolution: max(p.minibatch - p.minibatch % multiple, multiple) for p in bad}
    runs: list[list[LevelPlan]] = []  # neighbouring levels with one minibatch are named as a range
    for p in bad:
        if runs and runs[-1][-1].per_process == p.per_process and runs[-1][-1].level == p.level - 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    named = [f"{r[0].per_process} at {'x'.join(map(str, r[0].shape))}"
             + (f" to {'x'.join(map(str, r[-1].shape))}" if len(r) > 1 else "") for r in runs]
    joined = ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]
    where = joined.replace(" at ", " per process at ", 1) if nproc > 1 else joined
    verb = "does" if len(bad) == 1 else "do"
    example = "{" + ", ".join(f"{res}: {batch}" for res, batch in table.items()) + "}"
    raise PlanError(
        f"minibatch {where} {verb} not split into minibatch-stddev groups of {group_size}: set "
        f"{' or '.join(fixes)}, or make {'that entry' if len(bad) == 1 else 'those entries'} of schedule.minibatch "
        f"a multiple of {multiple} (for example --set 'schedule.minibatch={example}')"
    )
