"""What the control agents (PPO, REINFORCE) share: config, rollout, advantages, optimiser.

* `default_config()`: the keys every control agent reads (env, sizes, optimiser,
  discount, network, shaping chain, host evaluation);
* `Rollout`: the typed batch that crosses from the environment to the agent
  (`rlcore.Transition` with raw observations, plus the policy's observations,
  values, log-probs and finished-episode statistics), and `make_rollout`;
* `shaped_advantages`: the shaping chain (`rlcore.agents.shaping_hook`), then GAE;
* `optimizer`: `optax.chain(clip_by_global_norm, adam)` under
  `optax.inject_hyperparams`, with the learning rate and clip norm taken from the
  run's traced hyperparameters, so a sweep vmaps over them;
* `ControlState`, `EpisodeTracker`, `ControlAgent` and `assemble`, which turns an
  `init`/`update` pair into an agent of the `rlcore.agents.Agent` protocol.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax

import rlcore
from rlcore import envs
from rlcore.agents import shaping_hook
from rlcore.agents.validation import (check_choice, check_hparams, check_number,
                                      require_int, require_positive_ints)
from rlcore.nets import mlp

# Scalar hyperparameters every control agent traces (a sweep over them is vmapped).
HPARAMS = ("lr", "ent_coef", "vf_coef", "gamma", "gae_lambda", "max_grad_norm") + tuple(
    shaping_hook.COEFFICIENTS.values())

# config.action_distribution -> the continuous policy's distribution (rlcore.nets.mlp).
ACTION_DISTRIBUTIONS = {"normal": mlp.diagonal_gaussian, "tanh_normal": mlp.tanh_normal}


def default_config():
  """The keys every control agent reads, at PureJaxRL's CartPole settings.

  Returns:
    ConfigDict: env_name, env_backend, max_episode_steps, action_repeat, normalize_obs,
    obs_clip, random_start, num_envs, num_steps, total_timesteps, lr, anneal_lr, gamma,
    gae_lambda, ent_coef, vf_coef, max_grad_norm, hidden_sizes, critic_hidden_sizes,
    activation, log_std_init, action_distribution, kernel_init, adam_eps, gae_method,
    gae_unroll, shaping
    (chain, potential, scale, reward_scale, clip, bootstraps_on_truncation, td_jepa),
    host_eval_env and host_eval_episodes.
  """
  import ml_collections
  placeholder = ml_collections.config_dict.placeholder
  c = ml_collections.ConfigDict()
  c.env_name = "CartPole-v1"        # task: rlcore.envs.available() lists them
  c.env_backend = placeholder(str)  # brax physics backend (brax tasks only; None: default)
  c.max_episode_steps = placeholder(int)  # time limit in env steps (None: the task's own)
  c.action_repeat = 1               # env steps per agent step (rewards summed)
  c.normalize_obs = False           # running observation normalisation over the envs
  c.obs_clip = 10.0                 # normalised observations clipped to ±obs_clip (inf: none)
  c.random_start = False            # episodes start anywhere free (pointmass/, gridworld/ only)
  c.num_envs = 4                    # environments per run
  c.num_steps = 128                 # rollout length per update
  c.total_timesteps = 500_000       # environment steps per run
  c.lr = 2.5e-4                     # Adam learning rate (traced: sweepable)
  c.anneal_lr = True                # anneal the lr linearly to 0 over the run
  c.gamma = 0.99                    # discount (traced)
  c.gae_lambda = 0.95               # GAE λ (traced; 1: Monte-Carlo returns)
  c.ent_coef = 0.01                 # entropy bonus coefficient (traced)
  c.vf_coef = 0.5                   # value loss coefficient (traced)
  c.max_grad_norm = 0.5             # global gradient-norm clip (traced)
  c.hidden_sizes = (64, 64)         # MLP widths of the actor (and of the critic, unless set below)
  c.critic_hidden_sizes = placeholder(tuple)  # MLP widths of the critic (None: hidden_sizes)
  c.activation = "tanh"             # MLP activation: tanh, relu or swish
  c.log_std_init = 0.0              # Gaussian policy's initial log std (continuous actions)
  c.action_distribution = "normal"  # continuous actions: "normal" (state-independent std,
                                    # env clips) or "tanh_normal" (brax's: state-dependent
                                    # softplus scale, tanh-squashed; log_std_init unused)
  c.kernel_init = "orthogonal"      # dense kernels: "orthogonal" (PureJaxRL's gains) or "lecun_uniform" (brax's)
  c.adam_eps = 1e-5                 # Adam's ε (PureJaxRL's 1e-5; brax and optax use 1e-8)
  c.gae_method = placeholder(str)   # recurrence: "scan" or "associative" (None: per backend)
  c.gae_unroll = 0                  # cut GAE every this many steps, bootstrapping there (0: never)
  c.shaping = ml_collections.ConfigDict()
  c.shaping.chain = ""              # shaping transforms in order: potential_based, reward_scale, reward_clip
  c.shaping.potential = "zero"      # potential of potential_based (rlcore.envs.potentials)
  c.shaping.scale = 1.0             # potential scale (traced)
  c.shaping.reward_scale = 1.0      # reward_scale's factor (traced)
  c.shaping.clip = 10.0             # reward_clip's bound (traced)
  c.shaping.bootstraps_on_truncation = True  # potential shaping bootstraps at time limits
  c.shaping.td_jepa = ml_collections.ConfigDict()  # the run of shaping.potential = "td_jepa"
  c.shaping.td_jepa.workdir = ""    # its workdir (trained there first unless finished)
  c.shaping.td_jepa.config = ""     # its TD-JEPA config, "path[:arg]"
  c.shaping.td_jepa.group = ""      # its group ("" without a structural sweep)
  c.shaping.td_jepa.run = 0         # which run of the group (point x seed index)
  c.shaping.td_jepa.task = ""       # the task whose zero-shot value is Φ (e.g. goal_center_top)
  c.host_eval_env = ""              # gymnasium id the greedy policies are run on after training
  c.host_eval_episodes = 0          # episodes per run on host_eval_env (0: none)
  return c


def validate_config(config) -> None:
  """Raises ValueError naming the key and what is allowed (shared control keys)."""
  require_positive_ints(config, ("num_envs", "num_steps", "total_timesteps"))
  if "action_repeat" in config:   # configs saved before it existed lack it (1)
    require_positive_ints(config, ("action_repeat",))
  if "gae_unroll" in config:      # likewise (0)
    require_int(config, "gae_unroll", 0)
  if "action_distribution" in config:   # likewise ("normal")
    check_choice("action_distribution", config.action_distribution, ACTION_DISTRIBUTIONS)
  if "kernel_init" in config:           # likewise ("orthogonal")
    check_choice("kernel_init", config.kernel_init, mlp.KERNEL_INITS)
  if "adam_eps" in config:              # likewise (1e-5)
    check_number(config, "adam_eps", 0.0, low_open=True)
  batch = config.num_envs * config.num_steps
  if config.total_timesteps < batch:
    raise ValueError(f"total_timesteps = {config.total_timesteps} is smaller than one "
                     f"update's batch num_envs * num_steps = {batch}.")
  check_choice("activation", config.activation, tuple(mlp.ACTIVATIONS))
  clip = config.get("obs_clip", 10.0)
  if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0:
    raise ValueError(f"config.obs_clip must be a number > 0 (inf: no clipping), got {clip!r}.")
  check_choice("env_name", config.env_name, tuple(envs.available()))
  envs.check_random_start(config.env_name, config.random_start, "config.random_start")
  check_number(config, "lr", 0.0, low_open=True)
  for name in ("gamma", "gae_lambda"):
    check_number(config, name, 0.0, 1.0)
  for name in ("ent_coef", "vf_coef"):
    check_number(config, name, 0.0)
  check_number(config, "max_grad_norm", 0.0, low_open=True)
  for name in ("scale", "reward_scale"):
    check_number(config.shaping, name, prefix="shaping.")
  check_number(config.shaping, "clip", 0.0, low_open=True, prefix="shaping.")
  for name in ("hidden_sizes", "critic_hidden_sizes"):
    if name == "critic_hidden_sizes" and config.get(name) is None:
      continue
    sizes = tuple(config[name])
    if not sizes or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0
                            for h in sizes):
      raise ValueError(f"config.{name} must be a non-empty tuple of positive integers, "
                       f"got {sizes!r}.")
  if config.host_eval_env:
    from rlcore.envs import host   # gymnasium
    host.check_env_id(config.host_eval_env, "config.host_eval_env")
  episodes = config.host_eval_episodes
  if isinstance(episodes, bool) or int(episodes) != episodes or episodes < 0:
    raise ValueError(f"config.host_eval_episodes must be a non-negative integer, got "
                     f"{episodes!r}.")
  shaping_hook.validate(config.shaping)


def batch_size(config) -> int:
  """The environment axis a runner may shard within one run."""
  return int(config.num_envs)


class ControlState(NamedTuple):
  """Everything a control run carries between updates (a pytree; checkpointed whole)."""
  params: Any               # network parameters
  opt_state: Any            # `optimizer`'s state over the flat parameter vector
  env_state: envs.EnvState  # batched [B] environment state
  shaping_state: Any        # state of the shaping chain
  key: jax.Array            # PRNG key
  update_step: jax.Array    # [] int32, updates done
  hparams: dict             # scalar float32 hyperparameters (the family's hparam_names)
  episode_stats: Any        # EpisodeTracker


class Rollout(NamedTuple):
  """A rollout of the batched env under the policy, time-major `[T, B, ...]`."""
  transition: rlcore.Transition  # raw observations (what potentials read), action, reward,
                                 # terminated, truncated, valid
  obs: jax.Array                 # [T, B, *obs] what the policy saw (normalised if the env is)
  next_obs: jax.Array            # [T, B, *obs] true next observations, normalised the same way
  value: jax.Array               # [T, B] V(obs)
  next_value: jax.Array          # [T, B] V(next_obs), 0 where terminated
  log_prob: jax.Array            # [T, B] log π(action | obs)
  episode_return: jax.Array      # [T, B] return of the episode that finished at t
  episode_length: jax.Array      # [T, B] float32, its length
  episode_done: jax.Array        # [T, B] bool, an episode finished at t


class EpisodeTracker(NamedTuple):
  """Running per-env shaped return and the last logged episode statistics.

  Metrics of an update are the means over the episodes that finished during its
  rollout; an update in which none finished repeats the previous values (so curves
  stay defined with long episodes), NaN before the first episode ends (null in
  metrics.jsonl), and `episodes` says how many finished.
  """
  shaped_running: jax.Array   # [B] float32, shaped return of each running episode
  last_return: jax.Array      # [] float32
  last_shaped_return: jax.Array
  last_length: jax.Array      # [] float32

  @staticmethod
  def init(num_envs: int) -> "EpisodeTracker":
    nan = jnp.full((), jnp.nan, jnp.float32)
    return EpisodeTracker(jnp.zeros((num_envs,), jnp.float32), nan, nan, nan)

  def update(self, rollout: Rollout, shaped: jax.Array):
    """Folds one rollout and its shaped rewards [T, B] in."""
    done = rollout.episode_done

    def step(acc, x):
      r, d, v = x
      acc = acc + jnp.where(v, r, 0.0)
      return jnp.where(d, 0.0, acc), jnp.where(d, acc, 0.0)

    running, finished_shaped = jax.lax.scan(step, self.shaped_running,
                                            (shaped, done, rollout.transition.valid))
    count = jnp.sum(done.astype(jnp.float32))
    denom = jnp.maximum(count, 1.0)
    mean = lambda x, last: jnp.where(count > 0, jnp.sum(jnp.where(done, x, 0.0)) / denom,
                                     last)
    ret = mean(rollout.episode_return, self.last_return)
    length = mean(rollout.episode_length, self.last_length)
    shaped_ret = jnp.where(count > 0, jnp.sum(finished_shaped) / denom,
                           self.last_shaped_return)
    new = EpisodeTracker(running, ret, shaped_ret, length)
    return new, dict(episode_return=ret, shaped_return=shaped_ret, episode_length=length,
                     episodes=count)


def make_env(config) -> envs.Environment:
  """The batched training environment of `config` (auto-reset, episode statistics)."""
  return envs.make_batched(config.env_name, config.num_envs,
                           normalize_obs=bool(config.normalize_obs),
                           obs_clip=float(config.get("obs_clip", 10.0)),
                           max_episode_steps=config.max_episode_steps,
                           backend=config.env_backend, random_start=config.random_start,
                           action_repeat=config.get("action_repeat", 1))


def make_network(env: envs.Environment, config):
  """(ActorCritic network, action distribution) for the env's action space."""
  spec = env.action_spec
  critic = config.get("critic_hidden_sizes")
  critic = None if critic is None else tuple(critic)
  kernel_init = config.get("kernel_init", "orthogonal")
  if spec.is_discrete:
    network = mlp.ActorCritic(spec.num_actions, True, tuple(config.hidden_sizes),
                              config.activation, critic, kernel_init=kernel_init)
    return network, mlp.categorical(spec.num_actions)
  size = int(np.prod(spec.shape))
  kind = config.get("action_distribution", "normal")   # checked by validate_config
  network = mlp.ActorCritic(size, False, tuple(config.hidden_sizes), config.activation,
                            critic, float(config.get("log_std_init", 0.0)),
                            state_dependent_scale=kind == "tanh_normal",
                            kernel_init=kernel_init)
  dist = ACTION_DISTRIBUTIONS[kind](size)
  if kind == "tanh_normal":
    low, high = (np.broadcast_to(np.asarray(np.inf if b is None else b, np.float32),
                                 spec.shape).reshape(-1) for b in (spec.low, spec.high))
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
      raise ValueError(f"config.action_distribution: 'tanh_normal' needs a bounded action "
                       f"box; {config.env_name!r} has low={spec.low}, high={spec.high}")
    # brax's tasks: tanh as it is. Elsewhere the affine map onto the box; log_prob and
    # entropy leave out its constant log-Jacobian Σ log half (no gradient; it cancels
    # in PPO's ratio).
    if not (np.all(low == -1) and np.all(high == 1)):
      mid, half = (high + low) / 2, (high - low) / 2
      at = lambda x, u: x.reshape((1,) * (u.ndim - 1) + x.shape)   # explicit broadcast
      dist = dist._replace(postprocess=lambda u: at(mid, u) + at(half, u) * jnp.tanh(u))
  return network, dist


