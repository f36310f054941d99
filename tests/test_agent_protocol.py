"""The agent protocol: toy agents defined here, registered, and run by the one runner loop.

Nothing of the runner knows these agents: a vectorized one (pure JAX, vmapped over
seeds and a swept learning rate) and a host one (a Python loop with a numpy RNG seeded
by the run's seed) go through `rlcore.experiment.run` with metrics, checkpoints,
resume after a lost chunk, evaluation, summary and plot.
"""

import shutil
import types
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from rlcore import agents, experiment
from rlcore import io as rio
from tests import plot_checks

TARGET = 3.0


def _toy_config(name):
  c = ml_collections.ConfigDict()
  c.agent = name
  c.num_updates = 12
  c.lr = 0.3
  c.noise = 0.05
  c.diverge_at = 0      # from this update on the error is NaN (0: never)
  return c


class ToyState(NamedTuple):
  theta: jax.Array     # the estimate, learning towards TARGET
  key: jax.Array
  step: jax.Array
  hparams: dict


class ToyAgent(NamedTuple):
  init: Callable
  run_chunk: Callable
  default_hparams: Callable
  num_updates: int
  steps_per_update: int
  plot_metrics: tuple
  finite_metrics: tuple
  vectorized: bool
  evaluate: Optional[Callable]


def _make_vectorized(config, *, constrain_batch=None):
  """Noisy gradient steps on (theta - TARGET)^2 / 2: the error shrinks by (1 - lr)."""
  del constrain_batch

  def default_hparams():
    return {"lr": jnp.float32(config.lr)}

  def init(key, hparams=None, *, seed=0):
    del seed
    hparams = {**default_hparams(), **(hparams or {})}
    return ToyState(jnp.zeros((), jnp.float32), key, jnp.zeros((), jnp.int32), hparams)

  def update(s):
    key, noise_key = jax.random.split(s.key)
    noise = config.noise * jax.random.normal(noise_key)
    theta = s.theta + s.hparams["lr"] * (TARGET - s.theta) + noise
    step = s.step + 1
    diverged = (config.diverge_at > 0) & (step >= config.diverge_at)
    error = jnp.where(diverged, jnp.nan, jnp.abs(theta - TARGET))
    return ToyState(theta, key, step, s.hparams), dict(error=error, env_steps=step * 10)

  def run_chunk(s, n):
    return jax.lax.scan(lambda c, _: update(c), s, None, n)

  return ToyAgent(init=init, run_chunk=run_chunk, default_hparams=default_hparams,
                  num_updates=config.num_updates, steps_per_update=10,
                  plot_metrics=("error",), finite_metrics=("error",), vectorized=True,
                  evaluate=lambda s: {"final_theta": float(s.theta)})


def _make_host(config, *, constrain_batch=None):
  """The same learning as a host loop; its noise comes from numpy, seeded by the run."""
  del constrain_batch

  def init(key, hparams=None, *, seed=0):
    assert not hparams
    return dict(theta=np.zeros((), np.float64), step=np.zeros((), np.int32),
                seed=np.asarray(seed, np.int32), key=key)

  def run_chunk(s, n):
    errors, steps = [], []
    theta, step = float(s["theta"]), int(s["step"])
    for _ in range(n):
      rng = np.random.default_rng([int(s["seed"]), step])
      theta += config.lr * (TARGET - theta) + config.noise * rng.standard_normal()
      step += 1
      errors.append(abs(theta - TARGET))
      steps.append(step * 10)
    new = dict(s, theta=np.asarray(theta), step=np.asarray(step, np.int32))
    return new, {"error": np.array(errors), "env_steps": np.array(steps),
                 "seed_used": np.full(n, float(s["seed"]))}

  return ToyAgent(init=init, run_chunk=run_chunk, default_hparams=dict,
                  num_updates=config.num_updates, steps_per_update=10,
                  plot_metrics=("error", "seed_used"), finite_metrics=(), vectorized=False,
                  evaluate=None)


@pytest.fixture(scope="module")
def families():
  vec = agents.register(agents.AgentFamily(
      name="toy_vectorized", default_config=lambda: _toy_config("toy_vectorized"),
      make_agent=_make_vectorized, hparam_names=("lr",)), replace=True)
  host = agents.register(agents.AgentFamily(
      name="toy_host", default_config=lambda: _toy_config("toy_host"),
      make_agent=_make_host), replace=True)
  return vec, host


