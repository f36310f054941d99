"""Run integrity: a rerun, resumed, swept or corrupted run never silently mixes, loses or
mislabels results. Each case is one of the issue's numbered cases; most use the toy
agents of tests/test_agent_protocol.py (fast), a few the real PPO config or the CLI."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from rlcore import experiment
from rlcore import io as rio
from rlcore.agents import ppo
from rlcore.experiment import integrity
from tests.test_agent_protocol import _toy_config, families  # noqa: F401  (fixture)

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "experiments" / "main.py")


def _toy(**overrides):
  c = experiment.with_runner_defaults(_toy_config("toy_vectorized"))
  c.num_seeds, c.chunk_updates = 2, 5          # checkpoints at updates 5, 10, 12
  for k, v in overrides.items():
    c[k] = v
  return c


def _theta(config, workdir):
  state, _, meta = experiment.load(config, str(workdir))
  return np.asarray(state.theta), meta["updates"]


def _strip(records):
  return [{k: v for k, v in r.items() if k not in ("wall_time", "steps_per_second")}
          for r in records]


def _interrupt(workdir):
  """What a kill before the end leaves: no summary, no point files, no last checkpoint."""
  (workdir / "summary.json").unlink()
  shutil.rmtree(workdir / "points")
  shutil.rmtree(workdir / "checkpoints" / "12")


# --- 1. a changed config is refused, or restarted / resumed deliberately ---------------

def test_a_rerun_with_another_config_refuses_and_names_the_keys(families, tmp_path):
  experiment.run(_toy(), str(tmp_path), progress=False)
  before = _theta(_toy(), tmp_path)
  for changes, named in (({"lr": 0.5, "seed": 7}, ["lr: 0.3", "seed: 0"]),
                         ({"num_updates": 20}, ["num_updates: 12"])):  # finished: refused too
    with pytest.raises(integrity.ConfigChangedError) as info:
      experiment.run(_toy(**changes), str(tmp_path), progress=False)
    for text in named + ["nothing was trained", "--config.existing=restart",
                         "--config.existing=resume_recorded"]:
      assert text in str(info.value), (text, str(info.value))
  np.testing.assert_array_equal(_theta(_toy(), tmp_path)[0], before[0])   # untouched
  # Presentation keys may change: a finished run with another log_every is skipped.
  experiment.run(_toy(log_every=3, plot=False), str(tmp_path), progress=False)


def test_a_key_added_to_the_family_later_at_its_default_is_not_a_change(families, tmp_path):
  """A run recorded before the family gained `diverge_at` (its record lacks the key) is
  resumed when the key now holds its default, and refused when it does not."""
  experiment.run(_toy(), str(tmp_path), progress=False)
  before = _theta(_toy(), tmp_path)
  path = tmp_path / integrity.RECORD
  old = json.loads(path.read_text())
  del old["config"]["diverge_at"]
  old["fingerprint"] = integrity.fingerprint({k: old[k] for k in ("config", "points")})
  path.write_text(json.dumps(old))
  with pytest.raises(integrity.ConfigChangedError, match="diverge_at: '<absent>'"):
    experiment.run(_toy(diverge_at=5), str(tmp_path), progress=False)
  experiment.run(_toy(), str(tmp_path), progress=False)            # the default: accepted
  assert "diverge_at" in json.loads(path.read_text())["config"]     # and re-recorded
  np.testing.assert_array_equal(_theta(_toy(), tmp_path)[0], before[0])


def test_restart_moves_the_old_run_aside_and_trains_the_new_config(families, tmp_path):
  experiment.run(_toy(), str(tmp_path), progress=False)
  old = _theta(_toy(), tmp_path)[0]
  experiment.run(_toy(lr=0.5, existing="restart"), str(tmp_path), progress=False)
  aside = [p for p in tmp_path.parent.iterdir() if p.name.startswith(tmp_path.name + ".replaced-")]
  assert len(aside) == 1 and (aside[0] / "metrics.jsonl").exists()
  new, updates = _theta(_toy(lr=0.5), tmp_path)
  assert updates == 12 and not np.array_equal(new, old)
  summary = rio.read_json(tmp_path / "summary.json")
  assert summary["config"]["lr"] == 0.5 and summary["points"]["default"]["final"]["update"] == 12


def test_resume_recorded_goes_on_with_the_recorded_config(families, tmp_path, capsys):
  full, crash = tmp_path / "full", tmp_path / "crash"
  experiment.run(_toy(), str(full), progress=False)
  shutil.copytree(full, crash)
  _interrupt(crash)
  experiment.run(_toy(lr=0.9, existing="resume_recorded"), str(crash), progress=False)
  assert "lr: 0.3 (recorded) -> 0.9 (now)" in capsys.readouterr().out
  np.testing.assert_array_equal(_theta(_toy(), crash)[0], _theta(_toy(), full)[0])
  assert rio.read_json(crash / "summary.json")["config"]["lr"] == 0.3


# --- 2. a corrupt newest checkpoint: reported, set aside, the previous one restored -----

def test_a_corrupt_checkpoint_is_set_aside_and_the_run_recomputed(families, tmp_path, capsys):
  full, crash = tmp_path / "full", tmp_path / "crash"
  experiment.run(_toy(), str(full), progress=False)
  shutil.copytree(full, crash)
  _interrupt(crash)                                    # newest step is now 10
  step_dir = crash / "checkpoints" / "10" / "state"
  files = [os.path.join(d, f) for d, _, fs in os.walk(step_dir) for f in fs]
  target = max(files, key=os.path.getsize)
  data = bytearray(open(target, "rb").read())
  data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
  open(target, "wb").write(bytes(data))
  experiment.run(_toy(), str(crash), progress=False)
  out = capsys.readouterr().out
  assert "checkpoint 10 set aside" in out and "no intact checkpoint left" in out
  assert any(n.startswith("10.corrupt-") for n in os.listdir(crash / "checkpoints"))
  np.testing.assert_array_equal(_theta(_toy(), crash)[0], _theta(_toy(), full)[0])
  assert _strip(rio.read_jsonl(crash / "metrics.jsonl")) == _strip(
      rio.read_jsonl(full / "metrics.jsonl"))


# --- 3. sweep points are identified by their values ---------------------------------

@pytest.mark.parametrize("sweep, points, match", [
    ({"lr": [0.001, 1e-3]}, [], r"config.sweep\['lr'\] lists the same point twice"),
    ({}, [{"lr": 0.1, "_name": "a"}, {"lr": 0.2, "_name": "a"}], "names lists the same"),
    ({}, [{"noise": 0.1, "_name": "a"}, {"noise": 0.1, "_name": "b"}],
     "sweep_points lists the same point twice"),
])
def test_duplicate_sweep_points_fail_at_start(families, tmp_path, sweep, points, match):
  c = _toy()
  c.sweep = ml_collections.ConfigDict(sweep, allow_dotted_keys=True)
  c.sweep_points = points
  with pytest.raises(ValueError, match=match):
    experiment.run(c, str(tmp_path), progress=False)
  assert not (tmp_path / "run.json").exists()


def test_a_changed_sweep_value_trains_or_refuses_never_reuses(families, tmp_path):
  c = _toy(num_updates=5)
  c.sweep = ml_collections.ConfigDict({"noise": [0.0, 0.1], "lr": [0.1, 0.5]},
                                      allow_dotted_keys=True)
  experiment.run(c, str(tmp_path), progress=False)
  # A changed structural value is a new group: it trains; the old one stays on disk.
  c.sweep = ml_collections.ConfigDict({"noise": [0.0, 0.2], "lr": [0.1, 0.5]},
                                      allow_dotted_keys=True)
  summaries = experiment.run(c, str(tmp_path), progress=False)
  assert [s["group"] for s in summaries] == ["noise=0.0", "noise=0.2"]
  assert summaries[1]["points"]["lr=0.5"]["final"]["update"] == 5
  assert (tmp_path / "noise=0.1" / "summary.json").exists()
  # A changed vmapped value changes its group's computation: refused, naming the points.
  c.sweep = ml_collections.ConfigDict({"noise": [0.0, 0.2], "lr": [0.1, 0.3]},
                                      allow_dotted_keys=True)
  with pytest.raises(integrity.ConfigChangedError, match=r"points\.1\.lr: 0\.5"):
    experiment.run(c, str(tmp_path), progress=False)


# --- 4. one run per workdir ---------------------------------------------------------

def test_a_second_run_on_a_locked_workdir_fails_at_once_naming_the_holder(families, tmp_path):
  with integrity.WorkdirLock(str(tmp_path)):
    with pytest.raises(integrity.WorkdirBusyError, match=f"pid {os.getpid()}"):
      experiment.run(_toy(), str(tmp_path), progress=False)
  assert not (tmp_path / "metrics.jsonl").exists()
  experiment.run(_toy(), str(tmp_path), progress=False)      # free again


# --- 5. the metrics log and the checkpoint agree -------------------------------------

def test_a_truncated_metrics_log_is_recomputed_not_left_with_a_gap(families, tmp_path, capsys):
  full, crash = tmp_path / "full", tmp_path / "crash"
  experiment.run(_toy(), str(full), progress=False)
  shutil.copytree(full, crash)
  _interrupt(crash)                                    # checkpoint at 10
  lines = (crash / "metrics.jsonl").read_text().splitlines(keepends=True)
  (crash / "metrics.jsonl").write_text("".join(lines[:7]))   # updates 1-7 survive
  experiment.run(_toy(), str(crash), progress=False)
  assert "metrics.jsonl ends at update 7 but the checkpoint is at update 10" in (
      capsys.readouterr().out)
  records = rio.read_jsonl(crash / "metrics.jsonl")
  assert [r["update"] for r in records] == [u for u in range(1, 13)]     # no gap, no repeat
  assert _strip(records) == _strip(rio.read_jsonl(full / "metrics.jsonl"))
  np.testing.assert_array_equal(_theta(_toy(), crash)[0], _theta(_toy(), full)[0])


# --- 6. divergence is visible; hyperparameters are range-checked at start -------------

def test_a_diverged_run_stops_naming_the_update_and_metric(families, tmp_path):
  with pytest.raises(integrity.DivergenceError,
                     match="error is nan at update 7 .*point default, seed index 0"):
    experiment.run(_toy(diverge_at=7), str(tmp_path), progress=False)
  records = rio.read_jsonl(tmp_path / "metrics.jsonl")
  at7 = [r for r in records if r["update"] == 7][0]
  assert at7["error"] is None and at7["error_per_seed"] == [None, None]   # null, not dropped
  assert rio.Checkpointer(tmp_path / "checkpoints").latest_step() == 5   # not checkpointed
  summary = experiment.run(_toy(diverge_at=7, allow_nonfinite=True), str(tmp_path / "b"),
                           progress=False)[0]
  assert summary["nonfinite"] == {"error": 2 * 6}           # updates 7-12, two seeds
  assert summary["points"]["default"]["final"]["update"] == 12


@pytest.mark.parametrize("overrides, match", [
    ({"lr": float("nan")}, r"config.lr must be a finite number in \(0, inf\), got nan"),
    ({"lr": -1.0}, r"config.lr must be a finite number in \(0, inf\)"),
    ({"gamma": 1.5}, r"config.gamma must be a finite number in \[0, 1\], got 1.5"),
    ({"clip_eps": -0.1}, r"config.clip_eps must be a finite number in \[0, inf\)"),
    ({"hidden_sizes": (0,)}, "hidden_sizes must be a non-empty tuple of positive integers"),
    ({"host_eval_env": "CartPol-v1"}, "config.host_eval_env: gymnasium has no environment"),
    ({"sweep": {"lr": [1e-3, -1.0]}}, r"config.lr must be a finite number"),  # every value
])
def test_bad_hyperparameters_fail_at_start(tmp_path, overrides, match):
  c = experiment.with_runner_defaults(ppo.default_config())
  for k, v in overrides.items():
    c[k] = ml_collections.ConfigDict(v, allow_dotted_keys=True) if isinstance(v, dict) else v
  with pytest.raises(ValueError, match=match):
    experiment.run(c, str(tmp_path), progress=False)
  assert os.listdir(tmp_path) == []


# --- 7. the SFT warm-start cache under concurrency -----------------------------------

_IMPORT = """
import sys
from rlcore import experiment
from rlcore.agents import grpo, sft
c = experiment.override(grpo.default_config(), {"sft.cache_dir": sys.argv[1]})
print(sft.import_npz(c, sys.argv[2]))
"""


def test_concurrent_imports_into_the_sft_cache_both_succeed(tmp_path):
  from rlcore.agents import grpo, sft
  npz = str(ROOT / "tests" / "data" / "sft_default.npz")
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  procs = [subprocess.Popen([sys.executable, "-c", _IMPORT, str(tmp_path), npz], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for _ in range(3)]
  outs = [p.communicate(timeout=300) for p in procs]
  assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-2000:] for o in outs]
  c = experiment.override(grpo.default_config(), {"sft.cache_dir": str(tmp_path)})
  entry = sft.cache_path(c)
  assert all(o[0].strip() == entry for o in outs)
  assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(entry),
                                                 os.path.basename(entry) + ".lock"])
  # A reader never touches another process's temporary directory.
  other = tmp_path / f".{os.path.basename(entry)}.tmp-other-process"
  (other / "params").mkdir(parents=True)
  _, stats = sft.warm_start(c)
  assert stats["cached"] and other.exists()


# --- 10 / 12. clear errors and discovery from the command line -----------------------

def _main(*args, cwd=ROOT):
  return subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True,
                        timeout=300, cwd=cwd, env=dict(os.environ, JAX_PLATFORMS="cpu"))


def test_command_line_help_config_listing_and_unknown_keys(tmp_path):
  out = _main("--help")
  assert out.returncode == 0 and "configs/ppo_cartpole.py: PPO on CartPole-v1" in out.stdout
  assert "--show_config" in out.stdout and "--workdir" in out.stdout
  out = _main("--config=configs/nope.py")
  assert out.returncode == 2 and "configs/grpo_prm.py" in out.stderr
  out = _main("--config.totl_timesteps=5")
  assert out.returncode == 2 and "Traceback" not in out.stderr
  assert out.stderr.strip().splitlines() == [
      "error: unknown config key 'totl_timesteps' (closest: 'total_timesteps'); every key "
      "with its meaning: python experiments/main.py --config=configs/ppo_cartpole.py "
      "--show_config"]
  out = _main("--config.lr=1e-3", "--show_config")
  lines = out.stdout.splitlines()
  assert out.returncode == 0 and "lr = 0.001  # Adam learning rate (traced: sweepable)" in lines
  (tmp_path / "afile").write_text("x")
  out = _main(f"--workdir={tmp_path / 'afile'}", "--config.total_timesteps=512")
  assert out.returncode == 2 and "is a file, not a directory" in out.stderr


def test_every_config_key_of_every_family_has_a_meaning():
  from rlcore import agents
  from rlcore.experiment import descriptions
  for name in ("ppo", "reinforce", "grpo"):
    config = experiment.with_runner_defaults(agents.get_family(name).default_config())
    meanings = descriptions.meanings(name)
    missing = [k for k in experiment.flat_keys(config) if not meanings.get(k)]
    assert not missing, (name, missing)


@pytest.fixture(scope="module")
def main_module():
  from tests.helpers import load_script
  return load_script(MAIN, "rlcore_main_under_test")


def test_the_default_workdir_keeps_the_overrides(main_module):
  wd = main_module.default_workdir
  assert wd("configs/ppo_cartpole.py", []) == os.path.join("runs", "ppo_cartpole")
  assert wd("/x/configs/ppo_cartpole.py", [("seed", "3"), ("num_seeds", "8")]) == os.path.join(
      "runs", "ppo_cartpole", "num_seeds=8_seed=3")
  assert wd("configs/ppo_brax.py:env=ant", []) == os.path.join("runs", "ppo_brax_env=ant")
  # The README's commands each get their own workdir.
  readme = (ROOT / "README.md").read_text().splitlines()
  commands = [l for l in readme if l.startswith("python experiments/main.py")]
  dirs = []
  for command in commands:
    argv = command.split("#")[0].split()[2:]
    if any(a.startswith(("--workdir", "--help", "--show_config")) for a in argv):
      continue                       # its own workdir, or nothing trained
    path, overrides = main_module._argv_config(argv)   # pylint: disable=protected-access
    dirs.append(wd(path, overrides))
  assert len(dirs) >= 2 and len(set(dirs)) == len(dirs), dirs


# --- 13. third-party noise stays off stdout ----------------------------------------

def test_importing_brax_prints_nothing_to_stdout():
  out = subprocess.run([sys.executable, "-c", "from rlcore.envs import brax_envs; "
                        "brax_envs._import_brax_envs()"], capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert out.returncode == 0 and out.stdout == "", out.stdout
