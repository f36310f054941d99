"""Times the official ORPO code (Laidlaw et al.) on the tomato gridworld, in its own python.

Called by `benchmarks/orpo.py` in a subprocess, with the official repository's checkout
(github.com/cassidylaidlaw/orpo, the folder holding `occupancy_measures/`) as the first
argument; nothing of it is copied here. Usage:

    python _orpo_official_driver.py OFFICIAL_PATH env NUM_ENVS STEPS REPS
    python _orpo_official_driver.py OFFICIAL_PATH train ALGO REGULARIZER NUM_ENVS STEPS \
        MINIBATCH ITERS JSON_OVERRIDES

`env`: NUM_ENVS instances of the official `Tomato_Environment` (level 4, "rhard", the
board that `create_simple_example(level=4)` writes, horizon 100, reward factor 0.02,
proxy reward, as `tomato_experiments.py` with `level=4 reward_fun=proxy`) stepped in
lock-step with uniformly random actions for STEPS steps, resetting each finished
episode; REPS timed passes after one untimed one.

`train`: one RLlib algorithm built from the official sacred experiment
(`orpo_experiments.py` with `env_to_run=tomato level=4 reward_fun=proxy`), then ITERS
calls of `algorithm.train()`, each timed. ALGO `ORPO`: one reference ("safe") policy,
randomly initialised (no checkpoint: speed only), divergence REGULARIZER with
coefficient 0.01, two rollout workers (the official mapping sends worker 1 to the
reference, worker 2 to the current policy) with NUM_ENVS envs each, rollout fragments
of STEPS steps: the current policy gets NUM_ENVS x STEPS steps per iteration, as many
from the reference. ALGO `PPO`: plain RLlib PPO on the proxy, one worker with NUM_ENVS
envs. SGD minibatch MINIBATCH, 8 epochs (the official tomato setting); the model is the
official tomato model (policy and value MLPs 4 x 512, discriminator 2 x 256) unless
JSON_OVERRIDES (sacred config updates, e.g. `{"width": 64, "depth": 2}`) change it.
Ray runs in local mode (`ray.init(local_mode=True)`: workers are objects in this
process) on the CPU.

Prints one line `OFFICIAL_RESULT {...}` on stdout.

Shims, applied here without editing the official files:
- `occupancy_measures/envs/__init__.py` imports the glucose (`bgp`), pandemic
  (`pandemic_simulator`) and traffic (`flow`) simulators, and the tomato env imports
  matplotlib (for rendering only); modules that are not installed are registered as
  empty stand-ins whose attributes are dummy classes. tqdm likewise.
- ray 2.7.1 imports `pkg_resources` (gone from setuptools >= 81) and pyarrow (whose
  releases >= 15 need numpy 2, which ray 2.7.1 does not support): the benchmark puts a
  folder with `setuptools<81` and `pyarrow==14.0.2` first on PYTHONPATH
  (`--official_overlay`, see `benchmarks/orpo.py`).
"""

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import time
import types


class _Stub(types.ModuleType):
  __path__ = []

  def __getattr__(self, name):
    if name.startswith("__"):
      raise AttributeError(name)
    cls = type(name, (), {"__init__": lambda s, *a, **k: None})
    setattr(self, name, cls)
    return cls


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  def __init__(self, roots):
    self.roots = roots

  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in self.roots:
      return importlib.machinery.ModuleSpec(name, self, is_package=True)
    return None

  def create_module(self, spec):
    return _Stub(spec.name)

  def exec_module(self, module):
    pass


def _install_stubs():
  missing = {r for r in ("bgp", "pandemic_simulator", "flow", "matplotlib", "tqdm")
             if importlib.util.find_spec(r) is None}
  sys.meta_path.insert(0, _StubFinder(missing))
  return sorted(missing)


def _level4_file(workdir):
  from occupancy_measures.envs.tomato_environment import create_simple_example
  path, diff = create_simple_example(workdir + "/", level=4)
  assert diff == "rhard", diff
  return path


def bench_env(workdir, num_envs, steps, reps):
  import numpy as np
  from occupancy_measures.envs.tomato_environment import Tomato_Environment
  path = _level4_file(workdir)
  cfg = dict(filepath=path, horizon=100, reward_fun="proxy", dry_distance=3,
             reward_factor=0.02, neg_rew=-0.1, randomness_eps=None, use_noop=False,
             render_mode=None, rendering_filepath=os.path.join(workdir, "renderings"))
  envs = [Tomato_Environment(dict(cfg)) for _ in range(num_envs)]
  for e in envs:
    e.reset()
  rng = np.random.default_rng(0)
  board = envs[0].board_visualization()

  def run():
    actions = rng.integers(0, 4, size=(steps, num_envs))
    total = 0.0
    t = time.perf_counter()
    for k in range(steps):
      for i, e in enumerate(envs):
        _, r, term, trunc, _ = e.step(int(actions[k, i]))
        total += r
        if term or trunc:
          e.reset()
    return time.perf_counter() - t, total

  run()
  secs = [run()[0] for _ in range(reps)]
  return dict(seconds=secs, steps=steps * num_envs, board=["".join(r) for r in board],
              accessible=envs[0].num_accessible_positions)


