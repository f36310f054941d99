"""experiments/main.py and the runner: outputs, kill-and-resume exactness, sweeps,
config errors, and sharding over (simulated) devices."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from rlcore import experiment as runner
from rlcore import io as rio
from rlcore.agents import ppo
from tests import plot_checks

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "experiments" / "main.py")


def _env(**extra):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  env.update(extra)
  return env


def _main(workdir, *flags, env=None, check=True, timeout=300):
  cmd = [sys.executable, MAIN, f"--workdir={workdir}", "--progress=false", *flags]
  return subprocess.run(cmd, env=env or _env(), capture_output=True, text=True,
                        timeout=timeout, check=check, cwd=ROOT)


def _small(**kw):
  c = ppo.default_config()
  c.total_timesteps = 512 * 12
  c.chunk_updates = 4
  for k, v in kw.items():
    c[k] = v
  return c


def test_run_writes_metrics_checkpoint_summary_and_plot(tmp_path):
  summaries = runner.run(_small(num_seeds=2), str(tmp_path), progress=False)
  recs = rio.read_jsonl(tmp_path / "metrics.jsonl")
  assert [r["update"] for r in recs] == list(range(1, 13))
  first = recs[0]
  for key in ("env_steps", "episode_return", "shaped_return", "loss", "value_loss",
              "actor_loss", "entropy", "steps_per_second", "wall_time"):
    assert key in first, key
  assert len(first["episode_return_per_seed"]) == 2
  assert recs[-1]["env_steps"] == 512 * 12
  summary = rio.read_json(tmp_path / "summary.json")
  assert summary == json.loads(json.dumps(summaries[0]))
  for key in ("compile_seconds", "steps_per_second", "jax_version", "device", "points"):
    assert summary[key] not in (None, ""), key
  assert summary["points"]["default"]["final"]["update"] == 12
  plot_checks.assert_draws_curve(tmp_path / "curve.png")   # the return curve, 2 seeds
  assert rio.Checkpointer(tmp_path / "checkpoints").latest_step() == 12
  state, _, meta = runner.load(_small(num_seeds=2), str(tmp_path))
  assert int(state.update_step[0]) == 12 and meta["updates"] == 12


def test_cli_overrides_and_unknown_keys(tmp_path):
  out = _main(tmp_path / "a", "--config=configs/ppo_cartpole.py",
              "--config.total_timesteps=2048", "--config.seed=3",
              "--config.host_eval_episodes=1", "--config.chunk_updates=2")
  assert "episode return" in out.stdout and "host eval return" in out.stdout
  summary = rio.read_json(tmp_path / "a" / "summary.json")
  assert summary["config"]["seed"] == 3 and summary["points"]["default"]["env_steps"] == 2048
  bad = _main(tmp_path / "b", "--config.totl_timesteps=5", check=False)
  assert bad.returncode != 0 and "totl_timesteps" in bad.stderr
  c = _small()
  with c.unlocked():
    c.learning_rate = 1e-3
  with pytest.raises(ValueError, match=r"unknown config keys \['learning_rate'\]"):
    runner.run(c, str(tmp_path / "c"))
  with pytest.raises(ValueError, match="config.agent: unknown agent 'dqn'"):
    runner.run(_small(agent="dqn"), str(tmp_path / "d"))
  with pytest.raises(ValueError, match="num_minibatches = 5"):
    runner.run(_small(num_minibatches=5), str(tmp_path / "e"))


def test_sigkill_mid_run_then_resume_gives_identical_parameters(tmp_path):
  flags = ["--config=configs/ppo_cartpole.py", f"--config.total_timesteps={512 * 150}",
           "--config.chunk_updates=3", "--config.host_eval_episodes=0"]
  killed, full = tmp_path / "killed", tmp_path / "full"
  proc = subprocess.Popen([sys.executable, MAIN, f"--workdir={killed}", "--progress=false",
                           *flags], env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  ckpt_dir = killed / "checkpoints"
  deadline = time.time() + 240
  while time.time() < deadline:
    steps = [int(p.name) for p in ckpt_dir.glob("*") if p.name.isdigit()] if ckpt_dir.exists() else []
    if steps and max(steps) >= 9:
      break
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (killed / "summary.json").exists(), "the run finished before the kill"
  resumed = _main(killed, *flags)
  assert "resuming after update" in resumed.stdout
  _main(full, *flags)

  config = ppo.default_config()
  config.total_timesteps, config.chunk_updates = 512 * 150, 3
  a, _, _ = runner.load(config, str(killed))
  b, _, _ = runner.load(config, str(full))
  assert int(a.update_step[0]) == 150
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  ra, rb = rio.read_jsonl(killed / "metrics.jsonl"), rio.read_jsonl(full / "metrics.jsonl")
  assert [r["update"] for r in ra] == list(range(1, 151))
  strip = lambda rs: [{k: v for k, v in r.items() if k not in ("wall_time", "steps_per_second")}
                      for r in rs]
  assert strip(ra) == strip(rb)


def test_sweep_vmaps_scalars_separates_structure_and_skips_finished(tmp_path, capsys):
  import ml_collections
  c = _small(num_seeds=2, total_timesteps=512 * 4)
  c.sweep = ml_collections.ConfigDict({"lr": [1e-3, 2.5e-4], "activation": ["tanh", "relu"]},
                                      allow_dotted_keys=True)
  groups = runner.plan(runner.prepare_config(c))
  assert [g.name for g in groups] == ["activation=tanh", "activation=relu"]
  assert groups[0].points == [{"lr": 1e-3}, {"lr": 2.5e-4}]
  runner.run(c, str(tmp_path), progress=False)
  for g in ("activation=tanh", "activation=relu"):
    assert sorted(os.listdir(tmp_path / g / "points")) == ["lr=0.00025.json", "lr=0.001.json"]
    recs = rio.read_jsonl(tmp_path / g / "metrics.jsonl")
    assert {r["point"] for r in recs} == {"lr=0.001", "lr=0.00025"}
  state, _, _ = runner.load(c, str(tmp_path), "activation=relu")
  np.testing.assert_allclose(np.asarray(state.hparams["lr"]), [1e-3, 1e-3, 2.5e-4, 2.5e-4])
  assert (tmp_path / "sweep_summary.json").exists()
  for color in plot_checks.CYCLE:          # 2 groups x 2 points: four lines in one figure
    plot_checks.assert_draws_curve(tmp_path / "sweep_curve.png", color)
  before = (tmp_path / "activation=tanh" / "summary.json").stat().st_mtime_ns
  os.remove(tmp_path / "activation=relu" / "points" / "lr=0.001.json")
  capsys.readouterr()
  runner.run(c, str(tmp_path), progress=False)
  out = capsys.readouterr().out
  assert "activation=tanh: finished earlier with this config" in out
  assert (tmp_path / "activation=tanh" / "summary.json").stat().st_mtime_ns == before
  assert (tmp_path / "activation=relu" / "points" / "lr=0.001.json").exists()


def test_bad_sweeps_fail_at_start(tmp_path):
  import ml_collections
  c = _small()
  c.sweep = ml_collections.ConfigDict({"lr_rate": [1.0]}, allow_dotted_keys=True)
  with pytest.raises(ValueError, match="unknown or unsweepable key 'lr_rate'"):
    runner.run(c, str(tmp_path))
  c.sweep = ml_collections.ConfigDict({"lr": []}, allow_dotted_keys=True)
  with pytest.raises(ValueError, match="non-empty list"):
    runner.run(c, str(tmp_path))
  with pytest.raises(ValueError, match="config.shard: 'rows'"):
    runner.run(_small(shard="rows"), str(tmp_path))


SHARD_SCRIPT = r"""
import json, sys, jax, numpy as np
from rlcore import experiment as runner
from rlcore.agents import ppo
c = ppo.default_config()
c.total_timesteps, c.chunk_updates = 512 * 6, 3
c.num_seeds, c.num_envs, c.num_minibatches = int(sys.argv[2]), int(sys.argv[3]), 4
c.shard = sys.argv[4]
try:
  runner.run(c, sys.argv[1], progress=False)
