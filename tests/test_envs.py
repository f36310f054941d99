"""The functional env protocol, wrappers, gymnasium's JAX tasks and the host adapter."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore import envs
from rlcore.envs import classic, core, host, potentials


def _rollout(env, state, actions):
  def body(s, a):
    s = env.step(s, a)
    return s, s
  return jax.lax.scan(body, state, actions)


def test_cartpole_matches_gymnasium_cartpole_v1_dynamics():
  """Same state + same actions: the functional env follows CartPole-v1 exactly
  (this needs the polemass_length correction; gymnasium's default 0.6 diverges)."""
  ref = gym.make("CartPole-v1").unwrapped
  ref.reset(seed=0)
  env = classic.cartpole()
  s = env.reset(jax.random.key(0))
  ref.state = np.asarray(s.env_state, np.float64)
  step = jax.jit(env.step)
  rng = np.random.default_rng(0)
  for t in range(30):
    a = int(rng.integers(2))
    obs_ref, r_ref, term_ref, _, _ = ref.step(a)
    s = step(s, jnp.asarray(a))
    np.testing.assert_allclose(np.asarray(s.obs), obs_ref, rtol=1e-4, atol=1e-5)
    assert float(s.reward) == r_ref and bool(s.terminated) == term_ref
    if term_ref:
      break

  from gymnasium.envs.phys2d import cartpole as gc
  bad = core.FuncEnvAdapter(gc.CartPoleFunctional(), gc.CartPoleParams(), "bad")
  s0 = env.reset(jax.random.key(1))
  s_good = env.step(s0, jnp.asarray(1))
  s_bad = bad.step(s0.replace(info={}), jnp.asarray(1))
  assert not np.allclose(np.asarray(s_good.obs), np.asarray(s_bad.obs))


def test_time_limit_truncates_not_terminates():
  env = core.TimeLimit(classic.pendulum(max_episode_steps=1000), 7)
  s = env.reset(jax.random.key(0))
  _, traj = _rollout(env, s, jnp.zeros((9, 1)))
  trunc = np.asarray(traj.truncated)
  assert trunc[6] and not trunc[:6].any()
  assert not np.asarray(traj.terminated).any()


def test_time_limit_prefers_termination_on_the_same_step():
  env = core.TimeLimit(classic.cartpole(max_episode_steps=10_000), 1)
  s = env.reset(jax.random.key(0))
  s = s.replace(env_state=jnp.array([2.39, 5.0, 0.0, 0.0], jnp.float32))
  s = env.step(s, jnp.asarray(1))
  assert bool(s.terminated) and not bool(s.truncated)


def test_action_repeat_sums_rewards_and_the_time_limit_counts_env_steps():
  """Pendulum, limit 7 env steps, 3 repeats: agent steps cover env steps 1-3, 4-6 and 7
  (truncated there); each reward is the sum over its env steps, against stepping the
  unrepeated env in Python with each action held."""
  actions = np.array([[1.5], [-0.7], [2.0]], np.float32)
  plain = envs.make("Pendulum-v1", max_episode_steps=7)
  s, rewards, obs = plain.reset(jax.random.key(4)), [], []
  for a in np.repeat(actions, 3, axis=0)[:7]:
    s = plain.step(s, jnp.asarray(a))
    rewards.append(float(s.reward))
    obs.append(np.asarray(s.obs))
  env = envs.make("Pendulum-v1", max_episode_steps=7, action_repeat=3)
  _, traj = jax.jit(lambda s: _rollout(env, s, jnp.asarray(actions)))(
      env.reset(jax.random.key(4)))
  want = [sum(rewards[0:3]), sum(rewards[3:6]), rewards[6]]
  np.testing.assert_allclose(np.asarray(traj.reward), want, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(traj.obs), np.stack(obs)[[2, 5, 6]], rtol=1e-5)
  assert np.asarray(traj.truncated).tolist() == [False, False, True]
  assert int(traj.info["time_limit.steps"][-1]) == 7


def test_action_repeat_stops_at_a_termination_and_vmaps():
  """A CartPole that fails on its first env step gets reward 1, not 4, and keeps the
  terminal state; batched (vmap, auto-reset) copies agree with single ones."""
  env = envs.make("CartPole-v1", action_repeat=4)
  s = env.reset(jax.random.key(0))
  s = s.replace(env_state=jnp.array([2.39, 5.0, 0.0, 0.0], jnp.float32))
  s = jax.jit(env.step)(s, jnp.asarray(1))
  assert bool(s.terminated) and float(s.reward) == 1.0
  assert float(s.next_obs[0]) > 2.4 and int(s.info["time_limit.steps"]) == 1
  batched = envs.make_batched("CartPole-v1", 3, action_repeat=4)
  acts = jnp.ones((30, 3), jnp.int32)
  _, traj = jax.jit(lambda s: _rollout(batched, s, acts))(batched.reset(jax.random.key(2)))
  rewards = np.asarray(traj.reward)
  assert rewards.max() == 4.0 and set(np.unique(rewards)) <= {1.0, 2.0, 3.0, 4.0}
  # Every episode under a constant push ends, with its env steps in its return.
  done = np.asarray(traj.episode.done)
  assert done.any(axis=0).all()
  lengths = np.asarray(traj.episode.returned_return)[done]
  assert (lengths > np.asarray(traj.episode.returned_length)[done]).all()
  with pytest.raises(ValueError, match=r"action_repeat` must be a positive integer, got 0"):
    envs.make("CartPole-v1", action_repeat=0)


def test_auto_reset_keeps_true_next_observation_and_statistics():
  env = core.EpisodeStatistics(core.AutoReset(classic.cartpole()))
  s = env.reset(jax.random.key(0))
  _, traj = jax.jit(lambda s: _rollout(env, s, jnp.ones((60,), jnp.int32)))(s)
  term = np.asarray(traj.terminated)
  t = int(np.argmax(term))
  assert term.any()
  next_obs, obs = np.asarray(traj.next_obs[t]), np.asarray(traj.obs[t])
  # The true next observation is past the failure limit; obs is a fresh start.
  assert abs(next_obs[2]) > potentials.CARTPOLE_THETA_LIMIT or abs(next_obs[0]) > 2.4
  assert np.all(np.abs(obs) <= 0.05)
  assert float(traj.episode.returned_return[t]) == t + 1
  assert int(traj.episode.returned_length[t]) == t + 1
  assert bool(traj.episode.done[t]) and int(traj.info["time_limit.steps"][t]) == 0
  assert float(traj.episode.running_return[t]) == 0.0


def test_vmap_env_and_observation_normalisation():
  env = envs.make_batched("Pendulum-v1", 8, normalize_obs=True)
  s = jax.jit(env.reset)(jax.random.key(0))
  assert s.obs.shape == (8, 3) and s.reward.shape == (8,)
  step = jax.jit(env.step)
  raws = [np.asarray(s.obs_norm.raw_obs)]
  for _ in range(50):
    s = step(s, jnp.ones((8, 1)))
    raws.append(np.asarray(s.obs_norm.raw_obs))
  raws = np.concatenate(raws)
  np.testing.assert_allclose(np.asarray(s.obs_norm.mean), raws.mean(0), atol=1e-3)
  np.testing.assert_allclose(np.asarray(s.obs_norm.var), raws.var(0), rtol=1e-2, atol=1e-3)
  expected = (np.asarray(s.obs_norm.raw_obs) - raws.mean(0)) / np.sqrt(raws.var(0) + 1e-8)
  np.testing.assert_allclose(np.asarray(s.obs), expected, rtol=2e-2, atol=2e-2)
  # `observe` applies the state's statistics to any raw observation, as `obs` has them.
  np.testing.assert_allclose(np.asarray(env.observe(s, s.obs_norm.raw_obs)),
                             np.asarray(s.obs), rtol=1e-6, atol=1e-6)
  raw = raws[:2]
  assert envs.make_batched("Pendulum-v1", 2).observe(s, raw) is raw   # no normaliser


def test_observation_normalisation_clips_at_its_bound_and_not_at_inf():
  """Normalised observations are clipped to ±clip; clip=inf leaves them as they are."""
  def normalised(clip):
    env = envs.make_batched("Pendulum-v1", 4, normalize_obs=True, obs_clip=clip)
    s = env.reset(jax.random.key(0))
    far = np.asarray(s.obs_norm.raw_obs) + 1e3          # far outside the statistics
    return np.asarray(env.observe(s, far)), far, s
  clipped, _, _ = normalised(10.0)
  free, far, s = normalised(float("inf"))
  expected = (far - np.asarray(s.obs_norm.mean)) / np.sqrt(np.asarray(s.obs_norm.var) + 1e-8)
  assert np.all(np.abs(expected) > 10)
  np.testing.assert_allclose(clipped, np.clip(expected, -10, 10), rtol=1e-5)
  np.testing.assert_allclose(free, expected, rtol=1e-5)
  with pytest.raises(ValueError, match="clip must be > 0"):
    envs.make_batched("Pendulum-v1", 4, normalize_obs=True, obs_clip=0.0)


def test_pendulum_clips_actions_and_rewards_like_gymnasium():
  env = classic.pendulum()
  s = env.reset(jax.random.key(0))
  th, thdot = np.asarray(s.env_state)
  s1 = env.step(s, jnp.array([50.0]))
  s2 = env.step(s, jnp.array([2.0]))
  np.testing.assert_allclose(np.asarray(s1.obs), np.asarray(s2.obs))
  th_n = ((th + np.pi) % (2 * np.pi)) - np.pi
  np.testing.assert_allclose(float(s2.reward), -(th_n ** 2 + 0.1 * thdot ** 2 + 0.001 * 4),
                             rtol=1e-5)


def test_make_rejects_unknown_names_and_options():
  with pytest.raises(ValueError, match="'CartPol-v1'.*allowed: CartPole-v1"):
    envs.make("CartPol-v1")
  with pytest.raises(ValueError, match="backend"):
    envs.make("CartPole-v1", backend="mjx")
  with pytest.raises(ValueError, match="max_episode_steps"):
    core.TimeLimit(classic.cartpole(), 0)


def test_potentials():
  obs = jnp.array([[0.0, 0.0, 0.0, 0.0], [2.4, 0.0, potentials.CARTPOLE_THETA_LIMIT, 0.0]])
  np.testing.assert_allclose(np.asarray(potentials.cartpole_upright(obs)), [1.0, 0.0],
                             atol=1e-6)
  with pytest.raises(ValueError, match="unknown potential 'up'.*cartpole_upright"):
    potentials.get("up")



def test_registered_potentials_are_found_by_name():
  fn = lambda obs: obs[..., 0] * 2.0
  potentials.register("test_double_x", fn)
  try:
    assert potentials.get("test_double_x") is fn
    with pytest.raises(ValueError, match="exists"):
      potentials.register("test_double_x", lambda obs: obs[..., 0])
    potentials.register("test_double_x", fn)        # the same function again: fine
  finally:
    potentials.POTENTIALS.pop("test_double_x")
  with pytest.raises(ValueError, match="unknown potential"):
    potentials.get("test_double_x")

def test_host_adapter_on_gymnasium_cartpole():
  # A hand-written controller (push toward the pole's lean) balances CartPole-v1.
  def policy(obs):
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)
  returns = host.evaluate(policy, "CartPole-v1", episodes=3, seed=0)
  assert returns.shape == (3,) and np.all(returns >= 200)
  always_left = host.evaluate(lambda o: np.zeros(1, np.int64), "CartPole-v1", episodes=3)
  assert np.all(always_left < 20)
  with pytest.raises(ValueError, match="episodes"):
    host.evaluate(policy, "CartPole-v1", episodes=0)


def test_batched_auto_reset_matches_per_env_semantics():
  env = envs.make_batched("CartPole-v1", 3)
  s = env.reset(jax.random.key(0))
  assert s.episode.running_return.shape == (3,)
  step = jax.jit(env.step)
  seen_done = 0
  for t in range(80):
    prev = s
    s = step(s, jnp.full((3,), t % 2, jnp.int32))
    done = np.asarray(s.terminated | s.truncated)
    for b in np.flatnonzero(done):
      seen_done += 1
      assert np.all(np.abs(np.asarray(s.obs[b])) <= 0.05)           # fresh episode
      assert not np.allclose(np.asarray(s.next_obs[b]), np.asarray(s.obs[b]))
      assert int(s.info["time_limit.steps"][b]) == 0
      assert float(s.episode.returned_return[b]) == float(
          prev.episode.running_return[b]) + 1.0
    for b in np.flatnonzero(~done):
      np.testing.assert_array_equal(np.asarray(s.obs[b]), np.asarray(s.next_obs[b]))
  assert seen_done > 3
  with pytest.raises(TypeError, match="VmapEnv"):
    core.BatchedAutoReset(classic.cartpole())
