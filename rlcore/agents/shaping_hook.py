"""The reward-shaping hook of the control agents: config -> `rlcore.shaping` transform.

`config.shaping.chain` names transforms applied in order to each rollout's rewards,
before advantages (docs/design.md, "Data conventions"); an empty chain means no shaping:

* `potential_based`: F = γ Φ(s') − Φ(s) with Φ = `scale` ·
  `rlcore.envs.potentials[potential]` evaluated on raw (unnormalised) observations, Grześ's terminal correction, and
  bootstrapping on truncation (`rlcore.potential_shaping`); a learned potential instead
  when `potential` names one of `LEARNED` (`"td_jepa"`: the zero-shot value of a trained
  TD-JEPA policy, read from the run that the sub-config `shaping.td_jepa` names, see
  `rlcore.agents.td_jepa.load_potential`);
* `reward_scale`: r ← `reward_scale` · r;
* `reward_clip`: r ← clip(r, −`clip`, `clip`).

`scale`, `reward_scale` and `clip` are traced coefficients (`hparams`), so a sweep
vmaps over them; the chain itself and the potential's name are structural.
"""

from __future__ import annotations

import importlib
import json

import jax.numpy as jnp

import rlcore
from rlcore.envs import potentials

TRANSFORMS = ("potential_based", "reward_scale", "reward_clip")
# Learned potentials: name -> module with `load_potential(sub_config) -> (obs -> Φ)`; the
# sub-config `shaping.<name>` says which trained run to read.
LEARNED = {"td_jepa": "rlcore.agents.td_jepa"}
_LOADED: dict = {}
COEFFICIENTS = {"scale": "shaping.scale", "reward_scale": "shaping.reward_scale",
                "clip": "shaping.clip"}


def parse_chain(chain) -> tuple[str, ...]:
  """Names in `chain` ("a,b", a list, "" or "none"), validated."""
  if chain is None:
    return ()
  names = chain.split(",") if isinstance(chain, str) else list(chain)
  names = tuple(n.strip() for n in names if n.strip() and n.strip() != "none")
  for n in names:
    if n not in TRANSFORMS:
      raise ValueError(f"config.shaping.chain: unknown transform {n!r}; allowed: "
                       f"{', '.join(TRANSFORMS)} (comma-separated, '' for none).")
  return names


def default_hparams(shaping_config) -> dict:
  """The sweepable shaping coefficients with their configured values."""
  return {full: float(shaping_config.get(short, 1.0 if short != "clip" else 10.0))
          for short, full in COEFFICIENTS.items()}


def validate(shaping_config) -> None:
  """Fails early on unknown names (transforms or potential)."""
  names = parse_chain(shaping_config.get("chain", ""))
  if "potential_based" in names:
    name = shaping_config.potential
    if name in LEARNED:
      source = shaping_config.get(name)
      if source is None or not source.get("workdir") or not source.get("config"):
        raise ValueError(f"config.shaping.potential = {name!r} needs config.shaping.{name}."
                         f"workdir and .config naming the trained run (see "
                         f"{LEARNED[name]}.load_potential).")
      return
    potentials.get(shaping_config.potential)


def potential_fn(shaping_config):
  """Φ(obs) of `shaping_config.potential`: a named function, or a learned potential
  loaded once per sub-config."""
  name = shaping_config.potential
  if name not in LEARNED:
    return potentials.get(name)
  source = shaping_config[name]
  key = (name, json.dumps(source.to_dict(), sort_keys=True, default=str))
  if key not in _LOADED:
    _LOADED[key] = importlib.import_module(LEARNED[name]).load_potential(source)
  return _LOADED[key]


def make_shaping(shaping_config, hparams: dict) -> rlcore.ShapingTransform:
  """Builds the configured chain; `hparams` holds gamma and the shaping coefficients.

  Args:
    shaping_config: the `config.shaping` ConfigDict.
    hparams: dict of scalar (possibly traced) coefficients, including "gamma".

  Returns:
    A `rlcore.ShapingTransform` applied as `apply(rewards [T, B], state, Transition)`.
  """
  members = []
  for name in parse_chain(shaping_config.get("chain", "")):
    if name == "potential_based":
      phi = potential_fn(shaping_config)
      scale = hparams["shaping.scale"]
      members.append(rlcore.potential_shaping(
          lambda obs, phi=phi, scale=scale: scale * phi(obs), hparams["gamma"],
          bootstraps_on_truncation=bool(
              shaping_config.get("bootstraps_on_truncation", True))))
    elif name == "reward_scale":
      members.append(lambda r, ctx, c=hparams["shaping.reward_scale"]: r * c)
    elif name == "reward_clip":
      members.append(lambda r, ctx, c=hparams["shaping.clip"]: jnp.clip(r, -c, c))
  return rlcore.chain(*members)
