"""Experiment configs: the runner's own keys, loading a config file, checking a config.

A config is an `ml_collections.ConfigDict` with the keys of its agent family's
`default_config()` (`config.agent` names the family) plus the runner's keys below.
`configs/<name>.py` files define `get_config(arg=None)`; the command line loads them
by path (`--config=configs/x.py:arg`), a notebook with `load_config`.
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

import ml_collections

from rlcore.agents import get_family
from rlcore.agents.validation import check_choice, require_positive_ints

RUNNER_DEFAULTS = dict(
    seed=0,                 # base seed; seed index s of a run uses fold_in(key(seed), s)
    num_seeds=1,            # seeds per point (vmapped together for vectorized agents)
    sweep={},               # {"key": [values]}: a product of values
    sweep_points=[],        # [{"key": value, ..., "_name": label}]: listed structural points
    chunk_updates=20,       # updates per chunk (the checkpoint and log interval)
    log_every=1,            # write every n-th update's metrics
    shard="auto",           # "auto" | "seeds" | "envs" | "none": how runs use devices
    tensorboard=False,      # also write TensorBoard scalars (tensorboardX)
    plot=True,              # write curve.png
    existing="resume",      # a workdir run with another config: "resume" refuses, "restart" moves it aside, "resume_recorded" goes on with its config
    allow_nonfinite=False,  # go on when a loss goes NaN/inf (else the run stops with an error)
)
SHARD_MODES = ("auto", "seeds", "envs", "none")
EXISTING_MODES = ("resume", "restart", "resume_recorded")


def with_runner_defaults(config) -> ml_collections.ConfigDict:
  """`config` plus every runner key it lacks (so `--config.seed=3` etc. can override).

  Args:
    config: an agent config, e.g. `ppo.default_config()`.

  Returns:
    The same ConfigDict, extended in place.
  """
  with config.unlocked():
    for k, v in RUNNER_DEFAULTS.items():
      if k not in config:
        config[k] = (ml_collections.ConfigDict(v, allow_dotted_keys=True)
                     if isinstance(v, dict) else v)
  return config


def load_config(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """`get_config(arg)` of the config file at `path`, as `--config=path:arg` loads it.

  Args:
    path: a config file, e.g. "configs/ppo_cartpole.py"; "path:arg" is split.
    arg: the argument passed to `get_config` (None when the file takes none).

  Returns:
    The ConfigDict.
  """
  if arg is None and ":" in os.path.basename(path):
    path, arg = path.rsplit(":", 1)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"load_config: no config file {path!r}.")
  name = "rlcore_config_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg is not None else module.get_config()


def flat_keys(config, prefix: str = "") -> list[str]:
  """Dotted names of every leaf key ("shaping.scale"); `sweep` counts as one leaf."""
  keys = []
  for k, v in config.items():
    full = prefix + k
    if isinstance(v, ml_collections.ConfigDict) and k != "sweep":
      keys += flat_keys(v, full + ".")
    else:
      keys.append(full)
  return keys


def override(config, overrides: dict) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted keys set: override(c, {"shaping.scale": 2.0})."""
  c = config.copy_and_resolve_references()
  with c.unlocked():
    for key, value in overrides.items():
      node = c
      *path, leaf = key.split(".")
      for p in path:
        node = node[p]
      node[leaf] = value
  return c


def prepare_config(config) -> ml_collections.ConfigDict:
  """Fills the runner's defaults and fails on unknown keys, sweep keys and values.

  Every point of the sweep is validated by its family's `validate_config` before
  anything trains.

  Args:
    config: a config as `get_config` returns it (runner keys optional).

  Returns:
    A resolved copy with every runner key.

  Raises:
    ValueError: naming the key and what is allowed.
  """
  family = get_family(config.get("agent", "ppo"))
  config = with_runner_defaults(config.copy_and_resolve_references())
  with config.unlocked():
    config.sweep_points = [dict(p) for p in config.sweep_points]
  allowed = set(flat_keys(family.default_config())) | set(RUNNER_DEFAULTS)
  unknown = sorted(set(flat_keys(config)) - allowed)
  if unknown:
    raise ValueError(f"unknown config keys {unknown}; allowed keys: {', '.join(sorted(allowed))}.")
  sweep = dict(config.sweep)
  for key, values in sweep.items():
    if key not in allowed or key in RUNNER_DEFAULTS and key != "seed":
      raise ValueError(f"config.sweep: unknown or unsweepable key {key!r}; sweepable: "
                       f"{', '.join(sorted(allowed - set(RUNNER_DEFAULTS)))}.")
    if not isinstance(values, (list, tuple)) or not values:
      raise ValueError(f"config.sweep[{key!r}] must be a non-empty list of values, "
                       f"got {values!r}.")
    _no_duplicates(f"config.sweep[{key!r}]", [_canonical(v) for v in values], values)
  for i, point in enumerate(config.sweep_points):
    bad = [k for k in point if k != "_name" and (k not in allowed or k in RUNNER_DEFAULTS)]
    if not isinstance(point, dict) or bad:
      raise ValueError(f"config.sweep_points[{i}] must be a dict of config keys; unknown or "
                       f"unsweepable keys: {bad}.")
  points = list(config.sweep_points)
  _no_duplicates("config.sweep_points names", [p.get("_name") for p in points if "_name" in p],
                 [p.get("_name") for p in points if "_name" in p])
  _no_duplicates("config.sweep_points", [_canonical({k: v for k, v in p.items() if k != "_name"})
                                         for p in points], points)
  check_choice("shard", config.shard, SHARD_MODES)
  check_choice("existing", config.existing, EXISTING_MODES)
  require_positive_ints(config, ("num_seeds", "chunk_updates", "log_every"))
  # Every value of the sweep is validated (each with the other keys' first values), so a
  # bad one fails here, before anything trains.
  first = {k: v[0] for k, v in sweep.items()}
  variants = [{}] + [{key: v} for key, values in sweep.items() for v in values[1:]]
  for point in points or [{}]:
    listed = {k: v for k, v in point.items() if k != "_name"}
    for variant in variants:
      family.validate_config(override(config, {**first, **variant, **listed}))
  return config


def _canonical(value) -> str:
  """A value's identity in a sweep: 0.001 and 1e-3 are the same point."""
  return json.dumps(value, sort_keys=True, default=str)


def _no_duplicates(what: str, keys: list, values: list) -> None:
  seen = {}
  for key, value in zip(keys, values):
    if key in seen:
      raise ValueError(f"{what} lists the same point twice ({seen[key]!r} and {value!r}); "
                       f"each point must be distinct.")
    seen[key] = value


def config_json(config) -> Any:
  """The config as plain JSON values (what summaries and checkpoints record)."""
  return json.loads(config.to_json_best_effort())
