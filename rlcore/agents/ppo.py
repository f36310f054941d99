"""Proximal Policy Optimisation, PureJaxRL-style: the whole run is one jittable function.

    L(θ) = E[ min(ρ_t A_t, clip(ρ_t, 1−ε, 1+ε) A_t) ] − c_v L_V + c_e H[π_θ],
    ρ_t = π_θ(a_t|s_t) / π_old(a_t|s_t),
    L_V = ½ E[ max((V_θ − R)², (V_old + clip(V_θ − V_old, −ε, ε) − R)²) ]
        (config.clip_value = False: ½ E[(V_θ − R)²], as brax's PPO),

with advantages A from `rlcore.gae` over rewards that first pass through the
configured shaping chain (`rlcore.agents.shaping_hook`). Unlike PureJaxRL, time
limits are truncations: GAE bootstraps from V of the true next observation and only
cuts the λ-recursion there (Pardo et al. 2018, https://arxiv.org/abs/1712.00378).
With config.advantages = "brax" they are recomputed in every minibatch with the
current critic instead, as brax's PPO does (`brax_advantages`, `make_learner`).

See "Proximal Policy Optimization Algorithms", Schulman et al. 2017
(https://arxiv.org/abs/1707.06347), and PureJaxRL (Lu et al. 2022,
https://arxiv.org/abs/2210.04160) for the single-jit training loop.

Usage:

    train = ppo.make_train(config)                  # config: ml_collections.ConfigDict
    state, metrics = jax.jit(jax.vmap(train))(jax.random.split(key, 8))

    agent = ppo.make_agent(config)                  # the rlcore.agents.Agent protocol
    state = agent.init(key, {"lr": 1e-3})           # a partial dict: the rest as configured
    state, metrics = agent.run_chunk(state, 10)     # 10 updates (rollout + PPO epochs)

Scalar hyperparameters live in `state.hparams` (a dict of float32 arrays: lr,
ent_coef, vf_coef, clip_eps, gamma, gae_lambda, max_grad_norm and the shaping
coefficients), so `vmap` over `init`'s `hparams` sweeps them in one compiled call.
"""

from __future__ import annotations

from typing import Callable, Optional

import chex
import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

import rlcore
from rlcore.agents import control, protocol
from rlcore.agents.validation import check_number, require_positive_ints

# Scalar hyperparameters that may be traced (swept with vmap); everything else in the
# config is structural.
HPARAMS = control.HPARAMS + ("clip_eps",)
PPOState = control.ControlState


def default_config():
  """Every PPO config key with PureJaxRL's CartPole defaults (an ml_collections ConfigDict).

  Returns:
    ConfigDict: `rlcore.agents.control.default_config()`'s keys plus agent ("ppo"),
    update_epochs, num_minibatches, clip_eps and clip_value.
  """
  c = control.default_config()
  c.agent = "ppo"                   # the agent family
  c.update_epochs = 4               # PPO epochs over each rollout
  c.num_minibatches = 4             # minibatches per epoch
  c.clip_eps = 0.2                  # ratio and value clip ε (traced)
  c.clip_value = True               # clip the value loss as PureJaxRL (False: brax's plain squared error)
  c.advantages = "rollout"          # "rollout" | "brax" (see ADVANTAGES)
  return c


# config.advantages: when and how the advantages and value targets are computed.
# "rollout": GAE once per update, with the critic that collected the rollout.
# "brax": as brax's PPO, in every minibatch with the current critic, over whole
#   `gae_unroll`-step unrolls (the minibatches are shuffled unrolls), with brax's
#   advantage r_t + γ(1 − d_t) v_{t+1} − V(s_t) (v the λ-return targets); see
#   `make_learner`.
ADVANTAGES = ("rollout", "brax")


def validate_config(config) -> None:
  """Raises ValueError naming the offending value for sizes that do not fit."""
  control.validate_config(config)
  require_positive_ints(config, ("update_epochs", "num_minibatches"))
  check_number(config, "clip_eps", 0.0)
  batch = config.num_envs * config.num_steps
  advantages = config.get("advantages", "rollout")
  if advantages not in ADVANTAGES:
    raise ValueError(f"config.advantages = {advantages!r}; expected one of {ADVANTAGES}.")
  if advantages == "brax":
    unroll = int(config.get("gae_unroll", 0))
    if unroll <= 0 or config.num_steps % unroll:
      raise ValueError(
          f"config.advantages = 'brax' needs config.gae_unroll (the unroll length, now "
          f"{unroll}) > 0 dividing config.num_steps = {config.num_steps}.")
    unrolls = batch // unroll
    if unrolls % config.num_minibatches:
      raise ValueError(
          f"config.advantages = 'brax' splits the num_envs * num_steps / gae_unroll = "
          f"{unrolls} unrolls into num_minibatches = {config.num_minibatches}; choose "
          f"num_minibatches among the divisors of {unrolls}.")
  if batch % config.num_minibatches:
    raise ValueError(
        f"num_envs * num_steps = {config.num_envs} * {config.num_steps} = {batch} is not "
        f"divisible by num_minibatches = {config.num_minibatches}; choose num_minibatches "
        f"among the divisors of {batch}.")


