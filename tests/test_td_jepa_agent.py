"""rlcore.agents.td_jepa: zero-shot learning on a small budget (point mass, four rooms),
truncations are not terminations, and the trained value as a shaping potential for PPO."""

import json
import os
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore import experiment
from rlcore.agents import get_family, ppo, td_jepa
from rlcore.agents.protocol import check_agent
from rlcore.envs import offline
from tests.helpers import jit_quick_compile

TINY = dict(phi_dim=16, psi_dim=8, phi_hidden=(64,), psi_hidden=(64,), predictor_hidden=64,
            actor_hidden=64, batch_size=128)

POINTMASS_CONFIG = textwrap.dedent("""
    from rlcore import experiment
    from rlcore.agents import td_jepa

    def get_config(arg=None):
      c = experiment.with_runner_defaults(td_jepa.default_config())
      c.env = "pointmass"
      c.dataset.dir, c.dataset.num_episodes = {data_dir!r}, 200
      for k, v in {tiny!r}.items():
        c[k] = v
      c.lr_phi = c.lr_psi = c.lr_predictor = c.lr_actor = 1e-3
      c.num_updates, c.chunk_updates, c.num_seeds, c.plot = 400, 400, 1, False
      c.eval_tasks = "right,top,corner_top_right"
      c.eval_episodes, c.final_eval_episodes = 2, 4
      return c
""")


def _train(root):
  """A 400-update point-mass run through the runner (dataset generated on first use)."""
  path = root / "config.py"
  path.write_text(POINTMASS_CONFIG.format(data_dir=str(root / "data"), tiny=TINY))
  config = experiment.load_config(str(path))
  experiment.run(config, str(root / "run"), progress=False)
  return str(path), str(root / "run")


@pytest.mark.slow
def test_small_budget_run_beats_random_and_its_value_is_a_ppo_potential(tmp_path):
  """One trained run for two checks (as a module fixture, pytest-xdist would train it
  once per worker that runs a test using it)."""
  path, workdir = _train(tmp_path)
  _check_zero_shot_beats_random(workdir)
  _check_value_is_a_shaping_potential_for_ppo(path, workdir)


def test_family_is_registered_and_follows_the_protocol():
  family = get_family("td_jepa")
  assert family.hparam_names == td_jepa.HPARAMS
  c = td_jepa.default_config()
  c.eval_tasks = "nowhere"
  with pytest.raises(ValueError, match="eval_tasks"):
    td_jepa.validate_config(c)
  c = td_jepa.default_config()
  c.env = "cartpole"
  with pytest.raises(ValueError, match="config.env"):
    td_jepa.validate_config(c)


def _check_zero_shot_beats_random(workdir):
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  text = json.dumps(summary)
  assert "return/right" in text and "random_return/right" in text
  ev = _evaluation(summary)
  wins = [ev[f"return/{t}"] > ev[f"random_return/{t}"] + 5 for t in ("right", "top",
                                                                      "corner_top_right")]
  assert sum(wins) >= 2, ev
  # The metrics file has the chunk evaluations (NaN between them) and finite losses.
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  evals = [r["dense_return"] for r in rows if r.get("dense_return") is not None]
  assert len(evals) == 1 and all(np.isfinite(r["loss"]) for r in rows)


def _evaluation(summary) -> dict:
  """The evaluation dict of the single run, wherever the summary nests it."""
  stack = [summary]
  while stack:
    x = stack.pop()
    if isinstance(x, dict):
      if "return/right" in x and "random_return/right" in x:
        return {k: (v["mean"] if isinstance(v, dict) and "mean" in v else
                    v[0] if isinstance(v, list) else v) for k, v in x.items()}
      stack.extend(x.values())
    elif isinstance(x, list):
      stack.extend(x)
  raise AssertionError("no evaluation in summary.json")


def _learner(data, **kw):
  c = td_jepa.default_config()
  for k, v in dict(TINY, **kw).items():
    c[k] = v
  from rlcore.envs import pointmass
  return td_jepa.make_learner(c, (2,), pointmass.PointMassEnv.action_spec, data)