except ValueError as e:
  print("ERROR", e); sys.exit(0)
state, _, _ = runner.load(c, sys.argv[1])
leaves = [np.asarray(x).tolist() for x in jax.tree.leaves(state.params)]
print("RESULT", json.dumps({"devices": jax.device_count(), "params": leaves}))
"""


def _shard_run(tmp_path, name, seeds, num_envs, shard, devices):
  env = _env()
  if devices > 1:
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  out = subprocess.run([sys.executable, "-c", SHARD_SCRIPT, str(tmp_path / name), str(seeds),
                        str(num_envs), shard], env=env, capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
  assert out.returncode == 0, out.stderr[-3000:]
  line = [l for l in out.stdout.splitlines() if l.startswith(("RESULT", "ERROR"))][-1]
  return line


@pytest.mark.parametrize("seeds, num_envs, shard", [(4, 4, "seeds"), (1, 8, "envs")])
def test_sharding_over_four_devices_matches_one_device(tmp_path, seeds, num_envs, shard):
  one = json.loads(_shard_run(tmp_path, "one", seeds, num_envs, "none", 1)[7:])
  four = json.loads(_shard_run(tmp_path, "four", seeds, num_envs, shard, 4)[7:])
  assert one["devices"] == 1 and four["devices"] == 4
  for a, b in zip(one["params"], four["params"]):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shard, named", [("seeds", "3 runs"), ("envs", "num_envs=6")])
def test_sizes_that_do_not_divide_over_devices_fail_with_the_numbers(tmp_path, shard, named):
  line = _shard_run(tmp_path, "bad", 3, 6, shard, 4)
  assert line.startswith("ERROR") and named in line and "4 devices" in line


@pytest.mark.parametrize("seeds, layout", [(2, "seeds"), (1, "none")])
def test_main_cpu_devices_shards_seeds_over_cpu_devices(tmp_path, seeds, layout):
  _main(tmp_path, "--cpu_devices=2", f"--config.num_seeds={seeds}",
        "--config.total_timesteps=3072", "--config.chunk_updates=3",
        "--config.host_eval_episodes=0", "--config.plot=false")
  summary = rio.read_json(tmp_path / "summary.json")
  assert summary["num_devices"] == 2 and summary["sharding"] == layout
  assert len(rio.read_jsonl(tmp_path / "metrics.jsonl")[-1]["episode_return_per_seed"]) == seeds


def test_auto_on_cpu_devices_runs_what_does_not_divide_on_one_device(tmp_path):
  assert _shard_run(tmp_path, "auto", 3, 6, "auto", 4).startswith("RESULT")