def init_state(key, hparams, *, config, env, network, optimizer, constrain) -> ControlState:
  """A fresh `ControlState`: network parameters, optimiser, reset envs, shaping state."""
  key, net_key, env_key = jax.random.split(key, 3)
  params = network.init(net_key, jnp.zeros(env.observation_shape, jnp.float32))
  shaping = shaping_hook.make_shaping(config.shaping, hparams)
  return ControlState(params=params,
                      opt_state=optimizer.init(jax.flatten_util.ravel_pytree(params)[0]),
                      env_state=constrain(env.reset(env_key)), shaping_state=shaping.init(),
                      key=key, update_step=jnp.zeros((), jnp.int32), hparams=hparams,
                      episode_stats=EpisodeTracker.init(config.num_envs))


def make_rollout(env, network, dist, num_steps: int, constrain: Callable):
  """`rollout(params, env_state, key) -> (env_state, key, Rollout)`: `num_steps` steps
  of the batched env under the sampled policy.

  Only the actor runs inside the loop (to pick actions and their log-probs); the
  values come from one batched critic pass after it, and the action noise is drawn
  before it. On CPU every small kernel in the loop body costs a fixed dispatch, so
  the loop holds as few as possible (the actor-only loop made CartPole's rollout
  about 1.4x faster in a micro-benchmark): the per-step outputs are stacked into
  three arrays (floats, flags, observations) rather than one per field.

  The values of the true next observations (`Rollout.next_value`, what GAE bootstraps
  from) cost one critic evaluation per truncated step, not a second pass over the
  rollout: where an episode goes on, the next observation is the next step's
  observation, so its value is the next step's value (the critic's pass covers
  the T observations and the one after the last step); where it terminated, the
  value is 0; only truncated steps, whose next observation was replaced by a reset,
  need the critic on `next_obs` (`next_values_from_shifted`).
  """

  def step(env_state, noise):
    params, noise = noise
    obs = env_state.obs
    head, _ = network.apply(params, obs, critic=False)
    action = dist.sample_with_noise(head, noise)   # stored: what log_prob reads
    nxt = constrain(env.step(env_state, dist.postprocess(action)))
    ep = nxt.episode
    floats = jnp.stack([nxt.reward, ep.returned_return,
                        ep.returned_length.astype(jnp.float32),
                        dist.log_prob(head, action)], -1)
    flags = jnp.stack([nxt.terminated, nxt.truncated, nxt.valid, ep.done], -1)
    observations = [obs, nxt.next_obs]
    if nxt.obs_norm is not None:   # static: the env normalises observations
      observations += [env_state.obs_norm.raw_obs, nxt.obs_norm.raw_next_obs]
    return nxt, (floats, flags, jnp.stack(observations, -2), action)

  def rollout(params, env_state, key):
    key, noise_key = jax.random.split(key)
    batch = jnp.shape(env_state.reward)
    noise = dist.noise(noise_key, (num_steps,) + tuple(batch))
    env_state, (floats, flags, observations, action) = jax.lax.scan(
        lambda s, n: step(s, (params, n)), env_state, noise)
    obs, next_obs = observations[..., 0, :], observations[..., 1, :]
    raw = observations.shape[-2] == 4
    transition = rlcore.Transition(
        obs=observations[..., 2, :] if raw else obs, action=action, reward=floats[..., 0],
        next_obs=observations[..., 3, :] if raw else next_obs,
        terminated=flags[..., 0], truncated=flags[..., 1], valid=flags[..., 2])
    critic = lambda x: network.apply(params, x)[1]   # the actor's layers are dead code
    values = critic(jnp.concatenate([obs, env_state.obs[None]], 0))    # [T + 1, B]
    next_value = next_values_from_shifted(critic, values[1:], next_obs,
                                          transition.terminated, transition.truncated)
    return env_state, key, Rollout(
        transition=transition, obs=obs, next_obs=next_obs, value=values[:-1],
        next_value=next_value, log_prob=floats[..., 3], episode_return=floats[..., 1],
        episode_length=floats[..., 2], episode_done=flags[..., 3])

  return rollout


