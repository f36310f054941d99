"""End-to-end PPO throughput: rlcore against PureJaxRL (CartPole) and brax (inverted pendulum).

Part 1, CartPole-v1 at PureJaxRL's settings (4 envs x 128 steps, 4 epochs x 4 minibatches,
5e5 steps): `jax.jit(jax.vmap(make_train(config)))` of rlcore's PPO and of PureJaxRL's own
`ppo.py` (imported from a checkout given on the command line), for 1 seed and for 8
vmapped seeds. Reported: trace/lower and compile time apart, steady-state environment
steps per second (median of whole training runs, the contenders interleaved
round-robin, and the ratio of the fastest runs), and the final episode return over the
seeds (mean ± standard error, and per seed). `--envs=4,64,512,2048` repeats it at more
environments per run (the other settings PureJaxRL's; each run lasts 5e5 env steps, or
4 updates where that is more).

Part 1b, `--part=phases`: one update split into its phases, each jitted and timed alone
at the same sizes, for both contenders (see `_ppo_phases.py`): rollout (for rlcore with
the critic pass over the T + 1 observations and the true-next-observation values inside
it, also timed alone), critic on the last observation (PureJaxRL), returns/GAE, episode
statistics (PureJaxRL's are inside its env step), SGD epochs, and inside them the
shuffles and the optimiser steps alone.

With `--cpu-devices=N` (default: one per core) the process exposes N CPU devices and a
third CartPole row, "rlcore, sharded", runs the same `jit(vmap(train))` with the seed
axis sharded over them (`jax.sharding.NamedSharding`), which is what
`experiments/main.py --cpu_devices=N` does for a config's seeds. PureJaxRL's `ppo.py`
has no such option: it runs, as written, on the default device. The sharded row is
measured for seed counts that N divides.

With `--baseline=PATH` (a checkout of another revision of this repository, e.g. made with
`git worktree add /tmp/base <commit>`), a fourth CartPole contender, "rlcore @ baseline",
runs that revision's own `jit(vmap(make_train))` at the same settings, in a worker
subprocess (both revisions are packages named `rlcore`), timed in the same round-robin as
the others: the before/after comparison of a change, in one run.

Part 2, brax `inverted_pendulum`: rlcore's PPO against `brax.training.agents.ppo.train`
at equal settings (envs, unroll length, minibatches, epochs, steps, network sizes,
observation normalisation, discount, lambda, learning rate, entropy cost, clipping). Both
run as a host loop over jitted epochs with an evaluation between epochs; steady-state
steps per second come from the progress callbacks after the first two epochs (brax
compiles its epoch twice), with and without the evaluations; the contenders alternate.

    python benchmarks/ppo_throughput.py --purejaxrl=/path/to/purejaxrl/purejaxrl
    python benchmarks/ppo_throughput.py --purejaxrl=... --quick        # smoke test
    python benchmarks/ppo_throughput.py --purejaxrl=... --json out.json
    python benchmarks/ppo_throughput.py --part=brax                     # brax part only
    python benchmarks/ppo_throughput.py --purejaxrl=... --baseline=/tmp/base   # before/after
    python benchmarks/ppo_throughput.py --purejaxrl=... --part=cartpole --envs=4,64,512,2048
    python benchmarks/ppo_throughput.py --purejaxrl=... --part=phases --envs=4,2048 --seeds=1

`--purejaxrl` is the folder that holds PureJaxRL's `ppo.py` and `wrappers.py`
(`purejaxrl/` in https://github.com/luchris429/purejaxrl). Ratios are rlcore / peer for
steps per second (above 1: rlcore is faster).

Shims, applied from here without editing either peer's files:
- gymnax >= 1.0 returns six values from `env.step` (obs, state, reward, terminated,
  truncated, info); PureJaxRL's wrappers unpack five (obs, state, reward, done, info).
  The env that PureJaxRL's module gets from `gymnax.make` is wrapped so that `step`
  returns `done = terminated | truncated` (what gymnax < 1.0 returned as `done`) and drops
  the three info keys gymnax 1.0 added (`terminated`, `truncated`, `final_observation`),
  so PureJaxRL stacks the same per-step info as with the gymnax it was written for.
- PureJaxRL's `wrappers.py` imports `navix` at the top for a wrapper CartPole does not
  use; when navix is not installed an empty stand-in module is registered.
- `--pjrt-nproc=N` sets XLA:CPU's thread pool (PJRT_NPROC) for the whole process
  (default 8; 0 keeps JAX's own, one thread per core). PureJaxRL initialises its
  networks with jax's orthogonal initialiser, a LAPACK QR: vmapped over seeds, each of
  its QR kernels splits its batch over that pool and blocks until the pieces finish, so
  on a 2-core machine two of them can block every pool thread and the 8-seed PureJaxRL
  run can hang (rlcore's own initialiser has no LAPACK call, see
  rlcore/nets/initializers.py). The
  default, `--pjrt-nproc=8`, leaves a thread free, at a cost: here it makes both
  contenders ~30% slower than JAX's default pool (`--pjrt-nproc=0`), and the sharded
  rlcore run 2x slower.
- brax 0.14's trainer calls `jax.device_put_replicated`, which jax 0.10 no longer exports;
  it is restored from `jax._src.api` when missing.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
import json
import os
import platform
import statistics
import sys
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from rlcore import experiment
from rlcore.agents import control, ppo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARTPOLE_CONFIG = os.path.join(ROOT, "configs", "ppo_cartpole.py")

PUREJAXRL_CONFIG = {
    "LR": 2.5e-4, "NUM_ENVS": 4, "NUM_STEPS": 128, "TOTAL_TIMESTEPS": 5e5,
    "UPDATE_EPOCHS": 4, "NUM_MINIBATCHES": 4, "GAMMA": 0.99, "GAE_LAMBDA": 0.95,
    "CLIP_EPS": 0.2, "ENT_COEF": 0.01, "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5,
    "ACTIVATION": "tanh", "ENV_NAME": "CartPole-v1", "ANNEAL_LR": True,
}


# --- shims ------------------------------------------------------------------------------------

class _FiveValueStep:
  """A gymnax >= 1.0 environment whose `step` returns PureJaxRL's five values."""

  _ADDED_INFO = ("terminated", "truncated", "final_observation")  # new in gymnax 1.0

  def __init__(self, env):
    self._env = env

  def __getattr__(self, name):
    return getattr(self._env, name)

  def reset(self, key, params=None):
    return self._env.reset(key, params)

  def step(self, key, state, action, params=None):
    out = self._env.step(key, state, action, params)
    if len(out) == 5:  # gymnax < 1.0: already PureJaxRL's convention
      return out
    obs, state, reward, terminated, truncated, info = out
    info = {k: v for k, v in info.items() if k not in self._ADDED_INFO}
    return obs, state, reward, jnp.logical_or(terminated, truncated), info