@pytest.mark.slow
def test_truncations_in_the_dataset_do_not_cut_the_bootstrap_and_terminations_do():
  data = offline.generate("pointmass", num_episodes=10, seed=0)
  flip = lambda d, **kw: dict(d, **kw)
  n = len(data["episode"])
  cases = {"data": data,
           "all_truncated": flip(data, truncated=np.ones(n, bool)),
           "all_terminated": flip(data, terminated=np.ones(n, bool),
                                  truncated=np.zeros(n, bool))}
  learner = _learner(data)
  run = jit_quick_compile(lambda k, d: jax.lax.scan(
      lambda x, _: learner.update(x, d), learner.init(k), None, 3))
  params = {}
  for name, d in cases.items():
    state, _ = run(jax.random.PRNGKey(0), td_jepa.as_dataset(d))
    params[name] = jax.tree.leaves(state.params["phi_predictor"])
  for a, b in zip(params["data"], params["all_truncated"]):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(params["data"], params["all_terminated"]))


@pytest.mark.slow
def test_gridworld_reward_tasks_zero_shot(tmp_path):
  """Discrete actions (greedy over the predicted Q): after 3000 updates on four-rooms
  data, the reward tasks' inferred latents beat a random policy (mean return 31 vs 4
  here) and one reaches 90% of its exact optimum (96, 95, 88, 92.35)."""
  c = td_jepa.default_config()
  c.env = "gridworld"
  for k, v in dict(TINY, phi_dim=32, psi_dim=16, phi_hidden=(128,), psi_hidden=(128,),
                   predictor_hidden=128, batch_size=64).items():
    c[k] = v
  c.dataset.dir, c.dataset.num_episodes = str(tmp_path), 200
  c.lr_phi = c.lr_psi = c.lr_predictor = 1e-3
  c.gamma, c.tau_encoder, c.tau_predictor = 0.98, 0.01, 0.01
  c.eval_tasks = "room_bottom_left,room_top_right,room_bottom_right,diagonal"
  c.final_eval_episodes = 1                   # deterministic policy and dynamics
  agent = check_agent(td_jepa.make_agent(c), "td_jepa")
  state = agent.init(jax.random.PRNGKey(1))
  assert agent.model.discrete and "actor" not in state.params
  # The updates alone (run_chunk would also compile the chunk-end evaluation).
  state, _ = jax.jit(lambda s: jax.lax.scan(lambda x, _: agent.update(x), s, None, 3000))(
      state)
  ev = agent.evaluate(state)
  tasks = c.eval_tasks.split(",")
  zero_shot = np.mean([ev[f"return/{t}"] for t in tasks])
  random = np.mean([ev[f"random_return/{t}"] for t in tasks])
  assert zero_shot > random + 20, ev
  from rlcore.envs import gridworld
  best = max(ev[f"return/{t}"] / gridworld.optimal_return(t) for t in tasks)
  assert best > 0.9, ev


def _check_value_is_a_shaping_potential_for_ppo(path, workdir):
  c = experiment.with_runner_defaults(ppo.default_config())
  c.env_name = "pointmass/sparse_goal_top_right"
  c.num_envs, c.num_steps, c.total_timesteps = 4, 100, 800
  c.hidden_sizes = (16,)
  c.shaping.chain = "potential_based"
  c.shaping.potential = "td_jepa"
  import ml_collections
  c.shaping.td_jepa = ml_collections.ConfigDict(dict(
      workdir=workdir, config=path, group="", run=0, task="goal_top_right"))
  phi = td_jepa.load_potential(c.shaping.td_jepa)
  data = offline.load(os.path.join(os.path.dirname(workdir), "data",
                                   "pointmass_sticky_200ep_seed0.npz"))
  v = np.asarray(phi(jnp.asarray(data["next_observation"][:10_000])))
  assert v.min() == pytest.approx(0.0, abs=1e-5) and v.max() == pytest.approx(1.0, abs=1e-5)
  agent = ppo.make_agent(c)
  _, m = jit_quick_compile(lambda k: agent.run_chunk(agent.init(k), 2))(jax.random.PRNGKey(0))
  assert np.all(np.isfinite(np.asarray(m["loss"])))
  bad = c.copy_and_resolve_references()
  bad.shaping.td_jepa.workdir = ""
  with pytest.raises(ValueError, match="shaping.td_jepa.workdir"):
    ppo.validate_config(bad)
