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
`make_agent(config)` for the runner. Config keys: `rlcore.agents.control`'s.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

from rlcore.agents import control, protocol

HPARAMS = control.HPARAMS
ReinforceState = control.ControlState


def default_config():
  """Every REINFORCE config key (`rlcore.agents.control.default_config()`'s), agent
  "reinforce"."""
  c = control.default_config()
  c.agent = "reinforce"             # the agent family
  return c


def make_agent(config, *, env=None,
               constrain_batch: Optional[Callable] = None) -> control.ControlAgent:
  """Builds the REINFORCE agent (see `rlcore.agents.ppo.make_agent` for the arguments).

  Args:
    config: ConfigDict with `default_config()`'s keys (others are ignored).
    env: optional batched environment.
    constrain_batch: optional sharding constraint for the env state.

  Returns:
    A `control.ControlAgent` whose update is one REINFORCE step.
  """
  control.validate_config(config)
  env = control.make_env(config) if env is None else env
  network, dist = control.make_network(env, config)
  constrain = constrain_batch or (lambda s: s)
  steps_per_update = config.num_envs * config.num_steps
  make_optimizer = lambda hp: control.optimizer(
      hp, num_updates=config.total_timesteps // steps_per_update, steps_per_update=1,
      anneal=bool(config.anneal_lr), eps=float(config.get("adam_eps", 1e-5)))
  rollout = control.make_rollout(env, network, dist, config.num_steps, constrain)

  def init(key, hparams):
    return control.init_state(key, hparams, config=config, env=env, network=network,
                              optimizer=make_optimizer(hparams), constrain=constrain)

  def loss_fn(params, traj: control.Rollout, advantage, hp, entropy_key):
    head, value = network.apply(params, traj.obs)
    log_prob = dist.log_prob(head, traj.transition.action)
    valid = traj.transition.valid.astype(jnp.float32)
    n = jnp.maximum(valid.sum(), 1.0)
    target = jax.lax.stop_gradient(advantage + traj.value)
    pg = -jnp.sum(log_prob * jax.lax.stop_gradient(advantage) * valid) / n
    value_loss = 0.5 * jnp.sum(jnp.square(value - target) * valid) / n
    entropy = jnp.sum(dist.entropy(head, entropy_key) * valid) / n
    total = pg + hp["vf_coef"] * value_loss - hp["ent_coef"] * entropy
    return total, dict(actor_loss=pg, value_loss=value_loss, entropy=entropy)

  def update(state: ReinforceState):
    hp = state.hparams
    env_state, key, traj = rollout(state.params, state.env_state, state.key)
    shaped, shaping_state, advantage = control.shaped_advantages(
        config, traj, state.shaping_state, hp, config.gae_method)
    flat, unravel = jax.flatten_util.ravel_pytree(state.params)   # see control.optimizer
    (loss, aux), grads = jax.value_and_grad(
        lambda f: loss_fn(unravel(f), traj, advantage, hp, jax.random.fold_in(key, 1)),
        has_aux=True)(flat)
    updates, opt_state = make_optimizer(hp).update(grads, state.opt_state, flat)
    stats, ep_metrics = state.episode_stats.update(traj, shaped)
    metrics = dict(ep_metrics, loss=loss, **aux,
                   learning_rate=opt_state.hyperparams["learning_rate"],
                   env_steps=(state.update_step + 1) * steps_per_update)
    return state._replace(params=unravel(optax.apply_updates(flat, updates)),
                          opt_state=opt_state, env_state=env_state,
                          shaping_state=shaping_state, key=key,
                          update_step=state.update_step + 1, episode_stats=stats), metrics

  return control.assemble(config, env=env, network=network, dist=dist,
                          hparam_names=HPARAMS, init=init, update=update,
                          steps_per_update=steps_per_update,
                          finite_metrics=("loss", "actor_loss", "value_loss", "entropy"))


def make_train(config, **kwargs) -> Callable:
  """`train(key, hparams=None) -> (final state, metrics [num_updates])`, as in PPO.

  Args:
    config: see `make_agent`.
    **kwargs: passed to `make_agent`.

  Returns:
    The train function.
  """
  return control.make_train_fn(make_agent(config, **kwargs))


FAMILY = protocol.register(protocol.AgentFamily(
    name="reinforce", default_config=default_config, make_agent=make_agent,
    validate_config=control.validate_config, hparam_names=HPARAMS,
    batch_size=control.batch_size))