def make_agent(config, *, env=None,
               constrain_batch: Optional[Callable] = None) -> control.ControlAgent:
  """Builds the PPO agent from a config (see `configs/ppo_cartpole.py`).

  Args:
    config: ConfigDict with `default_config()`'s keys.
    env: a batched environment to use instead of `control.make_env(config)`.
    constrain_batch: optional function applied to the batched env state after reset
      and every step (the runner passes a sharding constraint over devices).

  Returns:
    A `control.ControlAgent` (the `rlcore.agents.Agent` protocol).
  """
  validate_config(config)
  env = control.make_env(config) if env is None else env
  network, dist = control.make_network(env, config)
  constrain = constrain_batch or (lambda s: s)
  num_steps = config.num_steps
  batch_size = config.num_envs * num_steps
  num_minibatches, epochs = config.num_minibatches, config.update_epochs
  num_updates = config.total_timesteps // batch_size
  make_optimizer = lambda hp: control.optimizer(
      hp, num_updates=num_updates, steps_per_update=epochs * num_minibatches,
      anneal=bool(config.anneal_lr), eps=float(config.get("adam_eps", 1e-5)))

  def init(key, hparams):
    return control.init_state(key, hparams, config=config, env=env, network=network,
                              optimizer=make_optimizer(hparams), constrain=constrain)

  rollout = control.make_rollout(env, network, dist, num_steps, constrain)
  brax_unroll = (int(config.gae_unroll)
                 if config.get("advantages", "rollout") == "brax" else 0)
  learn = make_learner(network, dist, num_minibatches=num_minibatches, epochs=epochs,
                       clip_value=bool(config.get("clip_value", True)),
                       brax_unroll=brax_unroll, gae_method=config.gae_method)

  def update(state: PPOState):
    hp = state.hparams
    opt = make_optimizer(hp)
    env_state, key, traj = rollout(state.params, state.env_state, state.key)
    shaped, shaping_state, advantage = control.shaped_advantages(
        config, traj, state.shaping_state, hp, config.gae_method)
    data = dict(obs=traj.obs, action=traj.transition.action, log_prob=traj.log_prob,
                value=traj.value)
    if brax_unroll:       # the learner computes them (`advantage` is dead code then)
      t = traj.transition
      data.update(reward=shaped, next_obs=traj.next_obs, terminated=t.terminated,
                  truncated=t.truncated)
    else:
      data.update(advantage=advantage, target=advantage + traj.value)
    key, learn_key = jax.random.split(key)
    params, opt_state, losses = learn(state.params, state.opt_state, data, hp, learn_key,
                                      opt)
    stats, ep_metrics = state.episode_stats.update(traj, shaped)
    metrics = dict(ep_metrics, **jax.tree.map(jnp.mean, losses),
                   learning_rate=opt_state.hyperparams["learning_rate"],
                   env_steps=(state.update_step + 1) * batch_size)
    return PPOState(params=params, opt_state=opt_state, env_state=env_state,
                    shaping_state=shaping_state, key=key, update_step=state.update_step + 1,
                    hparams=hp, episode_stats=stats), metrics

  return control.assemble(config, env=env, network=network, dist=dist,
                          hparam_names=HPARAMS, init=init, update=update,
                          steps_per_update=batch_size,
                          finite_metrics=("loss", "actor_loss", "value_loss", "entropy"))