def next_values_from_shifted(critic: Callable, shifted: jax.Array, next_obs: jax.Array,
                             terminated: jax.Array, truncated: jax.Array) -> jax.Array:
  """V of each step's true next observation, from the values of the following steps.

      V'_t = 0                  terminated at t
           = critic(next_obs_t)  truncated at t
           = shifted_t           otherwise (the episode goes on: next_obs_t = obs_{t+1})

  The truncated steps are gathered in chunks of B (the batch width) and the critic
  runs on each chunk, in a `lax.while_loop` that stops when none is left: one chunk
  when no env truncates twice in a rollout, none when nothing truncated. On
  CartPole at 2048 envs x 128 steps this replaced a 64 ms second critic pass
  (2-core CPU; benchmarks/README.md).

  Args:
    critic: [N, *obs] -> [N] values.
    shifted: [T, B] values of obs_{t+1} (the step after t; after the last step, the
      env's current observation).
    next_obs: [T, B, *obs] true next observations.
    terminated: [T, B] bool.
    truncated: [T, B] bool.

  Returns:
    [T, B] float32 next values.
  """
  shape = shifted.shape
  n, width = int(np.prod(shape)), shape[-1]
  flat_obs = next_obs.reshape((n,) + next_obs.shape[len(shape):])
  pending = truncated.reshape(n) & ~terminated.reshape(n)
  flat = jnp.where(terminated, 0.0, shifted).reshape(n)

  def chunk(carry):
    flat, pending = carry
    idx = jnp.nonzero(pending, size=width, fill_value=n)[0]        # n: no more
    values = critic(flat_obs[jnp.minimum(idx, n - 1)])
    flat = flat.at[idx].set(values.astype(flat.dtype), mode="drop")
    return flat, pending.at[idx].set(False, mode="drop")

  flat, _ = jax.lax.while_loop(lambda c: jnp.any(c[1]), chunk, (flat, pending))
  return flat.reshape(shape)


