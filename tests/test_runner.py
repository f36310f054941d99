"""experiments/main.py and the runner: outputs, kill-and-resume exactness, sweeps,
config errors, and sharding over (simulated) devices."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from rlcore import experiment as runner
from rlcore import io as rio
from rlcore.agents import ppo
from tests import plot_checks
from tests.helpers import kill_after_checkpoint, quick_compile_env

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "experiments" / "main.py")


def _env(**extra):
  # The subprocess runs are small: compiling is most of their time, so XLA's
  # optimisation level 0 (tests/helpers.py), after any XLA_FLAGS given in `extra`.
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  env.update(extra)
  return quick_compile_env(env)


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_main_runs_the_default_config_with_overrides_and_unknown_keys_fail(tmp_path):
  # No --config: `python experiments/main.py`, the README's first command, trains
  # configs/ppo_cartpole.py. (Unknown keys on the command line: test_run_integrity.)
  out = _main(tmp_path / "a", "--config.total_timesteps=2048", "--config.seed=3",
              "--config.host_eval_episodes=1", "--config.chunk_updates=2",
              "--progress")                      # the last --progress wins: bars on stderr
  assert "config " + str(ROOT / "configs" / "ppo_cartpole.py") in out.stdout
  assert "episode return" in out.stdout and "host eval return" in out.stdout
  # Every phase longer than a moment says so: compilation, training, host evaluation.
  assert "[runner] compiling a chunk of 2 updates" in out.stdout
  assert "[runner] compiled in" in out.stdout
  assert "4/4" in out.stderr                       # 2048 steps: 4 updates of 4 x 128
  assert "evaluating a" in out.stderr and "1/1" in out.stderr
  summary = rio.read_json(tmp_path / "a" / "summary.json")
  assert summary["config"]["seed"] == 3 and summary["points"]["default"]["env_steps"] == 2048
  c = _small()
  with c.unlocked():
    c.learning_rate = 1e-3
  with pytest.raises(ValueError, match=r"unknown config keys \['learning_rate'\]"):
    runner.run(c, str(tmp_path / "c"))
  with pytest.raises(ValueError, match="config.agent: unknown agent 'dqn'"):
    runner.run(_small(agent="dqn"), str(tmp_path / "d"))
  with pytest.raises(ValueError, match="num_minibatches = 5"):
    runner.run(_small(num_minibatches=5), str(tmp_path / "e"))


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_identical_parameters(tmp_path):
  # 48 updates in chunks of 3 (a checkpoint each), killed after update 9: 13 chunks are
  # left to run when the kill is sent.
  updates = 48
  flags = ["--config=configs/ppo_cartpole.py", f"--config.total_timesteps={512 * updates}",
           "--config.chunk_updates=3", "--config.host_eval_episodes=0"]
  killed, full = tmp_path / "killed", tmp_path / "full"
  proc = subprocess.Popen([sys.executable, MAIN, f"--workdir={killed}", "--progress=false",
                           *flags], env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  kill_after_checkpoint(proc, killed / "checkpoints", 9)
  assert not (killed / "summary.json").exists(), "the run finished before the kill"
  resumed = _main(killed, *flags)
  assert "resuming after update" in resumed.stdout
  _main(full, *flags)

  config = ppo.default_config()
  config.total_timesteps, config.chunk_updates = 512 * updates, 3
  a, _, _ = runner.load(config, str(killed))
  b, _, _ = runner.load(config, str(full))
  assert int(a.update_step[0]) == updates
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  ra, rb = rio.read_jsonl(killed / "metrics.jsonl"), rio.read_jsonl(full / "metrics.jsonl")
  assert [r["update"] for r in ra] == list(range(1, updates + 1))
  strip = lambda rs: [{k: v for k, v in r.items() if k not in ("wall_time", "steps_per_second")}
                      for r in rs]
  assert strip(ra) == strip(rb)


@pytest.mark.slow
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


def test_named_points_keep_their_names_in_every_structural_combination():
  import ml_collections
  c = _small()
  c.sweep = ml_collections.ConfigDict({"activation": ("tanh", "relu")})
  c.sweep_points = [{"num_envs": 4, "_name": "few"}, {"num_envs": 8, "_name": "many"}]
  groups = runner.plan(runner.prepare_config(c))
  assert [g.name for g in groups] == ["activation=tanh_few", "activation=tanh_many",
                                      "activation=relu_few", "activation=relu_many"]
  assert [g.config.num_envs for g in groups] == [4, 8, 4, 8]
  assert [g.config.activation for g in groups] == ["tanh", "tanh", "relu", "relu"]


def test_a_listed_point_pins_a_vmapped_key_in_its_group_only():
  import ml_collections
  c = _small()
  c.sweep = ml_collections.ConfigDict({"lr": (1e-3, 3e-4), "activation": ("tanh", "relu")})
  c.sweep_points = [{"ent_coef": 0.0, "lr": 5e-5, "_name": "frozen"},
                    {"ent_coef": 0.01, "_name": "swept"}]
  groups = runner.plan(runner.prepare_config(c))
  by_name = {g.name: g for g in groups}
  assert sorted(by_name) == ["activation=relu_frozen", "activation=relu_swept",
                             "activation=tanh_frozen", "activation=tanh_swept"]
  for act in ("tanh", "relu"):
    frozen, swept = by_name[f"activation={act}_frozen"], by_name[f"activation={act}_swept"]
    assert frozen.points == [{}] and frozen.config.lr == 5e-5   # one run per seed
    assert swept.points == [{"lr": 1e-3}, {"lr": 3e-4}]


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
results = {}
for name, seeds, num_envs, shard in json.loads(sys.argv[2]):
  c = ppo.default_config()
  c.total_timesteps, c.chunk_updates = 512 * 6, 3
  c.num_seeds, c.num_envs, c.num_minibatches, c.shard = seeds, num_envs, 4, shard
  workdir = f"{sys.argv[1]}/{name}"
  try:
    summary = runner.run(c, workdir, progress=False)[0]
  except ValueError as e:
    results[name] = "ERROR " + str(e)
    continue
  state, _, _ = runner.load(c, workdir)
  results[name] = {"sharding": summary["sharding"],
                   "params": [np.asarray(x).tolist() for x in jax.tree.leaves(state.params)]}
print("RESULT", json.dumps({"devices": jax.device_count(), "runs": results}))
"""

