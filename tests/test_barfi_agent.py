"""rlcore.agents.barfi: the schedule, vmapping, and learning on a small budget."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore.agents import barfi, get_family
from rlcore.agents.protocol import check_agent
from tests.helpers import jit_quick_compile


def _config(**kw):
  c = barfi.default_config()
  c.task, c.aux, c.actor_lr, c.reward_lr, c.gamma_lr = "gridworld", "bad", 5e-3, 5e-3, 5e-3
  for k, v in kw.items():
    c[k] = v
  return c


def _run(config, seeds=1, hparams=None):
  agent = barfi.make_agent(config)
  keys = jax.random.split(jax.random.PRNGKey(0), seeds)
  hp = hparams or {}
  state = jax.jit(jax.vmap(agent.init))(keys, hp)
  return jit_quick_compile(jax.vmap(lambda s: agent.run_chunk(s, agent.num_updates)))(state)


def test_schedule_follows_the_official_counts():
  # delta 3, inner_mul 2, first_mul 6: warm-up while episodes <= 8 (one naive step per
  # update); the update at 9 episodes adds 3*2 + 6 inner steps; later updates make one
  # outer step and 3*2 inner steps.
  config = _config(episodes=18, inner_mul=2, first_mul=6, hess_mul=2, buffer_size=12)
  agent = check_agent(get_family("barfi").make_agent(config), "barfi")
  state = agent.init(jax.random.PRNGKey(0))
  counts, outer, gammas, growth = [], [], [], []
  update = jit_quick_compile(agent.update)
  for _ in range(agent.num_updates):
    state, m = update(state)
    counts.append(int(state.actor_opt.count))
    outer.append(int(state.reward_opt.count))
    gammas.append(float(m["gamma"]))
    growth.append(float(m["neumann_growth"]))
  assert counts == [1, 2, 15, 21, 27, 33]
  assert outer == [0, 0, 0, 1, 2, 3]
  assert np.isnan(growth[:3]).all() and np.isfinite(growth[3:]).all()
  assert gammas[0] == gammas[2] != gammas[3]
  assert int(state.buffer.size) == 12 and int(state.buffer.pos) == 6


@pytest.mark.slow
def test_vmapped_runs_equal_single_runs():
  config = _config(episodes=12, inner_mul=1, first_mul=0, hess_mul=2, buffer_size=12)
  agent = barfi.make_agent(config)
  keys = jax.random.split(jax.random.PRNGKey(3), 2)
  lrs = jnp.asarray([5e-3, 1e-2])
  run = lambda k, lr: agent.run_chunk(agent.init(k, {"actor_lr": lr}), agent.num_updates)
  _, batched = jit_quick_compile(jax.vmap(run))(keys, lrs)
  single = jit_quick_compile(run)
  for i in range(2):
    _, one = single(keys[i], lrs[i])
    np.testing.assert_array_equal(one["primary_weight"], 1.0)   # fixed unless learned
    for name in ("episode_return", "gamma", "aux_weight", "policy_objective"):
      np.testing.assert_allclose(batched[name][i], one[name], rtol=2e-4, atol=1e-5,
                                 err_msg=name)


def test_baselines_on_the_distractor_gridworld():
  """Primary-only REINFORCE learns to reach the goal; naive r_p + r_aux loiters."""
  final = {}
  for reward in ("primary", "naive"):
    _, m = _run(_config(outer="none", reward=reward, episodes=450), seeds=3)
    first, last = (np.asarray(m["episode_return"])[:, s].mean() for s in
                   (slice(0, 15), slice(-15, None)))
    final[reward] = (first, last, np.asarray(m["goal_rate"])[:, -15:].mean(),
                     np.asarray(m["aux_return"])[:, -15:].mean())
  first, last, goal, _ = final["primary"]
  assert last > first + 30 and last > 80 and goal > 0.9, final
  _, last_naive, goal_naive, aux_naive = final["naive"]
  assert goal_naive < 0.3 and last_naive < 30 and aux_naive > 1000, final


@pytest.mark.slow
def test_outer_steps_move_reward_and_discount():
  # With the official CartPole code's learned weight on r_p, which moves too.
  _, m = _run(_config(episodes=240, first_mul=30, primary_weight="learned"), seeds=2)
  gamma = np.asarray(m["gamma"])
  weight = np.asarray(m["aux_weight"])
  primary = np.asarray(m["primary_weight"])
  assert np.all(np.abs(gamma[:, -1] - gamma[:, 0]) > 1e-4)
  assert np.all(np.isfinite(np.asarray(m["hypergrad_norm"])[:, -10:]))
  assert np.all(np.abs(weight[:, -1] - weight[:, 0]) > 1e-3)
  # v_φ(s) starts at PyTorch's initialisation of the reward layer and is learned.
  assert np.all(np.abs(primary[:, -1] - primary[:, 0]) > 1e-3)
  assert np.nansum(np.asarray(m["outer_skipped"])) == 0


@pytest.mark.parametrize("changes, match", [
    (dict(outer="neumann", reward="naive"), "needs reward = 'aligned'"),
    (dict(outer="none", reward="aligned"), "needs reward = 'aligned'"),
    (dict(task="maze"), "config.task"),
    (dict(aux="helpful"), "config.aux"),
    (dict(primary_weight="fixed"), "config.primary_weight"),
    (dict(outer="none", reward="primary", primary_weight="learned"), "learn no reward"),
    (dict(episodes=10), "multiple of config.delta"),
    (dict(buffer_size=3), "config.buffer_size"),
    (dict(neumann_alpha=0.0), "neumann_alpha"),
    (dict(env_gamma=1.5), "env_gamma"),
])
def test_bad_config_names_the_key(changes, match):
  with pytest.raises(ValueError, match=match):
    barfi.make_agent(_config(**changes))


def _load_report_module():
  import os
  from tests.helpers import load_script
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return load_script(os.path.join(root, "experiments", "barfi_report.py"), "barfi_report")


def test_report_tables_use_only_the_reporting_seeds(tmp_path):
  """experiments/barfi_report.py: mean ± s.e. of the chosen seed indices, per seed."""
  import json
  report = _load_report_module()
  rng = np.random.default_rng(0)
  updates, seeds = 20, 6
  data = {}
  for method in ("primary_only", "barfi_neumann"):
    group = tmp_path / f"aux=bad_{method}"
    group.mkdir()
    curves = {k: rng.normal(size=(updates, seeds)) for k in report.KEYS}
    data[method] = curves
    with open(group / "metrics.jsonl", "w") as f:
      for u in range(updates):
        f.write(json.dumps({f"{k}_per_seed": curves[k][u].tolist() for k in report.KEYS})
                + "\n")
    with open(group / "summary.json", "w") as f:
      json.dump({"overrides": {"aux": "bad"}}, f)
  runs, overrides = report.load(str(tmp_path), slice(2, 6))
  text = report.tables(runs, overrides, slice(2, 6))
  final = data["barfi_neumann"]["episode_return"][-2:, 2:6].mean(0)   # last 10% = 2 updates
  auc = data["barfi_neumann"]["episode_return"][:, 2:6].mean(0)
  se = lambda x: x.std(ddof=1) / np.sqrt(len(x))
  row = [l for l in text.splitlines() if l.startswith("| bad | barfi_neumann | ")][0]
  assert f"{final.mean():.1f} ± {se(final):.1f}" in row
  assert f"{auc.mean():.1f} ± {se(auc):.1f}" in row
  per_seed = [l for l in text.splitlines() if l.startswith("| bad | barfi_neumann | ")][1]
  assert per_seed.endswith(" ".join(f"{v:.1f}" for v in final) + " |")
  baseline = [l for l in text.splitlines() if l.startswith("| bad | primary_only | ")][0]
  assert baseline.endswith("| — | — |")               # no learned γ or w for a baseline
  report.figure(runs, str(tmp_path / "curves.png"), "test")
  assert (tmp_path / "curves.png").stat().st_size > 10_000
