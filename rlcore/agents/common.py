"""Pieces the control agents share: episode bookkeeping and config validation."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

import rlcore
from rlcore.agents import shaping_hook


class EpisodeTracker(NamedTuple):
  """Running per-env shaped return and the last logged episode statistics.

  Metrics of an update are the means over the episodes that finished during its
  rollout; an update in which none finished repeats the previous values (so curves
  stay defined with long episodes), NaN before the first episode ends (left out of
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

  def update(self, traj: dict, shaped: jax.Array):
    """Folds one rollout in. `traj` holds [T, B] episode_done/return/length, valid."""
    done = traj["episode_done"]

    def step(acc, x):
      r, d, v = x
      acc = acc + jnp.where(v, r, 0.0)
      return jnp.where(d, 0.0, acc), jnp.where(d, acc, 0.0)

    running, finished_shaped = jax.lax.scan(step, self.shaped_running,
                                            (shaped, done, traj["valid"]))
    count = jnp.sum(done.astype(jnp.float32))
    denom = jnp.maximum(count, 1.0)
    mean = lambda x, last: jnp.where(count > 0, jnp.sum(jnp.where(done, x, 0.0)) / denom,
                                     last)
    ret = mean(traj["episode_return"], self.last_return)
    length = mean(traj["episode_length"].astype(jnp.float32), self.last_length)
    shaped_ret = jnp.where(count > 0, jnp.sum(finished_shaped) / denom,
                           self.last_shaped_return)
    new = EpisodeTracker(running, ret, shaped_ret, length)
    return new, dict(episode_return=ret, shaped_return=shaped_ret, episode_length=length,
                     episodes=count)


def require_positive_ints(config, names) -> None:
  """ValueError naming the key if config[name] is not a positive integer."""
  for name in names:
    value = config[name]
    if isinstance(value, bool) or int(value) != value or value < 1:
      raise ValueError(f"config.{name} must be a positive integer, got {value!r}.")


def check_choice(name: str, value, allowed) -> None:
  """ValueError naming the key and the allowed values."""
  if value not in allowed:
    raise ValueError(f"config.{name}: {value!r} is not allowed; choose one of "
                     f"{', '.join(map(str, allowed))}.")


def check_hparams(hparams: dict, defaults: dict) -> dict:
  """Checks hparams keys, fills missing ones from `defaults`, casts to float32.

  A partial dict is enough, so `jax.vmap(train)(keys, {"lr": lrs})` sweeps one
  hyperparameter (the defaults enter as unbatched constants).
  """
  unknown = sorted(set(hparams) - set(defaults))
  if unknown:
    raise ValueError(f"hparams: unknown keys {unknown}; allowed: {', '.join(defaults)}.")
  return {k: jnp.asarray(hparams.get(k, v), jnp.float32) for k, v in defaults.items()}


def observe(state, raw_obs):
  """Normalises raw observations [..., obs] as the run's env did (no-op without
  `normalize_obs`); `state` is one run's agent state."""
  info = state.env_state.info
  if "obs_norm.mean" not in info:
    return raw_obs
  mean, var = info["obs_norm.mean"], info["obs_norm.var"]
  scale = jnp.sqrt(var + 1e-8)
  return jnp.clip((raw_obs - jnp.broadcast_to(mean, raw_obs.shape))
                  / jnp.broadcast_to(scale, raw_obs.shape), -10.0, 10.0)


def make_rollout(env, network, dist, num_steps: int, constrain):
  """`rollout(params, env_state, key) -> (env_state, key, traj)`: `num_steps` steps of
  the batched env under the sampled policy; `traj` is a dict of [T, B, ...] arrays.

  Only the actor runs inside the loop (to pick actions); values and log-probs of the
  whole rollout come from one batched forward pass after it, and the action noise is
  drawn before it. On CPU every small kernel in the loop body costs a fixed dispatch,
  so the loop holds as few as possible (the actor-only loop made CartPole's rollout
  about 1.4x faster in a micro-benchmark).
  """

  def step(env_state, inputs):
    params, noise = inputs
    obs = env_state.obs
    head, _ = network.apply(params, obs, critic=False)
    action = dist.sample_with_noise(head, noise)
    nxt = constrain(env.step(env_state, action))
    info = nxt.info
    floats = jnp.stack([nxt.reward, info["episode.returned_return"],
                        info["episode.returned_length"].astype(jnp.float32)], -1)
    flags = jnp.stack([nxt.terminated, nxt.truncated, nxt.valid, info["episode.done"]], -1)
    observations = [obs, nxt.next_obs]
    if "raw_obs" in info:
      observations += [env_state.info["raw_obs"], info["raw_next_obs"]]
    return nxt, (floats, flags, jnp.stack(observations, -2), action)

  def rollout(params, env_state, key):
    key, noise_key = jax.random.split(key)
    batch = jnp.shape(env_state.reward)
    noise = dist.noise(noise_key, (num_steps,) + tuple(batch))
    env_state, (floats, flags, observations, action) = jax.lax.scan(
        lambda s, n: step(s, (params, n)), env_state, noise)
    traj = dict(reward=floats[..., 0], episode_return=floats[..., 1],
                episode_length=floats[..., 2],
                terminated=flags[..., 0], truncated=flags[..., 1], valid=flags[..., 2],
                episode_done=flags[..., 3], action=action,
                obs=observations[..., 0, :], next_obs=observations[..., 1, :])
    raw = observations.shape[-2] == 4
    traj["raw_obs"] = observations[..., 2, :] if raw else traj["obs"]
    traj["raw_next_obs"] = observations[..., 3, :] if raw else traj["next_obs"]
    head, value = network.apply(params, traj["obs"])
    traj["value"] = value
    traj["log_prob"] = dist.log_prob(head, action)
    return env_state, key, traj

  return rollout


def shaped_advantages(config, network, params, traj, shaping_state, hparams, gae_method):
  """Shapes the rollout's rewards with `config.shaping`, then GAE on the shaped rewards.

  GAE bootstraps from V of the true next observation (`traj["next_obs"]`), so
  truncated steps are handled exactly; terminated steps get next value 0.

  Returns:
    (shaped rewards [T, B], new shaping state, advantages [T, B]).
  """
  transition = rlcore.Transition(
      obs=traj["raw_obs"], action=traj["action"], reward=traj["reward"],
      next_obs=traj["raw_next_obs"], terminated=traj["terminated"],
      truncated=traj["truncated"], valid=traj["valid"])
  shaping = shaping_hook.make_shaping(config.shaping, hparams)
  shaped, shaping_state = shaping.apply(traj["reward"], shaping_state, transition)
  _, next_value = network.apply(params, traj["next_obs"])
  advantage = rlcore.gae(shaped, traj["value"], traj["terminated"], traj["truncated"],
                         hparams["gamma"], hparams["gae_lambda"], next_values=next_value,
                         method=gae_method)
  return shaped, shaping_state, advantage


def make_train_fn(agent):
  """PureJaxRL's `train(key, hparams=None) -> (final state, metrics [num_updates])` for
  an agent with `init` and `update`; `train.agent` is the agent."""

  def train(key, hparams=None):
    state = agent.init(key, hparams)
    return jax.lax.scan(lambda s, _: agent.update(s), state, None, agent.num_updates)

  train.agent = agent
  return train
