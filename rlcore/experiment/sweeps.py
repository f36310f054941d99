"""Sweep planning: a config's sweep as groups of runs.

`config.sweep = {"key": [values], ...}` declares a product of values and
`config.sweep_points = [{"key": value, ..., "_name": label}, ...]` lists points by
hand. Keys among the agent family's `hparam_names` (traced scalars such as `lr` or
`shaping.scale`) become *points* of one group, trained together (vmapped, for a
vectorized agent); every other key is *structural*: each combination is a separate
*group*, run after the others under `<workdir>/<group name>/`. A listed point that sets
a vmapped key pins it: its group runs that value only (e.g. a no-regulariser point
with `reg_coef = 0` beside groups that sweep `reg_coef`).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

from rlcore.agents import get_family
from rlcore.experiment.configs import override


class Group(NamedTuple):
  """One structural combination of a sweep and its vmapped points."""
  name: str          # "" when the config has no structural sweep
  config: object     # the group's ConfigDict (structural overrides applied)
  points: list       # [{hparam: value}] per point ([{}]: the configured values)
  overrides: dict    # the structural overrides


def point_name(overrides: dict) -> str:
  """A file-system-safe name for a dict of overrides ("lr=0.001_ent_coef=0")."""
  if not overrides:
    return "default"
  parts = []
  for k, v in overrides.items():
    v = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    parts.append(f"{k}={v}")
  return "_".join(parts).replace("/", "-").replace(" ", "")


def plan(config) -> list[Group]:
  """The groups of a prepared config (see `rlcore.experiment.prepare_config`)."""
  hparams = get_family(config.agent).hparam_names
  sweep = dict(config.sweep)
  structural = {k: v for k, v in sweep.items() if k not in hparams}
  vmapped = {k: v for k, v in sweep.items() if k in hparams}
  listed = [dict(p) for p in config.get("sweep_points", [])] or [{}]
  groups = []
  for combo in itertools.product(*structural.values()) if structural else [()]:
    for point in listed:
      extra = dict(point)   # a copy: every structural combination needs the label
      label = extra.pop("_name", None)
      overrides = {**dict(zip(structural, combo)), **extra}
      name = point_name(overrides) if overrides else ""
      if label:
        name = "_".join(filter(None, [point_name(dict(zip(structural, combo)))
                                      if structural else "", label]))
      free = {k: v for k, v in vmapped.items() if k not in extra}   # the rest are pinned
      points = [dict(zip(free, c)) for c in itertools.product(*free.values())] or [{}]
      groups.append(Group(name=name, config=override(config, overrides), points=points,
                          overrides=overrides))
  return groups