def load_purejaxrl(path):
  """Imports PureJaxRL's ppo.py from `path` with the gymnax shim installed."""
  path = os.path.abspath(os.path.expanduser(path))
  if not os.path.isfile(os.path.join(path, "ppo.py")):
    raise SystemExit(f"--purejaxrl={path}: no ppo.py there; pass the folder holding "
                     "PureJaxRL's ppo.py and wrappers.py.")
  try:
    importlib.import_module("navix")
  except ImportError:  # wrappers.py imports navix for NavixGymnaxWrapper only
    sys.modules["navix"] = types.ModuleType("navix")
  sys.path.insert(0, path)
  try:
    module = importlib.import_module("ppo")
  finally:
    sys.path.remove(path)
  if os.path.dirname(os.path.abspath(module.__file__)) != path:
    raise SystemExit(f"imported {module.__file__} instead of {path}/ppo.py")
  gymnax = module.gymnax

  def make(name, **kwargs):
    env, params = gymnax.make(name, **kwargs)
    return _FiveValueStep(env), params

  # Only PureJaxRL's module sees the shimmed `make`; gymnax itself is untouched.
  module.gymnax = types.SimpleNamespace(make=make)
  return module


def restore_device_put_replicated():
  """brax 0.14's trainer needs jax.device_put_replicated (see brax_learning.py)."""
  from brax_learning import restore_device_put_replicated as restore  # pylint: disable=import-outside-toplevel
  return restore()


# --- timing helpers ---------------------------------------------------------------------------

def block(x):
  return jax.block_until_ready(x)


def compile_timed(fn, *args, sharding=None):
  """(compiled, trace+lower seconds, compile seconds); `sharding`: of inputs and outputs."""
  t0 = time.perf_counter()
  jitted = jax.jit(fn) if sharding is None else jax.jit(fn, in_shardings=sharding,
                                                          out_shardings=sharding)
  lowered = jitted.lower(*args)
  t1 = time.perf_counter()
  compiled = lowered.compile()
  return compiled, t1 - t0, time.perf_counter() - t1


def median(xs):
  return statistics.median(xs) if xs else float("nan")


# --- part 1: CartPole, rlcore vs PureJaxRL ----------------------------------------------------

# The worker that times another revision's PPO: it answers one JSON line per command.
BASELINE_WORKER = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])   # the other revision's tree shadows this one's rlcore
import jax, numpy as np
if int(sys.argv[2]) > 1:
  jax.config.update("jax_num_cpu_devices", int(sys.argv[2]))