def bench_train(workdir, algo, regularizer, num_envs, steps, minibatch, iters, overrides):
  import ray
  from occupancy_measures.experiments.orpo_experiments import ex
  path = _level4_file(workdir)
  out = {}

  @ex.command(unobserved=True)
  def _bench(config, AlgorithmClass, _log):   # noqa: N803 (the official name)
    config._is_frozen = False
    workers = config.num_rollout_workers
    config.num_envs_per_worker = num_envs
    config.rollout_fragment_length = steps
    config.train_batch_size = workers * num_envs * steps
    assert config.sgd_minibatch_size == minibatch and config.num_sgd_iter == 8
    if algo == "ORPO":
      # The reference policy's config is a copy of the generic `AlgorithmConfig` of
      # `tomato_experiments.py`, whose exploration config is empty (a loaded PPO
      # checkpoint's config would bring PPO's); RLlib's base `Exploration` then returns
      # no action. Give it PPO's default, stochastic sampling.
      for spec in config.policies.values():
        if spec.config is not None and not spec.config.exploration_config:
          spec.config._is_frozen = False
          spec.config.exploration_config = {"type": "StochasticSampling"}
    ray.init(local_mode=True, num_cpus=os.cpu_count(), include_dashboard=False,
             ignore_reinit_error=True, _temp_dir=os.path.join(workdir, "ray"),
             log_to_driver=False)
    t = time.perf_counter()
    algorithm = AlgorithmClass(config, logger_creator=lambda c: _null_logger(c, workdir))
    out["build_seconds"] = time.perf_counter() - t
    secs, sampled = [], []
    for _ in range(iters):
      before = algorithm._counters.get("num_env_steps_sampled", 0)
      t = time.perf_counter()
      result = algorithm.train()
      secs.append(time.perf_counter() - t)
      sampled.append(result.get("num_env_steps_sampled", 0) - before)
    out.update(seconds=secs, env_steps=sampled, train_batch_size=config.train_batch_size,
               workers=workers, num_envs_per_worker=num_envs,
               policies=sorted(config.policies), fcnet_hiddens=config.model["fcnet_hiddens"])
    if algo == "ORPO":
      info = result["info"]["learner"]
      out["learner_policies"] = sorted(info)
      cur = info.get("current", {}).get("learner_stats", {})
      out["current_policy_loss"] = float(cur.get("total_loss", float("nan")))
    algorithm.stop()
    ray.shutdown()

  updates = dict(env_to_run="tomato", level=4, reward_fun="proxy", filepath=path,
                 log_dir=os.path.join(workdir, "logs"), sgd_minibatch_size=minibatch,
                 num_sgd_iter=8, horizon=steps)
  if algo == "ORPO":
    updates.update(exp_algo="ORPO", num_safe_policies=1, num_rollout_workers=2,
                   om_divergence_type=[regularizer], om_divergence_coeffs=[0.01])
  else:
    updates.update(exp_algo="PPO", num_rollout_workers=1)
  updates.update(overrides)
  ex.run("_bench", config_updates=updates, options={"--loglevel": "ERROR"})
  return out


def _null_logger(config, workdir):
  from ray.tune.logger import NoopLogger
  return NoopLogger(config, os.path.join(workdir, "rllib"))


def main():
  official, mode = sys.argv[1], sys.argv[2]
  stubs = _install_stubs()
  sys.path.insert(0, os.path.abspath(official))
  workdir = tempfile.mkdtemp(prefix="orpo_official_")
  os.chdir(workdir)   # the official code writes data/ under the current directory
  os.environ["RAY_AIR_NEW_PERSISTENCE_MODE"] = "0"
  try:
    _run(official, mode, workdir, stubs)
  except BaseException:
    import traceback
    traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)   # a failed RLlib build can leave ray's threads hanging


def _run(official, mode, workdir, stubs):
  if mode == "env":
    res = bench_env(workdir, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
  else:
    algo, reg, num_envs, steps, mb, iters, overrides = sys.argv[3:10]
    res = bench_train(workdir, algo, reg, int(num_envs), int(steps), int(mb), int(iters),
                      json.loads(overrides))
  import numpy
  import torch
  res.update(stubs=stubs, torch_threads=torch.get_num_threads(), numpy=numpy.__version__,
             torch=torch.__version__)
  sys.stdout.write("OFFICIAL_RESULT " + json.dumps(res) + "\n")
  sys.stdout.flush()
  os._exit(0)   # ray's atexit hooks can hang in local mode


if __name__ == "__main__":
  main()