def _run_lose_a_chunk_and_resume(config, tmp_path):
  """Runs `config`, then replays a crash that lost the last chunk's checkpoint and the
  summary; returns (the uninterrupted workdir, the resumed one)."""
  full, crash = tmp_path / "full", tmp_path / "crash"
  experiment.run(config, str(full), progress=False)
  shutil.copytree(full, crash)
  last = max(int(p.name) for p in (crash / "checkpoints").iterdir() if p.name.isdigit())
  shutil.rmtree(crash / "checkpoints" / str(last))
  (crash / "summary.json").unlink()
  shutil.rmtree(crash / "points")
  experiment.run(config, str(crash), progress=False)
  return full, crash


def _strip(records):
  return [{k: v for k, v in r.items() if k not in ("wall_time", "steps_per_second")}
          for r in records]


def test_a_registered_vectorized_agent_runs_sweeps_and_resumes(families, tmp_path):
  config = experiment.with_runner_defaults(_toy_config("toy_vectorized"))
  config.num_seeds, config.chunk_updates = 3, 5          # chunks of 5, 5, 2 updates
  config.sweep = ml_collections.ConfigDict({"lr": [0.1, 0.5]}, allow_dotted_keys=True)
  assert [g.points for g in experiment.plan(experiment.prepare_config(config))] == [
      [{"lr": 0.1}, {"lr": 0.5}]]                         # one group: lr is vmapped
  full, crash = _run_lose_a_chunk_and_resume(config, tmp_path)

  records = rio.read_jsonl(full / "metrics.jsonl")
  assert [(r["update"], r["point"]) for r in records[:2]] == [(1, "lr=0.1"), (1, "lr=0.5")]
  assert len(records) == 2 * 12 and len(records[0]["error_per_seed"]) == 3
  first, last = records[:2], records[-2:]
  for a, b in zip(first, last):       # learning happened: the error fell for both rates
    assert b["error"] < 0.5 * a["error"], (a, b)
  assert last[1]["error"] < last[0]["error"]       # the faster rate got closer
  assert _strip(rio.read_jsonl(crash / "metrics.jsonl")) == _strip(records)

  a, agent, meta = experiment.load(config, str(full))
  b, _, _ = experiment.load(config, str(crash))
  assert meta["updates"] == 12 and a.theta.shape == (6,)
  np.testing.assert_array_equal(np.asarray(a.theta), np.asarray(b.theta))
  np.testing.assert_allclose(np.asarray(a.hparams["lr"]), [0.1] * 3 + [0.5] * 3)
  assert len(set(np.asarray(a.theta).tolist())) == 6   # seeds drew different noise
  summary = rio.read_json(full / "summary.json")
  point = summary["points"]["lr=0.5"]
  assert point["evaluation"]["final_theta_per_seed"] == pytest.approx(
      np.asarray(a.theta)[3:].tolist(), rel=1e-6)
  assert point["last"]["error"] == pytest.approx(last[1]["error"])
  plot_checks.assert_draws_curve(full / "curve.png", plot_checks.CYCLE[0])
  plot_checks.assert_draws_curve(full / "curve.png", plot_checks.CYCLE[1])


def test_a_registered_host_agent_runs_each_seed_and_resumes(families, tmp_path):
  config = experiment.with_runner_defaults(_toy_config("toy_host"))
  config.num_seeds, config.chunk_updates, config.seed = 2, 5, 7
  full, crash = _run_lose_a_chunk_and_resume(config, tmp_path)
  records = rio.read_jsonl(full / "metrics.jsonl")
  assert [r["seed_used_per_seed"] for r in records[:1]] == [[7.0, 8.0]]  # config.seed + s
  assert records[-1]["error"] < 0.1 * records[0]["error"]
  assert _strip(rio.read_jsonl(crash / "metrics.jsonl")) == _strip(records)
  a, _, _ = experiment.load(config, str(full))
  b, _, _ = experiment.load(config, str(crash))
  assert [float(s["theta"]) for s in a] == [float(s["theta"]) for s in b]
  assert float(a[0]["theta"]) != float(a[1]["theta"])
  summary = rio.read_json(full / "summary.json")
  assert summary["compile_seconds"] is None and "evaluation" not in summary["points"]["default"]


def test_a_family_whose_agent_lacks_a_member_is_refused(tmp_path):
  def make_broken(config, *, constrain_batch=None):
    fields = _make_vectorized(config)._asdict()
    del fields["run_chunk"]
    return types.SimpleNamespace(**fields)

  agents.register(agents.AgentFamily(
      name="toy_broken", default_config=lambda: _toy_config("toy_broken"),
      make_agent=make_broken), replace=True)
  with pytest.raises(TypeError, match="toy_broken.*without run_chunk"):
    experiment.run(_toy_config("toy_broken"), str(tmp_path), progress=False)
  with pytest.raises(ValueError, match="unknown agent 'toy_missing'.*grpo, orpo, ppo"):
    experiment.run(_toy_config("toy_missing"), str(tmp_path), progress=False)
