"""REINFORCE with a learned baseline, on shaped rewards, as one jittable function.

    ∇J(θ) ≈ E[ ∇ log π_θ(a_t|s_t) (G_t − V_φ(s_t)) ] + c_e ∇H[π_θ],
    L_V = ½ E[(V_φ(s_t) − G_t)²],

where G_t is the λ-return of the shaped rewards (λ = `gae_lambda`; 1 gives the
Monte-Carlo return, bootstrapped only where a rollout or a time limit cuts an
episode), computed by `rlcore.gae` as A_t + V(s_t). One full-batch gradient step per
rollout, no ratio and no clipping.

See "Simple statistical gradient-following algorithms for connectionist reinforcement
learning", Williams 1992 (https://link.springer.com/article/10.1007/BF00992696), and
for the baseline and λ-returns, Schulman et al. 2015 (https://arxiv.org/abs/1506.02438).

Same interface as `rlcore.agents.ppo`: `make_train(config) -> train(key, hparams)`,
`make_agent(config)` for the chunked runner. Config keys are PPO's minus
update_epochs, num_minibatches and clip_eps (ignored if present).
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

import envs
from rlcore.agents import common, ppo, shaping_hook

HPARAMS = ("lr", "ent_coef", "vf_coef", "gamma", "gae_lambda",
           "max_grad_norm") + tuple(shaping_hook.COEFFICIENTS.values())

ReinforceState = ppo.PPOState


def make_agent(config, *, env: Optional[envs.Environment] = None,
               constrain_env: Optional[Callable] = None) -> ppo.Agent:
  """Builds the REINFORCE pieces (see `rlcore.agents.ppo.make_agent` for the fields).

  Args:
    config: ConfigDict as for PPO (update_epochs / num_minibatches / clip_eps unused).
    env: optional batched environment.
    constrain_env: optional sharding constraint for the env state.

  Returns:
    An `rlcore.agents.ppo.Agent` whose update is one REINFORCE step.
  """
  common.require_positive_ints(config, ("num_envs", "num_steps", "total_timesteps"))
  cfg = config.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.update_epochs, cfg.num_minibatches = 1, 1
    if "clip_eps" not in cfg:
      cfg.clip_eps = 0.2
  base = ppo.make_agent(cfg, env=env, constrain_env=constrain_env)
  network, dist, env = base.network, base.distribution, base.env
  rollout = common.make_rollout(env, network, dist, config.num_steps,
                                constrain_env or (lambda s: s))
  anneal = bool(config.anneal_lr)
  adam = optax.scale_by_adam(eps=1e-5)
  gae_method = config.get("gae_method", None)

  def default_hparams():
    hp = base.default_hparams()
    return {k: hp[k] for k in HPARAMS}

  def init(key, hparams=None):
    hparams = default_hparams() if hparams is None else common.check_hparams(
        hparams, default_hparams())
    full = dict(hparams, clip_eps=jnp.asarray(0.0, jnp.float32))
    return base.init(key, full)._replace(hparams=hparams)

  def loss_fn(params, traj, advantage, hp):
    head, value = network.apply(params, traj["obs"])
    log_prob = dist.log_prob(head, traj["action"])
    valid = traj["valid"].astype(jnp.float32)
    n = jnp.maximum(valid.sum(), 1.0)
    target = jax.lax.stop_gradient(advantage + traj["value"])
    pg = -jnp.sum(log_prob * jax.lax.stop_gradient(advantage) * valid) / n
    value_loss = 0.5 * jnp.sum(jnp.square(value - target) * valid) / n
    entropy = jnp.sum(dist.entropy(head) * valid) / n
    total = pg + hp["vf_coef"] * value_loss - hp["ent_coef"] * entropy
    return total, dict(actor_loss=pg, value_loss=value_loss, entropy=entropy)

  def update(state):
    hp = state.hparams
    env_state, key, traj = rollout(state.params, state.env_state, state.key)
    shaped, shaping_state, advantage = common.shaped_advantages(
        config, network, state.params, traj, state.shaping_state, hp, gae_method)
    flat, unravel = jax.flatten_util.ravel_pytree(state.params)  # Adam state is flat (PPO's)
    (loss, aux), grads = jax.value_and_grad(
        lambda f: loss_fn(unravel(f), traj, advantage, hp), has_aux=True)(flat)
    norm = jnp.sqrt(jnp.sum(grads * grads))
    grads = grads * jnp.minimum(1.0, hp["max_grad_norm"] / (norm + 1e-12))
    updates, opt_state = adam.update(grads, state.opt_state)
    frac = 1.0 - state.update_step.astype(jnp.float32) / base.num_updates if anneal else 1.0
    lr = hp["lr"] * frac
    params = unravel(flat - lr * updates)
    stats, ep_metrics = state.episode_stats.update(traj, shaped)
    metrics = dict(ep_metrics, loss=loss, **aux, learning_rate=lr,
                   env_steps=(state.update_step + 1) * base.steps_per_update)
    return state._replace(params=params, opt_state=opt_state, env_state=env_state,
                          shaping_state=shaping_state, key=key,
                          update_step=state.update_step + 1, episode_stats=stats), metrics

  return base._replace(init=init, update=update, default_hparams=default_hparams)


def make_train(config, **kwargs) -> Callable:
  """`train(key, hparams=None) -> (final state, metrics [num_updates])`, as in PPO.

  Args:
    config: see `make_agent`.
    **kwargs: passed to `make_agent`.

  Returns:
    The train function.
  """
  return common.make_train_fn(make_agent(config, **kwargs))