def shaped_advantages(config, rollout: Rollout, shaping_state, hparams, gae_method):
  """Shapes the rollout's rewards with `config.shaping`, then GAE on the shaped rewards.

  GAE bootstraps from V of the true next observation (`rollout.next_value`), so
  truncated steps are handled exactly; terminated steps get next value 0. With
  `config.gae_unroll = k > 0` the λ-recursion is also cut after every k-th step of
  the rollout, which then bootstraps from the critic on its next observation, as
  brax's PPO computes GAE within unrolls of `unroll_length` steps.

  Returns:
    (shaped rewards [T, B], new shaping state, advantages [T, B]).
  """
  t = rollout.transition
  shaping = shaping_hook.make_shaping(config.shaping, hparams)
  shaped, shaping_state = shaping.apply(t.reward, shaping_state, t)
  cut = t.truncated
  unroll = int(config.get("gae_unroll", 0))
  if unroll:
    ends = jnp.arange(cut.shape[0]) % unroll == unroll - 1
    cut = cut | ends.reshape((-1,) + (1,) * (cut.ndim - 1))
  advantage = rlcore.gae(shaped, rollout.value, t.terminated, cut,
                         hparams["gamma"], hparams["gae_lambda"],
                         next_values=rollout.next_value,
                         method=gae_method)
  return shaped, shaping_state, advantage