def make_learner(network, dist, *, num_minibatches: int, epochs: int,
                 extra_loss: Optional[Callable] = None, clip_value: bool = True,
                 brax_unroll: int = 0, gae_method: Optional[str] = None) -> Callable:
  """The PPO learning step: `epochs` passes of clipped-surrogate SGD over a rollout.

  Returns `learn(params, opt_state, data, hp, key, opt) -> (params, opt_state, losses)`
  where `data` holds time-major `[T, B, ...]` arrays obs, action, log_prob, value,
  advantage and target (plus whatever `extra_loss` reads), `hp` the traced
  hyperparameters (clip_eps, vf_coef, ent_coef), `opt` the optax transformation of
  the flat parameter vector (see `control.optimizer`) and `losses` the per-minibatch
  loss terms `[epochs, num_minibatches]`. Advantages are standardised per minibatch.
  Each epoch shuffles the rollout with `rlcore.shuffle.permutation` (no key-value sort).

  Args:
    network: the actor-critic.
    dist: its action distribution.
    num_minibatches: minibatches per epoch (must divide T · B).
    epochs: passes over the rollout.
    extra_loss: optional `(head, mb, hp) -> (scalar, dict of scalars)` added to the
      loss (ORPO's action-distribution divergence); its dict joins the losses.
    clip_value: the value loss as in the module docstring (PureJaxRL); False: the
      plain ½ E[(V_θ − R)²] (brax's PPO). With large returns (brax's reward scaling
      10, discount 0.97: returns near 330) the clipped form lets each value move by
      at most ε per update, which brax's settings (19 updates on inverted_pendulum)
      cannot afford.
    brax_unroll: 0: `data` holds advantage and target. k > 0 (config.advantages =
      "brax"): `data` holds reward, next_obs, terminated and truncated instead, the
      rollout is cut into unrolls of k steps per env, each minibatch is a set of
      whole unrolls, and its advantages and targets are computed in the loss with
      the current critic (not differentiated), as brax's PPO does:

          v_t = V(s_t) + A_t                      (A: `rlcore.gae` within the unroll)
          Â_t = r_t + γ (1 − d_t) v'_t − V(s_t),  v'_t = v_{t+1}, or V(s'_t) where
                                                  the unroll or the episode is cut

      with targets v_t and advantages Â_t (brax's `compute_gae`). Unlike brax, a
      truncated step bootstraps from the critic on its true next observation
      (`control.next_values_from_shifted`); brax zeroes its advantage.
    gae_method: `rlcore.gae`'s method (brax_unroll > 0 only).
  """

  def loss_fn(params, mb, hp, key):
    head, value = network.apply(params, mb["obs"])
    if brax_unroll:
      mb = dict(mb, **_brax_advantages(params, mb, value, hp))
    log_prob = dist.log_prob(head, mb["action"])
    ratio = jnp.exp(log_prob - mb["log_prob"])
    adv = mb["advantage"]
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    clip_eps = hp["clip_eps"]
    actor_loss = -jnp.mean(jnp.minimum(ratio * adv,
                                       jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv))
    value_error = jnp.square(value - mb["target"])
    if clip_value:
      v_clipped = mb["value"] + jnp.clip(value - mb["value"], -clip_eps, clip_eps)
      value_error = jnp.maximum(value_error, jnp.square(v_clipped - mb["target"]))
    value_loss = 0.5 * jnp.mean(value_error)
    entropy = jnp.mean(dist.entropy(head, key))   # the key: tanh_normal's estimate
    total = actor_loss + hp["vf_coef"] * value_loss - hp["ent_coef"] * entropy
    extra_aux = {}
    if extra_loss is not None:
      extra, extra_aux = extra_loss(head, mb, hp)
      total = total + extra
    aux = dict(actor_loss=actor_loss, value_loss=value_loss, entropy=entropy,
               approx_kl=jnp.mean(mb["log_prob"] - log_prob),
               clip_fraction=jnp.mean((jnp.abs(ratio - 1) > clip_eps).astype(jnp.float32)),
               **extra_aux)
    return total, aux

  def _brax_advantages(params, mb, value, hp):
    tm = lambda x: jnp.swapaxes(x, 0, 1)       # mb: [n, k, ...] whole unrolls
    critic = lambda x: network.apply(jax.lax.stop_gradient(params), x)[1]
    advantage, target = brax_advantages(
        critic, tm(jax.lax.stop_gradient(value)), tm(mb["reward"]), tm(mb["next_obs"]),
        tm(mb["terminated"]), tm(mb["truncated"]), hp["gamma"], hp["gae_lambda"],
        method=gae_method)
    return dict(advantage=tm(advantage), target=tm(target))

  def learn(params, opt_state, data, hp, key, opt):
    if brax_unroll:
      data = jax.tree.map(lambda x: to_unrolls(x, brax_unroll), data)
    else:
      data = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), data)
    batch_size = data["log_prob"].shape[0]     # transitions, or unrolls
    minibatch_size = batch_size // num_minibatches
    flat, unravel = jax.flatten_util.ravel_pytree(params)   # see control.optimizer

    def sgd_step(carry, mb_and_key):
      flat, opt_state = carry
      mb, mb_key = mb_and_key
      (loss, aux), grads = jax.value_and_grad(
          lambda f: loss_fn(unravel(f), mb, hp, mb_key), has_aux=True)(flat)
      updates, opt_state = opt.update(grads, opt_state, flat)
      return (optax.apply_updates(flat, updates), opt_state), dict(loss=loss, **aux)

    def epoch(carry, epoch_key):
      # rlcore.shuffle.permutation needs no key-value sort: jax.random.permutation's
      # took ~120 ms per epoch at 2048 envs x 128 steps on a 2-core CPU (0.5 ms here),
      # and 24.2 against 20.2 ms per update at 4 envs x 8 vmapped seeds.
      perm = rlcore.shuffle.permutation(epoch_key, batch_size)
      # tanh_normal's entropy samples; fold_in leaves the shuffles (and so the runs of
      # the other distributions, which ignore the key) as they were before it.
      entropy_key = jax.random.fold_in(epoch_key, 1)
      mbs = jax.tree.map(
          lambda x: x[perm].reshape((num_minibatches, minibatch_size) + x.shape[1:]), data)
      return jax.lax.scan(sgd_step, carry,
                          (mbs, jax.random.split(entropy_key, num_minibatches)))

    (flat, opt_state), losses = jax.lax.scan(
        epoch, (flat, opt_state), jax.random.split(key, epochs))
    return unravel(flat), opt_state, losses

  return learn


