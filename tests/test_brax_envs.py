"""brax tasks under the protocol: shapes and dtypes, jit and VmapEnv, time-limit
truncation vs brax's termination, auto-reset keeping the true next observation,
argument checks, and the default backend."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore import envs
from rlcore.envs import brax_envs
from tests import helpers

NAME = "inverted_pendulum"   # cheapest brax task: obs [4] = (x, angle, x', angle')
BACKEND = "spring"           # the fastest on CPU (see envs.brax_envs)
RESET_NOISE = 0.01           # brax's inverted_pendulum draws q, qd ~ U(-0.01, 0.01)
LIMIT = 10                   # time limit of the `episodes` fixture
PUSH_STEPS = 30              # full-push steps after its first (truncated) episode


def _jit_reset_step(env):
  """jit of (key, action) -> (reset(key), step(reset(key), action)): one compile.

  The brax programs here run a few steps: compiling is their time (XLA level 0).
  """
  @helpers.jit_quick_compile
  def fn(key, action):
    s0 = env.reset(key)
    return s0, env.step(s0, action)
  return fn


@pytest.fixture(scope="module")
def pendulum():
  return envs.make(NAME, backend=BACKEND)


@pytest.fixture(scope="module")
def reset_step(pendulum):
  return _jit_reset_step(pendulum)


@pytest.fixture(scope="module")
def episodes(pendulum):
  """One jitted rollout of AutoReset(TimeLimit(ClipAction(BraxAdapter), LIMIT)).

  Actions: 0 for LIMIT steps (the pole stays up, so the episode is truncated),
  then 10 (clipped to 1, a full push: the pole falls and the episode terminates).
  Returns the first EnvState and the stacked EnvStates after each step.
  """
  env = envs.AutoReset(envs.TimeLimit(pendulum.env, LIMIT))
  actions = jnp.concatenate([jnp.zeros((LIMIT, 1), jnp.float32),
                             jnp.full((PUSH_STEPS, 1), 10.0, jnp.float32)])

  @helpers.jit_quick_compile
  def run(key):
    s0 = env.reset(key)
    def body(s, a):
      s = env.step(s, a)
      return s, s
    return s0, jax.lax.scan(body, s0, actions)[1]
  return jax.tree.map(np.asarray, run(jax.random.PRNGKey(0)))


def _first_termination(traj):
  terminated = traj.terminated[LIMIT:]
  assert terminated.any(), "a full push should tip the pole over"
  return LIMIT + int(np.argmax(terminated))


def test_reset_and_step_shapes_dtypes_under_jit(pendulum, reset_step):
  assert pendulum.name == NAME
  assert pendulum.observation_shape == (4,)
  spec = pendulum.action_spec
  assert spec.kind == "continuous" and spec.shape == (1,)
  assert spec.low.dtype == np.float32 and spec.high.dtype == np.float32
  np.testing.assert_array_equal(spec.low, [-1.0])
  np.testing.assert_array_equal(spec.high, [1.0])
  assert isinstance(pendulum.unwrapped, brax_envs.BraxAdapter)
  assert pendulum.unwrapped.backend == BACKEND

  s0, s1 = reset_step(jax.random.PRNGKey(0), jnp.zeros((1,), jnp.float32))
  for s in (s0, s1):
    assert s.obs.shape == (4,) and s.obs.dtype == jnp.float32
    assert s.next_obs.shape == (4,) and s.next_obs.dtype == jnp.float32
    assert s.reward.shape == () and s.reward.dtype == jnp.float32
    for flag in (s.terminated, s.truncated, s.valid):
      assert flag.shape == () and flag.dtype == jnp.bool_
    assert bool(s.valid)
    helpers.assert_close(s.next_obs, s.obs)
    helpers.assert_close(s.env_state.obs, s.obs)   # the brax State rides along
  assert float(s0.reward) == 0.0 and not bool(s0.terminated | s0.truncated)
  assert np.all(np.abs(np.asarray(s0.obs)) <= RESET_NOISE + 1e-6)
  assert float(s1.reward) == 1.0                  # inverted_pendulum: +1 per step
  assert not bool(s1.terminated) and not bool(s1.truncated)
  assert int(s1.info["time_limit.steps"]) == 1
  assert not np.allclose(s1.obs, s0.obs)          # the physics moved
  np.testing.assert_array_equal(s1.key, s0.key)   # step is deterministic


def test_vmap_env(pendulum, reset_step):
  batched = envs.VmapEnv(pendulum, 3)
  actions = jnp.asarray([[-1.0], [0.0], [1.0]], jnp.float32)
  s0, s1 = _jit_reset_step(batched)(jax.random.PRNGKey(1), actions)
  assert s0.obs.shape == (3, 4) and s0.reward.shape == (3,)
  assert len({tuple(np.asarray(o)) for o in s0.obs}) == 3   # independent resets
  assert s1.obs.shape == (3, 4) and s1.obs.dtype == jnp.float32
  assert s1.terminated.shape == (3,) and s1.terminated.dtype == jnp.bool_
  helpers.assert_close(s1.reward, np.ones(3))
  # The cart velocity (obs[2]) follows the sign of the push.
  assert s1.obs[0, 2] < s1.obs[1, 2] < s1.obs[2, 2]
  # Copy i is the single env reset with the i-th split of the key.
  key = jax.random.split(jax.random.PRNGKey(1), 3)[2]
  single0, single1 = reset_step(key, actions[2])
  helpers.assert_close(single0.obs, s0.obs[2])
  helpers.assert_close(single1.obs, s1.obs[2])


def test_time_limit_truncates_not_terminates(episodes):
  _, traj = episodes
  np.testing.assert_array_equal(traj.truncated[:LIMIT], [False] * (LIMIT - 1) + [True])
  np.testing.assert_array_equal(traj.terminated[:LIMIT], [False] * LIMIT)
  np.testing.assert_array_equal(traj.info["time_limit.steps"][:LIMIT - 1],
                                np.arange(1, LIMIT))
  assert traj.info["time_limit.steps"][LIMIT - 1] == 0   # auto-reset


def test_brax_done_is_termination(episodes, reset_step):
  _, traj = episodes
  t = _first_termination(traj)
  assert t - LIMIT < LIMIT - 1            # before the time limit of that episode
  assert traj.terminated[t] and not traj.truncated[t]
  assert not traj.truncated[LIMIT:t + 1].any()
  assert abs(traj.next_obs[t, 1]) > 0.2   # brax's criterion: |angle| > 0.2 rad
  assert np.all(np.abs(traj.next_obs[LIMIT:t, 1]) <= 0.2)
  # 10 acts as exactly 1 (ClipAction).
  key = jax.random.PRNGKey(0)
  helpers.assert_close(reset_step(key, jnp.full((1,), 10.0, jnp.float32))[1].obs,
                       reset_step(key, jnp.ones((1,), jnp.float32))[1].obs)


@pytest.mark.parametrize("end", ["truncated", "terminated"])
def test_autoreset_keeps_true_next_obs(episodes, end):
  s0, traj = episodes
  t = LIMIT - 1 if end == "truncated" else _first_termination(traj)
  # The last step keeps the old episode's last observation in next_obs ...
  if end == "terminated":
    assert abs(traj.next_obs[t, 1]) > 0.2
  assert not np.allclose(traj.next_obs[t], traj.obs[t])
  # ... while obs, the brax state and the step counter belong to a fresh episode,
  # drawn like a reset's (near upright, at rest) with a new key.
  assert np.all(np.abs(traj.obs[t]) <= RESET_NOISE + 1e-6)
  helpers.assert_close(traj.env_state.obs[t], traj.obs[t])
  assert traj.info["time_limit.steps"][t] == 0
  assert not np.allclose(traj.obs[t], s0.obs)
  # The new episode runs on from there.
  assert not traj.terminated[t + 1] and not traj.truncated[t + 1]
  assert traj.info["time_limit.steps"][t + 1] == 1
  # Within an episode obs and next_obs agree.
  helpers.assert_close(traj.next_obs[:LIMIT - 1], traj.obs[:LIMIT - 1])


def test_make_rejects_unknown_backend():
  with pytest.raises(ValueError) as err:
    envs.make("ant", backend="bogus")
  msg = str(err.value)
  assert "'bogus'" in msg
  for backend in ("mjx", "spring", "positional", "generalized"):
    assert backend in msg


def test_make_rejects_unknown_name():
  with pytest.raises(ValueError) as err:
    envs.make("bogus")
  msg = str(err.value)
  assert "'bogus'" in msg
  for name in envs.registry.BRAX_ENVS:
    assert name in msg
  # make_brax checks its own names too (swimmer is a brax task we do not list).
  with pytest.raises(ValueError, match=r"'swimmer'.*inverted_pendulum"):
    brax_envs.make_brax("swimmer")


def test_reacher_default_backend():
  """The default backend is the one built; the step runs on spring, the backend of this
  file's other tests."""
  assert envs.make("reacher").unwrapped.backend == brax_envs.DEFAULT_BACKEND == "generalized"
  env = envs.make("reacher", backend=BACKEND)
  assert env.observation_shape == (11,)
  assert env.action_spec.shape == (2,)
  assert env.max_episode_steps == 1000   # TimeLimit's default for brax tasks
  s0, s1 = _jit_reset_step(env)(jax.random.PRNGKey(0),
                                jnp.asarray([0.5, -0.5], jnp.float32))
  assert s1.obs.shape == (11,) and s1.obs.dtype == jnp.float32
  assert s1.reward.dtype == jnp.float32 and np.isfinite(float(s1.reward))
  assert not bool(s1.terminated) and not bool(s1.truncated)
  assert not np.allclose(s1.obs, s0.obs)