def _clipped_adam(learning_rate, max_grad_norm, eps):
  return optax.chain(optax.clip_by_global_norm(max_grad_norm),
                     optax.adam(learning_rate, eps=eps))


def optimizer(hparams: dict, *, num_updates: int, steps_per_update: int,
              anneal: bool, eps: float = 1e-5) -> optax.GradientTransformation:
  """Adam (ε = `eps`) after global-norm clipping, with the run's traced lr and clip norm.

      lr_k = lr · (1 − ⌊k / steps_per_update⌋ / num_updates)   (anneal; else lr)

  for optimiser step k, i.e. PureJaxRL's linear annealing by update. Built with
  `optax.inject_hyperparams`, so the state records the lr in use and both
  coefficients may be traced (swept by vmap).

  The agents apply it to one flat vector of all network parameters
  (`jax.flatten_util.ravel_pytree`), not to the parameter pytree: clipping, Adam and
  the update are then a few fused elementwise passes instead of a few per parameter
  array. On CartPole (2-core CPU, jax 0.10.2) the pytree form ran at 0.947x and 0.989x
  the hand-written flat Adam it replaced at 1 and 8 seeds, the flat form at 1.006x and
  0.998x (medians of 9 and 5 interleaved whole runs; benchmarks/README.md).

  Args:
    hparams: the run's hyperparameters (reads "lr" and "max_grad_norm").
    num_updates: updates in the run.
    steps_per_update: optimiser steps per update (epochs x minibatches).
    anneal: anneal the learning rate linearly to 0.
    eps: Adam's ε (config.adam_eps; static).
  """
  lr = hparams["lr"]

  def schedule(count):
    update = (count // steps_per_update).astype(jnp.float32)
    return lr * (1.0 - update / num_updates)

  return optax.inject_hyperparams(_clipped_adam, static_args=("eps",))(
      learning_rate=schedule if anneal else lr, max_grad_norm=hparams["max_grad_norm"],
      eps=float(eps))


class ControlAgent(NamedTuple):
  """A control agent: the `rlcore.agents.Agent` protocol plus its parts."""
  init: Callable             # (key, hparams=None, *, seed=0) -> ControlState
  run_chunk: Callable        # (state, num_updates) -> (state, metrics [num_updates])
  update: Callable           # (state) -> (state, metrics of one update)
  num_updates: int
  steps_per_update: int
  default_hparams: Callable  # () -> dict of float32 scalars
  plot_metrics: tuple        # episode_return (and shaped_return with a shaping chain)
  finite_metrics: tuple      # the losses
  vectorized: bool
  evaluate: Optional[Callable]  # (state of one run) -> {"host_eval_return": ...}
  env: envs.Environment
  network: mlp.ActorCritic
  distribution: mlp.Distribution
  policy: Callable           # (params, obs, key or None) -> action (None: greedy)
  observe: Callable          # (state of one run, raw obs) -> the obs the policy expects


def assemble(config, *, env, network, dist, hparam_names, init, update, steps_per_update,
             finite_metrics) -> ControlAgent:
  """A `ControlAgent` from its `init` and `update` (one rollout and its learning step).

  `run_chunk` scans `update`; `evaluate` runs the greedy policy on the host
  gymnasium env `config.host_eval_env` (None when `host_eval_episodes` is 0).
  """
  num_updates = config.total_timesteps // (config.num_envs * config.num_steps)

  def policy(params, obs, key=None):
    head, _ = network.apply(params, obs)
    return dist.postprocess(dist.mode(head) if key is None else dist.sample(key, head))

  def observe(state, raw_obs):
    return env.observe(state.env_state, raw_obs)

  def run_chunk(state, n):
    return jax.lax.scan(lambda s, _: update(s), state, None, n)

  def default_hparams():
    hp = {k: float(config[k]) for k in hparam_names if "." not in k}
    hp.update(shaping_hook.default_hparams(config.shaping))
    return {k: jnp.asarray(hp[k], jnp.float32) for k in hparam_names}

  evaluate = None
  if config.host_eval_env and config.host_eval_episodes:
    greedy = jax.jit(lambda s, o: policy(s.params, observe(s, o)))

    def evaluate(state):
      from rlcore.envs import host   # gymnasium, only when evaluating
      returns = host.evaluate(lambda o: greedy(state, o), config.host_eval_env,
                              episodes=int(config.host_eval_episodes), seed=0)
      return {"host_eval_return": float(returns.mean())}

  shaped = bool(shaping_hook.parse_chain(config.shaping.chain))
  if "potential_based" in shaping_hook.parse_chain(config.shaping.chain):
    shaping_hook.potential_fn(config.shaping)   # a learned one loads now, not while tracing
  return ControlAgent(
      init=lambda key, hparams=None, *, seed=0: init(
          key, check_hparams(hparams, default_hparams())),
      run_chunk=run_chunk, update=update, num_updates=num_updates,
      steps_per_update=steps_per_update, default_hparams=default_hparams,
      plot_metrics=("episode_return", "shaped_return") if shaped else ("episode_return",),
      finite_metrics=tuple(finite_metrics), vectorized=True,
      evaluate=evaluate, env=env, network=network, distribution=dist, policy=policy,
      observe=observe)


def make_greedy_evaluator(agent: "ControlAgent", config, *, num_envs: int = 128,
                          episode_length: Optional[int] = None) -> Callable:
  """`evaluate(state, key) -> mean return` of the greedy policy on fresh copies of the
  training task, as brax's trainer evaluates (`deterministic_eval=True`).

      G = (1 / N) Σ_i Σ_{t < τ_i} r_{i,t},   τ_i = the end of env i's first episode,

  each of `num_envs` copies runs one episode of at most `episode_length` steps (the
  task's time limit by default) under `agent.policy(params, obs)` with no key, i.e. the
  distribution's mode, on observations normalised with the training run's statistics
  at the time (frozen during the evaluation). One `lax.scan` of `episode_length`
  steps: finished episodes keep stepping but add nothing.

  Args:
    agent: a control agent (`ppo.make_agent`, `reinforce.make_agent`).
    config: its config (env_name, env_backend, max_episode_steps, action_repeat,
      random_start).
    num_envs: N, episodes per evaluation.
    episode_length: the evaluation's time limit in env steps (brax's evaluator's
      episode_length); None: `config.max_episode_steps`, or the task's own (its
      TimeLimit or horizon) when that is None. Under `action_repeat` k the scan runs
      ceil(limit / k) agent steps.

  Returns:
    A jitted function of (one run's state, PRNG key) -> [] float32; vmap it over a
    batch of runs.
  """
  for name, value in (("num_envs", num_envs), ("episode_length", episode_length)):
    if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
      raise ValueError(f"make_greedy_evaluator: {name} must be a positive integer, got "
                       f"{value!r}.")
  limit = episode_length or config.max_episode_steps
  repeats = int(config.get("action_repeat", 1))
  env = envs.make_batched(config.env_name, num_envs, max_episode_steps=limit,
                          backend=config.env_backend, random_start=config.random_start,
                          action_repeat=repeats)
  limit = limit or getattr(env, "max_episode_steps", None) or getattr(env, "horizon", None)
  if not limit:
    raise ValueError(f"make_greedy_evaluator: {config.env_name!r} has no time limit to "
                     "read; pass episode_length.")
  limit = -(-int(limit) // repeats)   # agent steps (the limit counts env steps)

  @jax.jit
  def evaluate(state, key):
    env_state = env.reset(key)

    def step(carry, _):
      env_state, total, active = carry
      action = agent.policy(state.params, agent.observe(state, env_state.obs), None)
      env_state = env.step(env_state, action)
      total = total + jnp.where(active, env_state.reward, 0.0)
      active = active & ~(env_state.terminated | env_state.truncated)
      return (env_state, total, active), None

    zeros = jnp.zeros((num_envs,), jnp.float32)
    (_, total, _), _ = jax.lax.scan(step, (env_state, zeros, zeros == 0), None, int(limit))
    return jnp.mean(total)

  return evaluate


def make_train_fn(agent):
  """PureJaxRL's `train(key, hparams=None) -> (final state, metrics [num_updates])` for
  an agent of the protocol; `train.agent` is the agent."""

  def train(key, hparams=None):
    return agent.run_chunk(agent.init(key, hparams), agent.num_updates)

  train.agent = agent
  return train