def brax_advantages(critic: Callable, values, reward, next_obs, terminated, truncated,
                    gamma, lambda_, *, method: Optional[str] = None):
  """Advantages and value targets of brax's PPO (`brax.training.agents.ppo.losses.compute_gae`).

      v_t = V(s_t) + A_t,     A = `rlcore.gae` cut after the last step and at truncations
      Â_t = r_t + γ (1 − d_t) v'_t − V(s_t),   v'_t = v_{t+1}, or V(s'_t) where cut

  Â differs from the GAE advantage A by the λ of its first step: Â_t = δ_t +
  γ (1 − d_t) A_{t+1} within an unroll. v are the λ-return targets. brax zeroes a
  truncated step's advantage (and its TD error); here it bootstraps from the critic
  on the true next observation, as `rlcore.gae` does. See brax
  (https://github.com/google/brax) and Schulman et al. 2015
  (https://arxiv.org/abs/1506.02438).

  Args:
    critic: [N, *obs] -> [N] values (not differentiated through: pass stopped params).
    values: [k, n] V(s_t) of one unroll of k steps per column.
    reward: [k, n] rewards (shaped and scaled).
    next_obs: [k, n, *obs] true next observations (before any auto-reset).
    terminated: [k, n] bool.
    truncated: [k, n] bool.
    gamma: discount, scalar.
    lambda_: GAE λ, scalar.
    method: `rlcore.gae`'s method.

  Returns:
    (advantages Â [k, n], targets v [k, n]).
  """
  chex.assert_rank([values, reward, terminated, truncated], 2)
  chex.assert_equal_shape([values, reward, terminated, truncated])
  chex.assert_equal_shape_prefix([values, next_obs], 2)
  values, reward, next_obs, terminated, truncated = (jnp.asarray(x) for x in (
      values, reward, next_obs, terminated, truncated))
  values = jax.lax.stop_gradient(values)
  shifted = jnp.concatenate([values[1:], critic(next_obs[-1])[None]], 0)
  next_v = control.next_values_from_shifted(critic, shifted, next_obs, terminated,
                                            truncated)
  cut = truncated.at[-1].set(True)
  adv = rlcore.gae(reward, values, terminated, cut, gamma, lambda_,
                   next_values=next_v, method=method)
  target = values + adv
  boot = jnp.where(cut, next_v, jnp.concatenate([target[1:], next_v[-1:]], 0))
  advantage = reward + gamma * jnp.where(terminated, 0.0, boot) - values
  return advantage, target


def to_unrolls(x, k: int):
  """[T, B, ...] -> [T / k * B, k, ...]: each env's rollout cut into unrolls of k steps
  (unroll j of env b is row j * B + b)."""
  t, b = x.shape[:2]
  x = jnp.swapaxes(x.reshape((t // k, k, b) + x.shape[2:]), 1, 2)
  return x.reshape((t // k * b, k) + x.shape[3:])


def make_train(config, **kwargs) -> Callable:
  """PureJaxRL's interface: `train(key, hparams=None) -> (final PPOState, metrics)`.

  Metrics are stacked over updates ([num_updates] per scalar). The function is pure:
  `jax.jit(jax.vmap(train))(keys)` trains one agent per key, and
  `jax.vmap(train, in_axes=(None, 0))(key, {"lr": lrs})` sweeps hyperparameters (a
  partial dict; the rest keep their configured values). `train.agent` is the agent.

  Args:
    config: see `make_agent`.
    **kwargs: passed to `make_agent`.

  Returns:
    The train function.
  """
  return control.make_train_fn(make_agent(config, **kwargs))


FAMILY = protocol.register(protocol.AgentFamily(
    name="ppo", default_config=default_config, make_agent=make_agent,
    validate_config=validate_config, hparam_names=HPARAMS,
    batch_size=control.batch_size))