from rlcore.agents import ppo
assert ppo.__file__.startswith(os.path.join(os.path.abspath(sys.argv[1]), '')), ppo.__file__
for line in sys.stdin:
  cmd = json.loads(line)
  if cmd["op"] == "compile":
    c = ppo.default_config()
    c.total_timesteps = cmd["total_timesteps"]
    c.num_envs = cmd.get("num_envs", c.num_envs)
    train = ppo.make_train(c)
    keys = jax.random.split(jax.random.PRNGKey(0), cmd["seeds"])
    t0 = time.perf_counter()
    lowered = jax.jit(jax.vmap(train)).lower(keys)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    out = jax.block_until_ready(compiled(keys))
    returns = np.asarray(out[1]["episode_return"])[:, -1]
    reply = dict(lower_s=t1 - t0, compile_s=t2 - t1, first_s=time.perf_counter() - t2,
                 steps=cmd["seeds"] * train.agent.num_updates * train.agent.steps_per_update,
                 returns=[float(r) for r in returns])
  else:
    t = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    reply = dict(run_s=time.perf_counter() - t)
  print(json.dumps(reply), flush=True)
"""


class BaselineRevision:
  """Another revision's PPO in a worker process; `compile(seeds)`, then `run()` timings."""

  def __init__(self, path):
    import subprocess  # pylint: disable=import-outside-toplevel
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(os.path.join(path, "rlcore", "agents", "ppo.py")):
      raise SystemExit(f"--baseline={path}: no rlcore/agents/ppo.py there; pass a checkout "
                       "of this repository (git worktree add <dir> <commit>).")
    self.path = path
    self._proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE_WORKER, path, str(jax.device_count())],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=path)

  def _ask(self, **cmd):
    self._proc.stdin.write(json.dumps(cmd) + "\n")
    self._proc.stdin.flush()
    line = self._proc.stdout.readline()
    if not line:
      raise RuntimeError(f"the baseline worker ({self.path}) died; run it by hand to see why")
    return json.loads(line)

  def compile(self, seeds, total_timesteps, num_envs):
    return self._ask(op="compile", seeds=seeds, total_timesteps=total_timesteps,
                     num_envs=num_envs)

  def run(self):
    return self._ask(op="run")["run_s"]

  def close(self):
    self._proc.stdin.close()
    self._proc.wait()

def cartpole_configs(total_timesteps, num_envs=4):
  """rlcore's and PureJaxRL's CartPole configs at `num_envs` (other settings PureJaxRL's)."""
  config = experiment.load_config(CARTPOLE_CONFIG)
  config.total_timesteps = int(total_timesteps)
  config.num_envs = int(num_envs)
  pjr = dict(PUREJAXRL_CONFIG, TOTAL_TIMESTEPS=float(total_timesteps), NUM_ENVS=int(num_envs))
  return config, pjr


def sweep_timesteps(num_envs, quick=False):
  """Env steps per run at `num_envs`: PureJaxRL's 5e5, or 4 updates where that is more."""
  batch = num_envs * PUREJAXRL_CONFIG["NUM_STEPS"]
  return 4 * batch if quick else max(500_000, 4 * batch)


def cartpole_rows(pjr_module, seed_counts, env_counts, reps, baseline=None, quick=False):
  rows = []
  for num_envs in env_counts:
    rows += _cartpole_rows_at(pjr_module, seed_counts, num_envs,
                              sweep_timesteps(num_envs, quick), reps, baseline)
  return rows


