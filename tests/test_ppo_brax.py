"""configs/ppo_brax.py (brax's published PPO settings mapped onto this library's keys),
the greedy evaluator brax's comparison uses, and a small-budget learning check on
brax's inverted_pendulum."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore import envs, experiment
from rlcore.agents import control, ppo

CONFIG = "configs/ppo_brax.py"


def _config(arg):
  return experiment.load_config(CONFIG, arg)


@pytest.mark.parametrize("task", ["inverted_pendulum", "inverted_double_pendulum", "ant",
                                  "humanoid", "reacher", "halfcheetah", "pusher",
                                  "hopper"])
def test_each_update_is_one_brax_training_step(task):
  """Env steps, minibatch size and SGD steps per update equal brax's per training step
  (agent steps here; brax's env steps are action_repeat times as many)."""
  c = _config(f"env={task}")
  s = _settings()[task]
  per_update = c.num_envs * c.num_steps
  assert per_update == s["batch_size"] * s["num_minibatches"] * s["unroll_length"]
  assert c.action_repeat == s["action_repeat"]
  assert per_update // c.num_minibatches == s["batch_size"] * s["unroll_length"]
  assert c.update_epochs == s["num_updates_per_batch"]
  assert c.num_steps % s["unroll_length"] == 0
  assert (c.gamma, c.lr, c.ent_coef) == (s["discounting"], s["learning_rate"],
                                          s["entropy_cost"])
  assert c.shaping.reward_scale == s["reward_scaling"] and not c.clip_value
  # The backend on which brax's own trainer was seen to learn the task (results/brax.md).
  assert c.env_backend == ("positional" if task in ("ant", "hopper") else "generalized")
  assert c.max_episode_steps == s["episode_length"]
  # brax runs whole evaluation epochs: at least num_timesteps, less than one epoch more.
  epoch = c.chunk_updates * per_update
  assert c.total_timesteps % epoch == 0
  env_steps, repeat = c.total_timesteps * c.action_repeat, c.action_repeat
  assert s["num_timesteps"] <= env_steps < s["num_timesteps"] + (
      s["num_evals"] - 1) * per_update * repeat


def test_brax_policy_and_init_only_where_the_task_needs_them():
  """inverted_double_pendulum runs brax's tanh-squashed policy and lecun init (the
  Gaussian with orthogonal init fell after solving it, results/brax.md); the other
  tasks keep the library's defaults, and the task's agent builds with them."""
  idp = _config("inverted_double_pendulum")
  assert (idp.action_distribution, idp.kernel_init) == ("tanh_normal", "lecun_uniform")
  ip = _config("inverted_pendulum")
  assert (ip.action_distribution, ip.kernel_init) == ("normal", "orthogonal")
  agent = ppo.make_agent(idp)
  # The parameters' structure only (an eager init on a brax task took 14 s, 2-core CPU).
  params = jax.eval_shape(agent.init, jax.random.PRNGKey(0)).params["params"]
  assert "log_std" not in params   # the scale is a head output, as brax's


def test_backend_argument_replaces_the_task_default():
  assert _config("env=ant,backend=mjx").env_backend == "mjx"
  assert _config("env=inverted_pendulum,backend=positional").env_backend == "positional"


def test_inverted_pendulum_budget_is_what_brax_ran():
  """brax's trainer reported 3,112,960 env steps at the end of its published
  inverted_pendulum run (19 epochs of one 163,840-step training step; results/brax.md)."""
  c = _config("inverted_pendulum")
  assert c.total_timesteps == 3_112_960 and c.chunk_updates == 1
  c = _config("env=inverted_pendulum,num_timesteps=4e5,num_evals=3")
  assert (c.total_timesteps, c.chunk_updates) == (2 * 2 * 163_840, 2)


def test_unpublished_tasks_borrow_published_settings_but_the_budget():
  """A task brax publishes no PPO settings for (hopper) runs at a published task's,
  with a smaller budget of its own (configs/ppo_brax.py, UNPUBLISHED)."""
  module = _module()
  assert "hopper" in module.UNPUBLISHED
  budget = ("num_timesteps", "num_evals")
  for task, source in module.UNPUBLISHED.items():
    assert source not in module.UNPUBLISHED
    mine, theirs = module.BRAX_SETTINGS[task], module.BRAX_SETTINGS[source]
    assert {k: v for k, v in mine.items() if k not in budget} == {
        k: v for k, v in theirs.items() if k not in budget}
    assert mine["num_timesteps"] < theirs["num_timesteps"]
  # hopper's budget, as results/brax.md states it: 10 epochs of 12 updates of 163,840 steps.
  c = _config("env=hopper")
  assert (c.total_timesteps, c.chunk_updates) == (19_660_800, 12)


@pytest.mark.parametrize("arg,match", [
    ("env=walker2d", r"walker2d.*no PPO settings here \(brax publishes none for it\); "
                     r"allowed: inverted_pendulum.*hopper"),
    ("env=ant,speed=3", r"unknown argument 'speed'.*allowed: env, backend"),
    ("env=ant,num_evals=1", r"num_evals must be an integer of at least 2, got '1'"),
    ("env=ant,num_timesteps=lots", r"num_timesteps must be.*'lots'"),
])
def test_bad_arguments_name_the_argument(arg, match):
  with pytest.raises(ValueError, match=match):
    _config(arg)


def _module():
  from tests import helpers   # pylint: disable=import-outside-toplevel
  return helpers.load_script(CONFIG, "ppo_brax_settings")


def _settings():
  return _module().BRAX_SETTINGS


@pytest.mark.parametrize("repeat", [1, 3])
def test_greedy_evaluator_matches_a_python_loop(repeat):
  """Mean first-episode return of the greedy policy, against stepping single envs in
  Python with the same policy and reset keys (CartPole, a short time limit, with and
  without action repeat: the limit counts env steps)."""
  c = ppo.default_config()
  c.num_envs, c.num_steps, c.total_timesteps, c.max_episode_steps = 4, 8, 32, 25
  c.action_repeat = repeat
  agent = ppo.make_agent(c)
  state = agent.init(jax.random.PRNGKey(3))
  n = 3
  got = control.make_greedy_evaluator(agent, c, num_envs=n)(state, jax.random.PRNGKey(5))
  env = envs.make("CartPole-v1", max_episode_steps=25, action_repeat=repeat)
  step = jax.jit(lambda s: env.step(s, agent.policy(state.params, s.obs)))
  returns = []
  for key in jax.random.split(jax.random.PRNGKey(5), n):
    s, total = env.reset(key), 0.0
    while True:
      s = step(s)
      total += float(s.reward)
      if bool(s.terminated) or bool(s.truncated):
        break
    returns.append(total)
  assert float(got) == pytest.approx(np.mean(returns))
  assert 0 < float(got) <= 25


def test_evaluator_bad_sizes_name_the_argument():
  c = ppo.default_config()
  c.num_envs, c.num_steps, c.total_timesteps = 4, 8, 32
  agent = ppo.make_agent(c)
  with pytest.raises(ValueError, match=r"num_envs must be a positive integer, got 0"):
    control.make_greedy_evaluator(agent, c, num_envs=0)
  with pytest.raises(ValueError, match=r"episode_length must be a positive integer, got -3"):
    control.make_greedy_evaluator(agent, c, episode_length=-3)
  c.action_repeat = 0
  with pytest.raises(ValueError, match=r"config.action_repeat must be a positive integer, got 0"):
    ppo.make_agent(c)


@pytest.mark.slow
def test_ppo_learns_inverted_pendulum_at_a_small_budget():
  """brax's inverted_pendulum (generalized backend) at the config's settings scaled down
  to 64 envs x 20 steps (four of brax's 5-step unrolls), 4 minibatches, a (64, 64)
  critic and 30 updates (38,400 env steps): the training return of the last 5 updates
  is several times that of the first update, whose policy is the untrained one
  (measured on seeds 0 and 1: 5.8 and 6.1 at the first update, 75 and 99 over the last
  five; a uniformly random policy scores about 5)."""
  c = _config("inverted_pendulum")
  c.num_envs, c.num_steps, c.num_minibatches = 64, 20, 4
  c.critic_hidden_sizes = (64, 64)
  c.total_timesteps = 30 * c.num_envs * c.num_steps
  _, metrics = jax.jit(ppo.make_train(c))(jax.random.PRNGKey(0))   # one compile
  returns = np.asarray(metrics["episode_return"])
  assert np.all(np.isfinite(returns))
  first, last = returns[0], returns[-5:].mean()
  assert last > 4 * first and last > 25, returns


def _value_losses(clip_value):
  """(value_loss of one minibatch step at the initial parameters, V, targets, old V)."""
  c = ppo.default_config()
  c.env_name, c.num_envs, c.num_steps, c.total_timesteps = "Pendulum-v1", 4, 8, 32
  c.critic_hidden_sizes = (16,)
  agent = ppo.make_agent(c)
  state = agent.init(jax.random.PRNGKey(0))
  obs = jax.random.normal(jax.random.PRNGKey(1), (8, 4, 3))
  head, value = agent.network.apply(state.params, obs)
  rng = np.random.default_rng(0)
  old_value = value + jnp.asarray(rng.normal(0, 0.5, value.shape), jnp.float32)
  target = value + jnp.asarray(rng.normal(0, 3.0, value.shape), jnp.float32)
  data = dict(obs=obs, action=jnp.zeros((8, 4, 1)), log_prob=jnp.zeros((8, 4)),
              value=old_value, advantage=target - old_value, target=target)
  learn = ppo.make_learner(agent.network, agent.distribution, num_minibatches=1, epochs=1,
                           clip_value=clip_value)
  opt = control.optimizer(state.hparams, num_updates=1, steps_per_update=1, anneal=False)
  _, _, losses = learn(state.params, opt.init(jax.flatten_util.ravel_pytree(
      state.params)[0]), data, state.hparams, jax.random.PRNGKey(2), opt)
  return float(losses["value_loss"][0, 0]), value, target, old_value


@pytest.mark.slow
def test_value_loss_unclipped_and_clipped():
  """clip_value=False: ½ mean((V − R)²); True: ½ mean(max((V − R)², (V_old +
  clip(V − V_old, ±ε) − R)²)) (numpy, ε = 0.2); the two differ here."""
  got, v, r, v_old = _value_losses(False)
  v, r, v_old = (np.asarray(x, np.float64) for x in (v, r, v_old))
  assert got == pytest.approx(0.5 * np.mean((v - r) ** 2), rel=1e-5)
  clipped, *_ = _value_losses(True)
  v_c = v_old + np.clip(v - v_old, -0.2, 0.2)
  expected = 0.5 * np.mean(np.maximum((v - r) ** 2, (v_c - r) ** 2))
  assert clipped == pytest.approx(expected, rel=1e-5) and clipped > got * 1.01


def test_critic_widths_are_their_own():
  c = ppo.default_config()
  c.env_name, c.num_envs, c.num_steps, c.total_timesteps = "Pendulum-v1", 4, 8, 32
  c.hidden_sizes, c.critic_hidden_sizes, c.log_std_init = (8, 8, 8), (32, 16), -0.7
  agent = ppo.make_agent(c)
  state = agent.init(jax.random.PRNGKey(0))
  params = state.params["params"]
  # The policy's initial spread is log_std_init's, whatever the observation.
  np.testing.assert_allclose(np.asarray(params["log_std"]), [-0.7], rtol=1e-6)
  acts = jax.vmap(lambda k: agent.policy(state.params, jnp.zeros((3,)), k))(
      jax.random.split(jax.random.PRNGKey(1), 4000))
  assert float(jnp.std(acts)) == pytest.approx(np.exp(-0.7), rel=0.05)
  assert [params[f"actor_{i}"]["kernel"].shape for i in range(3)] == [(3, 8), (8, 8), (8, 8)]
  assert [params[f"critic_{i}"]["kernel"].shape for i in range(2)] == [(3, 32), (32, 16)]
  assert "critic_2" not in params and params["critic_head"]["kernel"].shape == (16, 1)
  c.critic_hidden_sizes = (32, 0)
  with pytest.raises(ValueError, match=r"config.critic_hidden_sizes must be a non-empty"):
    ppo.make_agent(c)


def test_adam_eps_is_the_config_s():
  """Adam's first step is lr · g / (|g| + ε) per coordinate (bias-corrected moments):
  for |g| = 1e-6 that is lr / 11 with ε = 1e-5 (the default) and lr / 1.01 with brax's
  1e-8 (config.adam_eps)."""
  hp = {"lr": jnp.float32(1e-3), "max_grad_norm": jnp.float32(1e9)}
  g = jnp.full((3,), 1e-6, jnp.float32)
  for eps, expected in ((1e-5, 1e-3 * 1e-6 / (1e-6 + 1e-5)), (1e-8, 1e-3 * 1e-6 / (1e-6 + 1e-8))):
    opt = control.optimizer(hp, num_updates=1, steps_per_update=1, anneal=False, eps=eps)
    updates, _ = jax.jit(opt.update)(g, opt.init(jnp.zeros(3)))
    np.testing.assert_allclose(-np.asarray(updates), expected, rtol=1e-4)
  c = ppo.default_config()
  assert c.adam_eps == 1e-5 and c.kernel_init == "orthogonal"
  for key, value, match in (("adam_eps", 0.0, "adam_eps"),
                            ("kernel_init", "xavier", "kernel_init")):
    bad = ppo.default_config()
    bad[key] = value
    with pytest.raises(ValueError, match=match):
      ppo.validate_config(bad)
