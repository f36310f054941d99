"""Config and hyperparameter checks shared by the agent families.

Each raises ValueError naming the key, the value and what is allowed.
"""

from __future__ import annotations

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