def _cartpole_rows_at(pjr_module, seed_counts, num_envs, total_timesteps, reps, baseline):
  config, pjr_config = cartpole_configs(total_timesteps, num_envs)
  rl_train = ppo.make_train(config)
  pjr_train = pjr_module.make_train(copy.deepcopy(pjr_config))
  agent = ppo.make_agent(config)
  steps = agent.num_updates * agent.steps_per_update
  pjr_updates = int(pjr_config["TOTAL_TIMESTEPS"] // pjr_config["NUM_STEPS"]
                    // pjr_config["NUM_ENVS"])
  pjr_steps = pjr_updates * pjr_config["NUM_STEPS"] * pjr_config["NUM_ENVS"]
  rows = []
  for n in seed_counts:
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    ndev = jax.device_count()
    entries = [("rlcore", rl_train, steps, None), ("purejaxrl", pjr_train, pjr_steps, None)]
    if ndev > 1 and n % ndev == 0:
      sharding = NamedSharding(Mesh(np.array(jax.devices()), ("seeds",)), P("seeds"))
      entries.insert(1, ("rlcore_sharded", rl_train, steps, sharding))
    contenders = {}
    for name, train, per_seed, sharding in entries:
      compiled, lower_s, compile_s = compile_timed(jax.vmap(train), keys, sharding=sharding)
      call_keys = keys if sharding is None else jax.device_put(keys, sharding)
      t = time.perf_counter()
      out = block(compiled(call_keys))  # first run: its results are the learning result
      first_s = time.perf_counter() - t
      if name.startswith("rlcore"):
        returns = np.asarray(out[1]["episode_return"])[:, -1]
      else:
        returns = np.asarray(out["metrics"]["returned_episode_returns"])[:, -1].mean((1, 2))
      del out
      contenders[name] = dict(call=compiled, keys=call_keys, lower_s=lower_s,
                              compile_s=compile_s,
                              first_s=first_s, steps=n * per_seed,
                              final_return=float(returns.mean()),
                              final_return_per_seed=[float(r) for r in returns], times=[])
    if baseline is not None:
      b = baseline.compile(n, int(total_timesteps), num_envs)
      contenders["baseline"] = dict(call=None, lower_s=b["lower_s"], compile_s=b["compile_s"],
                                    first_s=b["first_s"], steps=b["steps"],
                                    final_return=float(np.mean(b["returns"])),
                                    final_return_per_seed=b["returns"], times=[])
    for _ in range(reps):  # interleaved: A, B, A, B, ...
      for c in contenders.values():
        if c["call"] is None:   # the baseline revision, in its worker
          c["times"].append(baseline.run())
          continue
        t = time.perf_counter()
        block(c["call"](c["keys"]))
        c["times"].append(time.perf_counter() - t)
    row = dict(seeds=n, envs=num_envs, total_timesteps=int(total_timesteps))
    for name, c in contenders.items():
      run_s = median(c["times"])
      row[name] = dict(lower_s=c["lower_s"], compile_s=c["compile_s"], first_run_s=c["first_s"],
                       run_s=run_s, run_s_all=c["times"], env_steps=c["steps"],
                       steps_per_s=c["steps"] / run_s,
                       best_steps_per_s=c["steps"] / min(c["times"]),
                       final_return=c["final_return"],
                       final_return_per_seed=c["final_return_per_seed"])
    row["sps_ratio"] = row["rlcore"]["steps_per_s"] / row["purejaxrl"]["steps_per_s"]
    row["best_sps_ratio"] = (row["rlcore"]["best_steps_per_s"]
                             / row["purejaxrl"]["best_steps_per_s"])
    if "baseline" in row:
      row["baseline"]["path"] = baseline.path
      row["vs_baseline_ratio"] = row["rlcore"]["steps_per_s"] / row["baseline"]["steps_per_s"]
    if "rlcore_sharded" in row:
      row["rlcore_sharded"]["devices"] = ndev
      row["sharded_sps_ratio"] = (row["rlcore_sharded"]["steps_per_s"]
                                  / row["purejaxrl"]["steps_per_s"])
    rows.append(row)
    print(f"  cartpole {num_envs} envs, {n} seed(s) done: " + ", ".join(
        f"{name} {row[name]['steps_per_s']:.0f} sps" for name in contenders), flush=True)
  return rows


def _mean_se(xs):
  xs = np.asarray(xs, float)
  se = xs.std(ddof=1) / np.sqrt(len(xs)) if len(xs) > 1 else float("nan")
  return f"{xs.mean():.1f} ± {se:.1f}" if len(xs) > 1 else f"{xs.mean():.1f}"


def print_cartpole(rows, reps):
  print(f"\nCartPole-v1, PureJaxRL settings, jit(vmap(train)) over seeds; steady state = "
        f"median of {reps} whole runs, interleaved (best: the fastest run)")
  print("| envs | seeds | env steps | impl | trace+lower s | compile s | run s | env steps/s "
        "| rlcore/PureJaxRL | best-run ratio | final return (mean ± s.e.) |")
  print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
  for r in rows:
    for name, label, ratio_key in (
        ("rlcore", "rlcore", "sps_ratio"),
        ("rlcore_sharded", f"rlcore, sharded over {r.get('rlcore_sharded', {}).get('devices')} "
                           "CPU devices", "sharded_sps_ratio"),
        ("purejaxrl", "PureJaxRL", None),
        ("baseline", f"rlcore @ {r.get('baseline', {}).get('path')}", None)):
      if name not in r:
        continue
      c = r[name]
      ratio = f"{r[ratio_key]:.2f}x" if ratio_key else ""
      best = f"{r['best_sps_ratio']:.2f}x" if name == "rlcore" else ""
      print(f"| {r['envs']} | {r['seeds']} | {c['env_steps']:,} | {label} | "
            f"{c['lower_s']:.2f} | {c['compile_s']:.2f} | {c['run_s']:.2f} | "
            f"{c['steps_per_s']:,.0f} | {ratio} | {best} | "
            f"{_mean_se(c['final_return_per_seed'])} |")
  for r in rows:
    print(f"{r['envs']} envs, {r['seeds']} seed(s), every run (s): " + "; ".join(
        f"{name} {[round(t, 2) for t in r[name]['run_s_all']]}"
        for name in ("rlcore", "rlcore_sharded", "purejaxrl", "baseline") if name in r))
    print(f"  final return per seed: rlcore {[round(x, 1) for x in r['rlcore']['final_return_per_seed']]}, "
          f"PureJaxRL {[round(x, 1) for x in r['purejaxrl']['final_return_per_seed']]}")
    if "vs_baseline_ratio" in r:
      print(f"  this revision / baseline env steps/s = {r['vs_baseline_ratio']:.3f} (medians)")


def phases_part(pjr_module, seed_counts, env_counts, reps, quick):
  """Per-phase ms per update for both contenders at every size (see _ppo_phases.py)."""
  import _ppo_phases  # pylint: disable=import-outside-toplevel
  rows = []
  for num_envs in env_counts:
    config, pjr_config = cartpole_configs(sweep_timesteps(num_envs, quick), num_envs)
    for n in seed_counts:
      rl = _ppo_phases.rlcore_phases(config, n, reps)
      pj = _ppo_phases.purejaxrl_phases(pjr_module, pjr_config, n, reps)
      rows.append(dict(envs=num_envs, seeds=n, rlcore=rl, purejaxrl=pj))
      print(f"  phases {num_envs} envs, {n} seed(s) done", flush=True)
  return rows


def print_phases(rows, reps, whole_runs=None):
  """One table per size; `whole_runs`: {(envs, seeds): (rlcore ms, PureJaxRL ms)} per
  update from the whole-run timing, printed next to the sums."""
  print(f"\nPer-phase time of one update, ms (all seeds together; median of {reps} calls "
        "of each phase jitted alone)")
  for r in rows:
    print(f"\n{r['envs']} envs x 128 steps, {r['seeds']} seed(s)")
    print("| phase | rlcore ms | PureJaxRL ms |")
    print("|---|---:|---:|")
    rl, pj = r["rlcore"], r["purejaxrl"]
    for name in rl:
      print(f"| {name} | {rl[name]:.2f} | |")
    for name in pj:
      print(f"| {name} | | {pj[name]:.2f} |")
    if whole_runs and (r["envs"], r["seeds"]) in whole_runs:
      a, b = whole_runs[(r["envs"], r["seeds"])]
      print(f"| per update in the whole-run timing | {a:.2f} | {b:.2f} |")


# --- part 2: brax inverted_pendulum, rlcore vs brax's trainer ---------------------------------

def brax_settings(quick):
  s = dict(env_name="inverted_pendulum", num_envs=32, num_steps=32, num_minibatches=4,
           update_epochs=4, epochs=8, updates_per_epoch=12, lr=3e-4, gamma=0.99,
           gae_lambda=0.95, ent_coef=1e-3, clip_eps=0.2, vf_coef=0.5, max_grad_norm=0.5,
           hidden_sizes=(64, 64), activation="tanh", episode_length=1000, eval_envs=8)
  if quick:
    s.update(epochs=3, updates_per_epoch=2, eval_envs=2)
  s["total_timesteps"] = s["epochs"] * s["updates_per_epoch"] * s["num_envs"] * s["num_steps"]
  return s


def rlcore_brax_config(s, backend):
  """configs/ppo_brax.py's config when it exists (else CartPole's), set to `s`."""
  try:
    from configs import ppo_brax  # pylint: disable=import-outside-toplevel
    config = ppo_brax.get_config(s["env_name"])
  except ImportError:
    config = experiment.load_config(CARTPOLE_CONFIG)
  config.env_name = s["env_name"]
  config.env_backend = backend
  config.max_episode_steps = s["episode_length"]
  config.normalize_obs = True
  config.anneal_lr = False  # brax's trainer keeps the learning rate constant
  for k in ("num_envs", "num_steps", "num_minibatches", "update_epochs", "total_timesteps",
            "lr", "gamma", "gae_lambda", "ent_coef", "clip_eps", "vf_coef",
            "max_grad_norm", "activation", "seed"):
    config[k] = s[k]
  config.hidden_sizes = tuple(s["hidden_sizes"])
  if "critic_hidden_sizes" in config:   # brax's trainer gets the same widths for both
    config.critic_hidden_sizes = None
    config.clip_value = False           # and clips no value loss
  if "shaping" in config:
    config.shaping.chain = ""
  return config


def epoch_stats(marks, skip):
  """Steady state from callback marks [(wall, env_steps, train_s)], after `skip` epochs.

  Returns (sps between callbacks, incl. evaluation; sps of the training epochs alone,
  median over epochs).
  """
  if len(marks) < skip + 2:
    return float("nan"), float("nan")
  (w0, s0, _), (w1, s1, _) = marks[skip], marks[-1]
  per_epoch = [(b[1] - a[1]) / b[2] for a, b in zip(marks[skip:-1], marks[skip + 1:])]
  return (s1 - s0) / (w1 - w0), median(per_epoch)


def run_rlcore_brax(s, backend):
  """rlcore PPO as a host loop over jitted epochs, evaluated like brax's trainer."""
  t_start = time.perf_counter()
  config = rlcore_brax_config(s, backend)
  agent = ppo.make_agent(config)
  # Each eval env's first episode under the deterministic policy, frozen statistics.
  evaluate = control.make_greedy_evaluator(agent, config, num_envs=s["eval_envs"],
                                           episode_length=s["episode_length"])

  def epoch(state):
    return agent.run_chunk(state, s["updates_per_epoch"])

  key = jax.random.PRNGKey(s["seed"])
  key, init_key = jax.random.split(key)
  state = block(jax.jit(agent.init)(init_key))
  marks, evals = [], []
  key, eval_key = jax.random.split(key)
  evals.append(float(evaluate(state, eval_key)))
  marks.append((time.perf_counter(), 0, 0.0))
  setup_s = marks[0][0] - t_start
  epoch_fn, lower_s, compile_s = None, 0.0, 0.0
  last_metrics = None
  for i in range(s["epochs"]):
    t = time.perf_counter()
    if epoch_fn is None:
      epoch_fn, lower_s, compile_s = compile_timed(epoch, state)
    state, metrics = epoch_fn(state)
    block(metrics)
    train_s = time.perf_counter() - t
    last_metrics = metrics
    key, eval_key = jax.random.split(key)
    evals.append(float(evaluate(state, eval_key)))
    marks.append((time.perf_counter(), (i + 1) * s["updates_per_epoch"] *
                  agent.steps_per_update, train_s))
  sps, train_sps = epoch_stats(marks, 2)
  return dict(setup_s=setup_s, lower_s=lower_s, compile_s=compile_s,
              first_epoch_s=marks[1][0] - marks[0][0], second_epoch_s=marks[2][0] - marks[1][0]
              if len(marks) > 2 else float("nan"),
              steps_per_s=sps, train_steps_per_s=train_sps, env_steps=marks[-1][1],
              final_eval_return=evals[-1], eval_returns=evals,
              final_train_return=float(last_metrics["episode_return"][-1]),
              epoch_wall_s=[b[0] - a[0] for a, b in zip(marks, marks[1:])])


def run_brax(s, backend):
  """brax.training.agents.ppo.train at the same settings, timed from progress_fn."""
  # pylint: disable=import-outside-toplevel
  from brax import envs as brax_envs
  from brax.training.agents.ppo import networks as ppo_networks
  from brax.training.agents.ppo import train as brax_ppo
  from flax import linen
  activation = {"tanh": linen.tanh, "relu": linen.relu}[s["activation"]]
  network_factory = functools.partial(
      ppo_networks.make_ppo_networks, policy_hidden_layer_sizes=tuple(s["hidden_sizes"]),
      value_hidden_layer_sizes=tuple(s["hidden_sizes"]), activation=activation)
  marks, evals, train_returns = [], [], []
  t_start = time.perf_counter()

  def progress(step, metrics):
    wall, step = time.perf_counter(), int(step)
    train_s = 0.0  # the initial evaluation's callback has no training metrics
    if "training/sps" in metrics:  # brax times the epoch alone, without the evaluation
      train_s = (step - marks[-1][1]) / float(metrics["training/sps"])
    marks.append((wall, step, train_s))
    evals.append(float(metrics["eval/episode_reward"]))

  env = brax_envs.get_environment(s["env_name"], backend=backend)
  brax_ppo.train(
      environment=env, num_timesteps=s["total_timesteps"], episode_length=s["episode_length"],
      num_envs=s["num_envs"], unroll_length=s["num_steps"],
      batch_size=s["num_envs"] // s["num_minibatches"], num_minibatches=s["num_minibatches"],
      num_updates_per_batch=s["update_epochs"], learning_rate=s["lr"],
      entropy_cost=s["ent_coef"], discounting=s["gamma"], gae_lambda=s["gae_lambda"],
      clipping_epsilon=s["clip_eps"], vf_loss_coefficient=s["vf_coef"],
      max_grad_norm=s["max_grad_norm"], normalize_observations=True, reward_scaling=1.0,
      normalize_advantage=True, bootstrap_on_timeout=True, network_factory=network_factory,
      num_evals=s["epochs"] + 1, num_eval_envs=s["eval_envs"], deterministic_eval=True,
      seed=s["seed"], progress_fn=progress,
      max_devices_per_host=1)  # one device, as rlcore's brax run; not --cpu-devices
  if len(marks) != s["epochs"] + 1:
    raise RuntimeError(f"brax called progress_fn {len(marks)} times, expected "
                       f"{s['epochs'] + 1}")
  sps, train_sps = epoch_stats(marks, 2)
  return dict(setup_s=marks[0][0] - t_start, first_epoch_s=marks[1][0] - marks[0][0],
              second_epoch_s=marks[2][0] - marks[1][0] if len(marks) > 2 else float("nan"),
              steps_per_s=sps, train_steps_per_s=train_sps, env_steps=marks[-1][1],
              final_eval_return=evals[-1], eval_returns=evals,
              epoch_wall_s=[b[0] - a[0] for a, b in zip(marks, marks[1:])])


def brax_part(quick, rounds, backend):
  s = brax_settings(quick)
  results = {"rlcore": [], "brax": []}
  for r in range(rounds):  # alternate: rlcore, brax, rlcore, brax, ...
    for name, fn in (("rlcore", run_rlcore_brax), ("brax", run_brax)):
      results[name].append(fn(dict(s, seed=r), backend))  # round r trains seed r
      x = results[name][-1]
      print(f"  brax round {r + 1}/{rounds} {name}: {x['steps_per_s']:.0f} sps "
            f"(training alone {x['train_steps_per_s']:.0f}), eval return "
            f"{x['final_eval_return']:.1f}", flush=True)
  summary = dict(settings=dict(s, backend=backend), rounds=results)
  for name, runs in results.items():
    summary[name] = {k: median([run[k] for run in runs]) for k in
                     ("setup_s", "first_epoch_s", "second_epoch_s", "steps_per_s",
                      "train_steps_per_s")}
    summary[name]["final_eval_return"] = float(np.mean([run["final_eval_return"]
                                                        for run in runs]))
    if name == "rlcore":
      for k in ("lower_s", "compile_s"):
        summary[name][k] = median([run[k] for run in runs])
  summary["sps_ratio"] = summary["rlcore"]["steps_per_s"] / summary["brax"]["steps_per_s"]
  summary["train_sps_ratio"] = (summary["rlcore"]["train_steps_per_s"]
                                / summary["brax"]["train_steps_per_s"])
  return summary


def print_brax(b):
  s = b["settings"]
  print(f"\nbrax {s['env_name']} (backend {s['backend']}): {s['num_envs']} envs x "
        f"{s['num_steps']} steps, {s['update_epochs']} epochs x {s['num_minibatches']} "
        f"minibatches, {s['total_timesteps']} steps in {s['epochs']} epochs of "
        f"{s['updates_per_epoch']} updates, MLP {tuple(s['hidden_sizes'])} {s['activation']}, "
        f"lr {s['lr']}, gamma {s['gamma']}, lambda {s['gae_lambda']}, entropy {s['ent_coef']}, "
        f"normalised observations; eval: {s['eval_envs']} envs, deterministic, "
        f"{s['episode_length']} steps; timings: medians over {len(b['rounds']['brax'])} "
        "alternating run(s), seed = run index; final eval return: mean over the runs")
  print("| impl | setup + first eval s | epoch 1 s (compile) | epoch 2 s | steady env steps/s "
        "| rlcore/brax | training-only steps/s | rlcore/brax | final eval return |")
  print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
  for name in ("rlcore", "brax"):
    c = b[name]
    r1 = f"{b['sps_ratio']:.2f}x" if name == "rlcore" else ""
    r2 = f"{b['train_sps_ratio']:.2f}x" if name == "rlcore" else ""
    print(f"| {name} | {c['setup_s']:.1f} | {c['first_epoch_s']:.1f} | "
          f"{c['second_epoch_s']:.1f} | {c['steps_per_s']:,.0f} | {r1} | "
          f"{c['train_steps_per_s']:,.0f} | {r2} | {c['final_eval_return']:.1f} |")
  rc = b["rlcore"]
  print(f"rlcore epoch: trace+lower {rc['lower_s']:.2f} s, compile {rc['compile_s']:.2f} s "
        "(inside epoch 1)")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--purejaxrl", default=None,
                      help="folder with PureJaxRL's ppo.py and wrappers.py (CartPole part)")
  parser.add_argument("--part", choices=("all", "cartpole", "phases", "brax"),
                      default="all", help="all: cartpole, phases and brax")
  parser.add_argument("--envs", default="4",
                      help="comma-separated env counts for the CartPole and phases parts "
                           "(e.g. 4,64,512,2048); runs last 5e5 env steps, or 4 updates "
                           "where that is more")
  parser.add_argument("--quick", action="store_true", help="smoke test: a few updates")
  parser.add_argument("--reps", type=int, default=None,
                      help="timed whole runs per CartPole contender")
  parser.add_argument("--brax-rounds", type=int, default=None,
                      help="alternating brax/rlcore runs per contender")
  parser.add_argument("--seeds", default="1,8",
                      help="comma-separated numbers of vmapped seeds (CartPole part)")
  parser.add_argument("--brax-backend", default=None,
                      help="brax physics backend for both contenders; default: rlcore's "
                           "rlcore.envs.brax_envs.DEFAULT_BACKEND")
  parser.add_argument("--baseline", default=None,
                      help="a checkout of another revision: its PPO joins the CartPole "
                           "round-robin (before/after comparison)")
  parser.add_argument("--json", default=None, help="also write every number here")
  parser.add_argument("--cpu-devices", type=int, default=os.cpu_count() or 1,
                      help="CPU devices to expose (default: one per core); with more than "
                           "one, rlcore also runs with its seeds sharded over them")
  parser.add_argument("--pjrt-nproc", type=int, default=8,
                      help="XLA:CPU thread pool size (PJRT_NPROC); 0: JAX's default (one "
                           "thread per core; PureJaxRL's vmapped run can hang with it)")
  args = parser.parse_args()
  # Both are read when the CPU backend starts, so they are set before any jax call.
  if args.pjrt_nproc:
    os.environ["PJRT_NPROC"] = str(args.pjrt_nproc)
  if args.cpu_devices > 1:
    jax.config.update("jax_num_cpu_devices", args.cpu_devices)
  reps = args.reps or (2 if args.quick else 3)
  rounds = args.brax_rounds or (1 if args.quick else 2)

  device = jax.devices()[0]
  import brax  # pylint: disable=import-outside-toplevel
  from importlib import metadata  # pylint: disable=import-outside-toplevel
  header = (f"jax {jax.__version__}, backend {jax.default_backend()}, device "
            f"{getattr(device, 'device_kind', device)}, {len(jax.devices())} device(s), "
            f"{os.cpu_count()} cpu(s), PJRT_NPROC {os.environ.get('PJRT_NPROC', 'default')}, "
            f"python {platform.python_version()}, brax "
            f"{brax.__version__}, gymnax {metadata.version('gymnax')}")
  print(header, flush=True)
  out = dict(jax=jax.__version__, backend=jax.default_backend(),
             device=str(getattr(device, "device_kind", device)), cpus=os.cpu_count(),
             python=platform.python_version(), brax_version=brax.__version__,
             gymnax_version=metadata.version("gymnax"), quick=args.quick,
             num_devices=len(jax.devices()), pjrt_nproc=os.environ.get("PJRT_NPROC"),
             shims=[])

  env_counts = tuple(int(n) for n in args.envs.split(","))
  seeds = tuple(int(n) for n in args.seeds.split(","))
  if args.part in ("all", "cartpole", "phases"):
    if args.purejaxrl is None:
      parser.error("--purejaxrl=PATH is needed for the CartPole and phases parts (or "
                   "--part=brax)")
    pjr = load_purejaxrl(args.purejaxrl)
    out["shims"] += ["gymnax step: 6 -> 5 values (done = terminated | truncated)"]
    if sys.modules["navix"].__spec__ is None:
      out["shims"].append("navix: empty stand-in module")
  whole_runs = {}
  if args.part in ("all", "cartpole"):
    baseline = BaselineRevision(args.baseline) if args.baseline else None
    rows = cartpole_rows(pjr, seeds, env_counts, reps, baseline, args.quick)
    if baseline is not None:
      baseline.close()
    print_cartpole(rows, reps)
    out["cartpole"] = dict(reps=reps, rows=rows)
    for r in rows:
      per_update = lambda c: c["run_s"] / (c["env_steps"] / (r["envs"] * 128)) * 1e3 * r["seeds"]
      whole_runs[(r["envs"], r["seeds"])] = (per_update(r["rlcore"]), per_update(r["purejaxrl"]))

  if args.part in ("all", "phases"):
    phase_rows = phases_part(pjr, seeds, env_counts, reps, args.quick)
    print_phases(phase_rows, reps, whole_runs)
    out["phases"] = dict(reps=reps, rows=phase_rows)

  if args.part in ("all", "brax"):
    if restore_device_put_replicated():
      out["shims"].append("jax.device_put_replicated restored from jax._src.api")
    try:
      rl_brax = importlib.import_module("rlcore.envs.brax_envs")
    except ImportError as e:
      print(f"\nbrax part skipped: rlcore's brax environments are missing ({e}).")
      out["brax"] = dict(skipped=str(e))
    else:
      b = brax_part(args.quick, rounds, args.brax_backend or rl_brax.DEFAULT_BACKEND)
      print_brax(b)
      out["brax"] = b

  if args.json:
    with open(args.json, "w") as f:
      json.dump(out, f, indent=1)


if __name__ == "__main__":
  main()
