"""Config and hyperparameter checks shared by the agent families.

Each raises ValueError naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

import jax.numpy as jnp


def check_choice(name: str, value, allowed: Iterable) -> None:
  """`value` must be one of `allowed`."""
  allowed = tuple(allowed)
  if value not in allowed:
    raise ValueError(f"config.{name}: {value!r} is not allowed; choose one of "
                     f"{', '.join(map(str, allowed))}.")


def require_int(config, name: str, least: int = 1, *, prefix: str = "") -> None:
  """`config[name]` must be an integer >= `least` (bools are refused).

  `prefix` names a sub-config in the message ("sft." for `config.sft`).
  """
  value = config[name]
  if isinstance(value, bool) or int(value) != value or value < least:
    kind = {1: "a positive integer", 0: "a non-negative integer"}.get(
        least, f"an integer >= {least}")
    raise ValueError(f"config.{prefix}{name} must be {kind}, got {value!r}.")


def check_number(config, name: str, low: Optional[float] = None,
                 high: Optional[float] = None, *, low_open: bool = False,
                 prefix: str = "") -> None:
  """`config[name]` must be a finite real number in [low, high] ((low, high] with
  `low_open`); NaN, infinities and bools are refused, naming the key and the range."""
  value = config[name]
  lo = "-inf" if low is None else f"{low:g}"
  hi = "inf" if high is None else f"{high:g}"
  interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{']' if high is not None else ')'}"
  ok = (not isinstance(value, bool) and isinstance(value, (int, float))
        and math.isfinite(value)
        and (low is None or (value > low if low_open else value >= low))
        and (high is None or value <= high))
  if not ok:
    raise ValueError(f"config.{prefix}{name} must be a finite number in {interval}, "
                     f"got {value!r}.")


def require_positive_ints(config, names: Iterable[str]) -> None:
  """Every `config[name]` must be a positive integer."""
  for name in names:
    require_int(config, name, 1)


def check_hparams(hparams: Optional[dict], defaults: dict) -> dict:
  """Checks hparams keys, fills missing ones from `defaults`, casts to float32.

  A partial dict is enough, so `jax.vmap(train)(keys, {"lr": lrs})` sweeps one
  hyperparameter (the defaults enter as unbatched constants); None gives the defaults.
  """
  hparams = {} if hparams is None else hparams
  unknown = sorted(set(hparams) - set(defaults))
  if unknown:
    raise ValueError(f"hparams: unknown keys {unknown}; allowed: {', '.join(defaults)}.")
  return {k: jnp.asarray(hparams.get(k, v), jnp.float32) for k, v in defaults.items()}
