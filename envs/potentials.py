"""Potential functions Φ(observation) for potential-based shaping of the control tasks.

Each maps observations [..., obs_size] to potentials [...] in roughly [-1, 1]; a
config scales them (`shaping.scale`, a sweepable coefficient), and a negative scale
turns a helpful potential into a harmful one. Potential-based shaping with any Φ
leaves the optimal policy unchanged (Ng, Harada & Russell, "Policy invariance under
reward transformations", ICML 1999); only the speed of learning changes.
"""

from __future__ import annotations

import jax.numpy as jnp

CARTPOLE_THETA_LIMIT = 12 * 2 * 3.141592653589793 / 360
CARTPOLE_X_LIMIT = 2.4


def cartpole_upright(obs):
  """1 with the pole upright at the centre, 0 at the failure limits (CartPole)."""
  x, theta = obs[..., 0], obs[..., 2]
  return 1.0 - 0.5 * (jnp.abs(theta) / CARTPOLE_THETA_LIMIT + jnp.abs(x) / CARTPOLE_X_LIMIT)


def pendulum_upright(obs):
  """cos θ: 1 upright, -1 hanging (Pendulum observation [cos θ, sin θ, θ̇])."""
  return obs[..., 0]


def zero(obs):
  """Φ = 0 (no shaping; a control for sweeps)."""
  return jnp.zeros(obs.shape[:-1], obs.dtype)


POTENTIALS = {"cartpole_upright": cartpole_upright, "pendulum_upright": pendulum_upright,
              "zero": zero}


def register(name: str, fn, *, replace: bool = False):
  """Makes `fn` (obs [..., obs_size] -> [...]) available as `shaping.potential = name`.

  Args:
    name: the potential's name.
    fn: a pure JAX function of raw observations.
    replace: allow replacing a potential of the same name.

  Returns:
    `fn`.
  """
  if name in POTENTIALS and POTENTIALS[name] is not fn and not replace:
    raise ValueError(f"potentials.register: a potential named {name!r} exists; pass "
                     f"replace=True to replace it.")
  POTENTIALS[name] = fn
  return fn


def get(name: str):
  """The potential function called `name` (one of `POTENTIALS`)."""
  if name not in POTENTIALS:
    raise ValueError(f"unknown potential {name!r}; allowed: {', '.join(POTENTIALS)}.")
  return POTENTIALS[name]
