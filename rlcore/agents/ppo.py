"""Proximal Policy Optimisation, PureJaxRL-style: the whole run is one jittable function.

    L(θ) = E[ min(ρ_t A_t, clip(ρ_t, 1−ε, 1+ε) A_t) ] − c_v L_V + c_e H[π_θ],
    ρ_t = π_θ(a_t|s_t) / π_old(a_t|s_t),
    L_V = ½ E[ max((V_θ − R)², (V_old + clip(V_θ − V_old, −ε, ε) − R)²) ],

with advantages A from `rlcore.gae` over rewards that first pass through the
configured shaping chain (`rlcore.agents.shaping_hook`). Unlike PureJaxRL, time
limits are truncations: GAE bootstraps from V of the true next observation and only
cuts the λ-recursion there (Pardo et al. 2018, https://arxiv.org/abs/1712.00378).

See "Proximal Policy Optimization Algorithms", Schulman et al. 2017
(https://arxiv.org/abs/1707.06347), and PureJaxRL (Lu et al. 2022,
https://arxiv.org/abs/2210.04160) for the single-jit training loop.

Usage:

    train = ppo.make_train(config)                  # config: ml_collections.ConfigDict
    state, metrics = jax.jit(jax.vmap(train))(jax.random.split(key, 8))

    agent = ppo.make_agent(config)                  # the pieces the runner chunks
    state = agent.init(key, agent.default_hparams())
    state, metrics = agent.update(state)            # one rollout + PPO epochs

Scalar hyperparameters live in `state.hparams` (a dict of float32 arrays: lr,
ent_coef, vf_coef, clip_eps, gamma, gae_lambda, max_grad_norm and the shaping
coefficients), so `vmap` over `init`'s `hparams` sweeps them in one compiled call.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax

import envs
from rlcore.agents import common, shaping_hook
from rlcore.nets import mlp

# Scalar hyperparameters that may be traced (swept with vmap); everything else in the
# config is structural.
HPARAMS = ("lr", "ent_coef", "vf_coef", "clip_eps", "gamma", "gae_lambda",
           "max_grad_norm") + tuple(shaping_hook.COEFFICIENTS.values())


class PPOState(NamedTuple):
  """Everything a PPO run carries between updates (a pytree; checkpointed whole)."""
  params: Any               # network parameters
  opt_state: Any            # Adam moments of the flattened parameter vector
  env_state: envs.EnvState  # batched [B] environment state
  shaping_state: Any        # state of the shaping chain
  key: jax.Array            # PRNG key
  update_step: jax.Array    # [] int32, updates done
  hparams: dict             # scalar float32 hyperparameters (see HPARAMS)
  episode_stats: Any        # common.EpisodeTracker


class Agent(NamedTuple):
  """The pieces of a PPO run: `train = scan(update) ∘ init`."""
  init: Callable             # (key, hparams) -> PPOState
  update: Callable           # (PPOState) -> (PPOState, metrics dict of scalars)
  num_updates: int
  steps_per_update: int
  default_hparams: Callable  # () -> dict of float32 scalars
  env: envs.Environment
  network: mlp.ActorCritic
  distribution: mlp.Distribution
  policy: Callable           # (params, obs, key or None) -> action (None: greedy)
  observe: Callable          # (state of one run, raw obs) -> the obs the policy expects


def default_config():
  """Every PPO config key with PureJaxRL's CartPole defaults (an ml_collections ConfigDict).

  Returns:
    ConfigDict: agent, env_name, env_backend, max_episode_steps, normalize_obs,
    num_envs, num_steps, total_timesteps, update_epochs, num_minibatches, lr,
    anneal_lr, gamma, gae_lambda, clip_eps, ent_coef, vf_coef, max_grad_norm,
    hidden_sizes, activation, gae_method and shaping (chain, potential, scale,
    reward_scale, clip, bootstraps_on_truncation).
  """
  import ml_collections
  c = ml_collections.ConfigDict()
  c.agent = "ppo"
  c.env_name = "CartPole-v1"
  c.env_backend = ml_collections.config_dict.placeholder(str)
  c.max_episode_steps = ml_collections.config_dict.placeholder(int)
  c.normalize_obs = False
  c.num_envs = 4
  c.num_steps = 128
  c.total_timesteps = 500_000
  c.update_epochs = 4
  c.num_minibatches = 4
  c.lr = 2.5e-4
  c.anneal_lr = True
  c.gamma = 0.99
  c.gae_lambda = 0.95
  c.clip_eps = 0.2
  c.ent_coef = 0.01
  c.vf_coef = 0.5
  c.max_grad_norm = 0.5
  c.hidden_sizes = (64, 64)
  c.activation = "tanh"
  c.gae_method = ml_collections.config_dict.placeholder(str)
  c.shaping = ml_collections.ConfigDict(dict(
      chain="", potential="zero", scale=1.0, reward_scale=1.0, clip=10.0,
      bootstraps_on_truncation=True))
  return c


def validate_config(config) -> None:
  """Raises ValueError naming the offending value for sizes that do not fit."""
  common.require_positive_ints(config, ("num_envs", "num_steps", "update_epochs",
                                        "num_minibatches", "total_timesteps"))
  batch = config.num_envs * config.num_steps
  if batch % config.num_minibatches:
    raise ValueError(
        f"num_envs * num_steps = {config.num_envs} * {config.num_steps} = {batch} is not "
        f"divisible by num_minibatches = {config.num_minibatches}; choose num_minibatches "
        f"among the divisors of {batch}.")
  if config.total_timesteps < batch:
    raise ValueError(f"total_timesteps = {config.total_timesteps} is smaller than one "
                     f"update's batch num_envs * num_steps = {batch}.")
  common.check_choice("activation", config.activation, tuple(mlp.ACTIVATIONS))
  common.check_choice("env_name", config.env_name, tuple(envs.available()))
  shaping_hook.validate(config.shaping)


def make_agent(config, *, env: Optional[envs.Environment] = None,
               constrain_env: Optional[Callable] = None) -> Agent:
  """Builds the PPO pieces from a config (see `configs/ppo_cartpole.py`).

  Args:
    config: ConfigDict with env_name, num_envs, num_steps, total_timesteps,
      update_epochs, num_minibatches, the HPARAMS, anneal_lr, hidden_sizes,
      activation, normalize_obs and a `shaping` sub-config.
    env: a batched environment to use instead of `envs.make_batched(config.env_name)`.
    constrain_env: optional function applied to the batched env state after reset
      and every step (the runner passes a sharding constraint over devices).

  Returns:
    An `Agent`.
  """
  validate_config(config)
  if env is None:
    env = envs.make_batched(config.env_name, config.num_envs,
                            normalize_obs=bool(config.get("normalize_obs", False)),
                            max_episode_steps=config.get("max_episode_steps", None),
                            backend=config.get("env_backend", None))
  constrain = constrain_env or (lambda s: s)
  spec = env.action_spec
  if spec.is_discrete:
    network = mlp.ActorCritic(spec.num_actions, True, tuple(config.hidden_sizes),
                              config.activation)
    dist = mlp.categorical(spec.num_actions)
  else:
    size = int(np.prod(spec.shape))
    network = mlp.ActorCritic(size, False, tuple(config.hidden_sizes), config.activation)
    dist = mlp.diagonal_gaussian(size)

  num_envs, num_steps = config.num_envs, config.num_steps
  batch_size = num_envs * num_steps
  num_minibatches, epochs = config.num_minibatches, config.update_epochs
  minibatch_size = batch_size // num_minibatches
  num_updates = config.total_timesteps // batch_size
  anneal = bool(config.anneal_lr)
  adam = optax.scale_by_adam(eps=1e-5)
  gae_method = config.get("gae_method", None)

  def default_hparams():
    hp = {k: float(config[k]) for k in HPARAMS if "." not in k}
    hp.update(shaping_hook.default_hparams(config.shaping))
    return {k: jnp.asarray(hp[k], jnp.float32) for k in HPARAMS}

  def init(key, hparams=None):
    hparams = default_hparams() if hparams is None else common.check_hparams(
        hparams, default_hparams())
    key, net_key, env_key = jax.random.split(key, 3)
    obs_shape = env.observation_shape
    params = network.init(net_key, jnp.zeros(obs_shape, jnp.float32))
    env_state = constrain(env.reset(env_key))
    shaping = shaping_hook.make_shaping(config.shaping, hparams)
    return PPOState(params=params, opt_state=adam.init(flatten(params)), env_state=env_state,
                    shaping_state=shaping.init(), key=key,
                    update_step=jnp.zeros((), jnp.int32), hparams=hparams,
                    episode_stats=common.EpisodeTracker.init(num_envs))

  def policy(params, obs, key=None):
    head, _ = network.apply(params, obs)
    return dist.mode(head) if key is None else dist.sample(key, head)

  def loss_fn(params, mb, hp):
    head, value = network.apply(params, mb["obs"])
    log_prob = dist.log_prob(head, mb["action"])
    ratio = jnp.exp(log_prob - mb["log_prob"])
    adv = mb["advantage"]
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    clip_eps = hp["clip_eps"]
    actor_loss = -jnp.mean(jnp.minimum(ratio * adv,
                                       jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv))
    v_clipped = mb["value"] + jnp.clip(value - mb["value"], -clip_eps, clip_eps)
    value_loss = 0.5 * jnp.mean(jnp.maximum(jnp.square(value - mb["target"]),
                                            jnp.square(v_clipped - mb["target"])))
    entropy = jnp.mean(dist.entropy(head))
    total = actor_loss + hp["vf_coef"] * value_loss - hp["ent_coef"] * entropy
    aux = dict(actor_loss=actor_loss, value_loss=value_loss, entropy=entropy,
               approx_kl=jnp.mean(mb["log_prob"] - log_prob),
               clip_fraction=jnp.mean((jnp.abs(ratio - 1) > clip_eps).astype(jnp.float32)))
    return total, aux

  # The SGD steps work on one flat parameter vector, so Adam, clipping and the update
  # run as a few fused elementwise passes instead of a few per parameter array (on
  # CartPole's tiny network this measured no faster, within noise).
  template = network.init(jax.random.key(0), jnp.zeros(env.observation_shape, jnp.float32))
  _, unravel = jax.flatten_util.ravel_pytree(template)
  flatten = lambda tree: jax.flatten_util.ravel_pytree(tree)[0]

  def sgd_step(carry, mb):
    flat, opt_state, lr, hp = carry
    (loss, aux), grads = jax.value_and_grad(
        lambda f: loss_fn(unravel(f), mb, hp), has_aux=True)(flat)
    norm = jnp.sqrt(jnp.sum(grads * grads))
    grads = grads * jnp.minimum(1.0, hp["max_grad_norm"] / (norm + 1e-12))
    updates, opt_state = adam.update(grads, opt_state)
    return (flat - lr * updates, opt_state, lr, hp), dict(loss=loss, **aux)

  rollout = common.make_rollout(env, network, dist, num_steps, constrain)

  def update(state: PPOState):
    hp = state.hparams
    env_state, key, traj = rollout(state.params, state.env_state, state.key)
    shaped, shaping_state, advantage = common.shaped_advantages(
        config, network, state.params, traj, state.shaping_state, hp, gae_method)
    data = dict(obs=traj["obs"], action=traj["action"], log_prob=traj["log_prob"],
                value=traj["value"], advantage=advantage,
                target=advantage + traj["value"])
    data = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), data)

    frac = 1.0 - state.update_step.astype(jnp.float32) / num_updates if anneal else 1.0
    lr = hp["lr"] * frac

    def epoch(carry, epoch_key):
      perm = jax.random.permutation(epoch_key, batch_size)
      mbs = jax.tree.map(
          lambda x: x[perm].reshape((num_minibatches, minibatch_size) + x.shape[1:]), data)
      return jax.lax.scan(sgd_step, carry, mbs)

    key, perm_key = jax.random.split(key)
    (flat, opt_state, _, _), losses = jax.lax.scan(
        epoch, (flatten(state.params), state.opt_state, lr, hp),
        jax.random.split(perm_key, epochs))
    params = unravel(flat)

    stats, ep_metrics = state.episode_stats.update(traj, shaped)
    metrics = dict(ep_metrics, **jax.tree.map(jnp.mean, losses), learning_rate=lr,
                   env_steps=(state.update_step + 1) * batch_size)
    new_state = PPOState(params=params, opt_state=opt_state, env_state=env_state,
                         shaping_state=shaping_state, key=key,
                         update_step=state.update_step + 1, hparams=hp,
                         episode_stats=stats)
    return new_state, metrics

  return Agent(init=init, update=update, num_updates=num_updates,
               steps_per_update=batch_size, default_hparams=default_hparams, env=env,
               network=network, distribution=dist, policy=policy, observe=common.observe)


def make_train(config, **kwargs) -> Callable:
  """PureJaxRL's interface: `train(key, hparams=None) -> (final PPOState, metrics)`.

  Metrics are stacked over updates ([num_updates] per scalar). The function is pure:
  `jax.jit(jax.vmap(train))(keys)` trains one agent per key, and
  `jax.vmap(train, in_axes=(None, 0))(key, {"lr": lrs})` sweeps hyperparameters (a
  partial dict; the rest keep their configured values). `train.agent` is the `Agent`.

  Args:
    config: see `make_agent`.
    **kwargs: passed to `make_agent`.

  Returns:
    The train function.
  """
  return common.make_train_fn(make_agent(config, **kwargs))