# (name, num_seeds, num_envs, shard), all run in one process with four CPU devices:
# shard="none" keeps a run on one device, the reference for its sharded twin.
SHARD_CASES = [("seeds_one", 4, 4, "none"), ("seeds_four", 4, 4, "seeds"),
               ("envs_one", 1, 8, "none"), ("envs_four", 1, 8, "envs"),
               ("bad_seeds", 3, 6, "seeds"), ("bad_envs", 3, 6, "envs"),
               ("auto", 3, 6, "auto")]


@pytest.mark.slow
def test_sharding_over_four_devices_matches_one_device_and_bad_sizes_fail(tmp_path):
  env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=4")
  proc = subprocess.run([sys.executable, "-c", SHARD_SCRIPT, str(tmp_path),
                         json.dumps(SHARD_CASES)],
                        env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads([l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1][7:])
  runs = out["runs"]
  assert out["devices"] == 4
  # Seeds over devices, and one run's envs over devices, give the one-device parameters.
  for case, layout in (("seeds", "seeds"), ("envs", "envs")):
    one, four = runs[f"{case}_one"], runs[f"{case}_four"]
    assert one["sharding"] == "none" and four["sharding"] == layout, (one["sharding"],
                                                                      four["sharding"])
    for a, b in zip(one["params"], four["params"]):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)
  # Sizes that do not divide over the devices fail with the numbers ...
  for case, named in (("bad_seeds", "3 runs"), ("bad_envs", "num_envs=6")):
    assert isinstance(runs[case], str) and runs[case].startswith("ERROR"), runs[case]
    assert named in runs[case] and "4 devices" in runs[case]
  # ... unless shard="auto", which runs them on one device.
  assert isinstance(runs["auto"], dict) and runs["auto"]["sharding"] == "none"


def test_main_cpu_devices_shards_seeds_over_cpu_devices(tmp_path):
  seeds, layout = 2, "seeds"
  _main(tmp_path, "--cpu_devices=2", f"--config.num_seeds={seeds}",
        "--config.total_timesteps=3072", "--config.chunk_updates=3",
        "--config.host_eval_episodes=0", "--config.plot=false")
  summary = rio.read_json(tmp_path / "summary.json")
  assert summary["num_devices"] == 2 and summary["sharding"] == layout
  assert len(rio.read_jsonl(tmp_path / "metrics.jsonl")[-1]["episode_return_per_seed"]) == seeds
