"""brax tasks: rlcore's PPO against brax's own trainer at brax's published settings.

For each task and seed, both trainers run at the settings of `configs/ppo_brax.py`
(brax's training notebook, `BRAX_SETTINGS`; hopper, for which brax publishes no PPO
settings, at inverted_double_pendulum's with its own budget, the config's
`UNPUBLISHED`), on the same backend and the same env-step budget, and both are
evaluated the same way after each of brax's evaluation epochs: 128 environments, one
episode each of at most `episode_length` steps, deterministic policy (the Gaussian's
mean here, brax's `deterministic_eval=True`, i.e. tanh of its mean), mean return. The
trainers alternate (rlcore seed 0, brax seed 0, rlcore seed 1, ...), one device each.

* rlcore: `ppo.make_agent(config)`, one `run_chunk` of an epoch's updates compiled ahead
  of time (its compile time is measured alone), `control.make_greedy_evaluator` after
  each epoch.
* brax: `brax.training.agents.ppo.train(environment=brax.envs.get_environment(task,
  backend=...), **BRAX_SETTINGS[task], deterministic_eval=True, seed=seed)`, timed from
  its progress callbacks; brax times each training epoch without the evaluation
  (`training/sps`), and its first two epochs each include a compile, so its compile
  time is their time less two steady epochs'.

Tasks with an action repeat (reacher: 4) count env steps as brax does, repeats
included; rlcore's config counts agent steps (configs/ppo_brax.py).

Reported per run: the evaluation returns against env steps, the final return, steady
env steps per second of the training epochs after the first two (brax compiles its
epoch in both; evaluations excluded) and the compile time. Per task: mean ± standard error of the final returns over the
seeds and every per-seed value, median steps per second, one PNG of both trainers'
curves (mean and each seed).

    python benchmarks/brax_learning.py --tasks=inverted_pendulum --seeds=0,1,2 \\
        --json=runs/brax_ip.json --plot-dir=results
    python benchmarks/brax_learning.py --tasks=inverted_pendulum --num-timesteps=4e5 \\
        --seeds=0                                       # a short run of both
    python benchmarks/brax_learning.py --report=runs/a.json,runs/b.json --plot-dir=results
    python benchmarks/brax_learning.py --trainers=rlcore --seeds=0 \\
        --rlcore-set=log_std_init=-0.69                 # an ablation, "rlcore[...]"
    python benchmarks/brax_learning.py --part=speed --tasks=inverted_pendulum \\
        --backends=spring,positional,generalized,mjx   # steps/s per backend, 1 seed

`--part=speed` runs three evaluation epochs of a few updates per trainer and backend
(`--speed-updates`, default 2 per epoch): steady steps per second of the third epoch and
the compile time, no learning claim.

brax 0.14's trainer calls `jax.device_put_replicated`, which jax 0.10 no longer exports;
it is restored from `jax._src.api` when missing (`restore_device_put_replicated`).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import json
import math
import os
import platform
import sys
import textwrap
import time
from statistics import median

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlcore import experiment  # pylint: disable=wrong-import-position
from rlcore.agents import control, ppo  # pylint: disable=wrong-import-position

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "configs", "ppo_brax.py")
EVAL_ENVS = 128
TRAINERS = ("rlcore", "brax")
# rlcore's per-update metrics kept per epoch in a run's JSON (`train_metrics`).
TRAIN_METRICS = ("episode_return", "entropy", "approx_kl", "value_loss")


def restore_device_put_replicated():
  """brax 0.14's PPO trainer calls jax.device_put_replicated, gone from jax 0.10."""
  if not hasattr(jax, "device_put_replicated"):
    from jax._src import api  # pylint: disable=import-outside-toplevel
    jax.device_put_replicated = api.device_put_replicated
    return True
  return False


def brax_config_module():
  """configs/ppo_brax.py as a module (its BRAX_SETTINGS and brax_schedule)."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location("rlcore_config_ppo_brax", CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def config_arg(task, backend, num_timesteps=None, num_evals=None):
  arg = f"env={task},backend={backend}"
  arg += f",num_timesteps={int(num_timesteps)}" if num_timesteps else ""
  return arg + (f",num_evals={int(num_evals)}" if num_evals else "")


def run_rlcore(task, backend, seed, num_timesteps=None, num_evals=None, overrides=None):
  """rlcore's PPO at configs/ppo_brax.py's settings, evaluated after every epoch.
  `overrides`: {dotted config key: value} set on top (an ablation)."""
  t_start = time.perf_counter()
  config = experiment.load_config(CONFIG, config_arg(task, backend, num_timesteps,
                                                     num_evals))
  if overrides:
    unknown = sorted(set(overrides) - set(experiment.flat_keys(config)))
    if unknown:
      raise ValueError(f"--rlcore-set: unknown config keys {unknown}")
    config = experiment.override(config, overrides)
  agent = ppo.make_agent(config)
  per_epoch = int(config.chunk_updates)
  epochs = agent.num_updates // per_epoch
  # Env steps, as brax counts them: an agent step is action_repeat physics steps.
  epoch_steps = per_epoch * agent.steps_per_update * int(config.action_repeat)
  evaluate = control.make_greedy_evaluator(agent, config, num_envs=EVAL_ENVS)
  key = jax.random.PRNGKey(seed)
  key, init_key, eval_key = jax.random.split(key, 3)
  state = jax.block_until_ready(jax.jit(agent.init)(init_key))
  print(f"    [rlcore {task} seed {seed}] compiling ...", flush=True)
  t = time.perf_counter()
  chunk = jax.jit(agent.run_chunk, static_argnums=1, donate_argnums=0).lower(
      state, per_epoch).compile()
  compile_s = time.perf_counter() - t
  steps, returns, train_s = [0], [float(evaluate(state, eval_key))], []
  # Per epoch, the mean over its updates of each TRAIN_METRICS key (a diagnosis aid:
  # the policy's entropy tracks its state-independent std).
  train = {k: [] for k in TRAIN_METRICS}
  setup_s = time.perf_counter() - t_start - compile_s
  for i in range(epochs):
    t = time.perf_counter()
    state, metrics = chunk(state)
    jax.block_until_ready(metrics)
    train_s.append(time.perf_counter() - t)
    for k in TRAIN_METRICS:
      train[k].append(float(np.nanmean(np.asarray(metrics[k]))))
    key, eval_key = jax.random.split(key)
    steps.append((i + 1) * epoch_steps)
    returns.append(float(evaluate(state, eval_key)))
    _progress("rlcore", task, seed, steps[-1], returns[-1], train_s[-1])
  label = "rlcore" + (f"[{','.join(f'{k}={v}' for k, v in overrides.items())}]"
                      if overrides else "")
  return dict(trainer=label, task=task, backend=backend, seed=seed, env_steps=steps,
              overrides=overrides or {},
              eval_returns=returns, final_return=returns[-1], compile_s=compile_s,
              steady_sps=steady_sps(train_s, epoch_steps), setup_s=setup_s,
              epoch_s=train_s, wall_s=time.perf_counter() - t_start,
              final_train_return=float(np.asarray(metrics["episode_return"])[-1]),
              train_metrics=train)


def run_brax(task, backend, seed, num_timesteps=None, num_evals=None):
  """brax.training.agents.ppo.train at the published settings, timed from progress_fn."""
  # pylint: disable=import-outside-toplevel
  restore_device_put_replicated()
  with contextlib.redirect_stdout(sys.stderr):   # mujoco's "Failed to import warp"
    from brax import envs as brax_envs
  from brax.training.agents.ppo import train as brax_ppo
  settings = dict(brax_config_module().BRAX_SETTINGS[task])
  if num_timesteps:
    settings["num_timesteps"] = int(num_timesteps)
  if num_evals:
    settings["num_evals"] = int(num_evals)
  steps, returns, train_s = [], [], []
  # Per epoch, brax's losses of its last training step (what its progress_fn gets),
  # as rlcore's TRAIN_METRICS: entropy = -entropy_loss / entropy_cost, value_loss =
  # v_loss / vf_loss_coefficient (both halve the squared error).
  train = {"entropy": [], "value_loss": []}
  t_start = time.perf_counter()

  def progress(step, metrics):
    step = int(step)
    if "training/sps" in metrics:   # brax times the epoch alone, without the evaluation
      train_s.append((step - steps[-1]) / float(metrics["training/sps"]))
      _progress("brax", task, seed, step, float(metrics["eval/episode_reward"]), train_s[-1])
      if "training/entropy_loss" in metrics:
        train["entropy"].append(-float(metrics["training/entropy_loss"])
                                / settings["entropy_cost"])
        train["value_loss"].append(float(metrics["training/v_loss"])
                                   / brax_config_module().BRAX_DEFAULTS["vf_loss_coefficient"])
    steps.append(step)
    returns.append(float(metrics["eval/episode_reward"]))

  env = brax_envs.get_environment(task, backend=backend)
  brax_ppo.train(environment=env, **settings, num_eval_envs=EVAL_ENVS,
                 deterministic_eval=True, seed=seed, progress_fn=progress,
                 max_devices_per_host=1)
  epoch_steps = steps[1] - steps[0]
  sps = steady_sps(train_s, epoch_steps)
  # brax's first and second training epochs each hold a compile (measured: see
  # SKIP_EPOCHS; the cause inside brax's trainer was not looked into).
  compiled = train_s[:SKIP_EPOCHS]
  return dict(trainer="brax", task=task, backend=backend, seed=seed, env_steps=steps,
              eval_returns=returns, final_return=returns[-1],
              compile_s=sum(compiled) - len(compiled) * epoch_steps / sps, steady_sps=sps,
              epoch_s=train_s, wall_s=time.perf_counter() - t_start, train_metrics=train)


RUNNERS = {"rlcore": run_rlcore, "brax": run_brax}
# Epochs left out of the steady speed, for both trainers: brax's first two training
# epochs each compile (inverted_pendulum, generalized: 23.8 and 24.3 s, then 14-16 s).
SKIP_EPOCHS = 2


def steady_sps(epoch_s, epoch_steps):
  """Env steps per second of the epochs after the first SKIP_EPOCHS (all if too few)."""
  steady = epoch_s[SKIP_EPOCHS:] or epoch_s[-1:]
  return epoch_steps * len(steady) / sum(steady)


def _progress(trainer, task, seed, step, ret, train_s):
  print(f"    [{trainer} {task} seed {seed}] {step:,} steps: eval return {ret:.1f} "
        f"(epoch {train_s:.1f} s)", flush=True)


def mean_se(xs):
  xs = np.asarray(xs, float)
  se = xs.std(ddof=1) / math.sqrt(len(xs)) if len(xs) > 1 else float("nan")
  return float(xs.mean()), float(se)


def summarise(runs):
  """{"task/backend": {trainer: summary}} from a list of run dicts."""
  groups = {}
  for r in runs:
    key = f"{r['task']}/{r['backend']}"
    groups.setdefault(key, {}).setdefault(r["trainer"], []).append(r)
  table = {}
  for key, by_trainer in groups.items():
    for trainer, rs in by_trainer.items():
      m, se = mean_se([r["final_return"] for r in rs])
      table.setdefault(key, {})[trainer] = dict(
          final_mean=m, final_se=se,
          per_seed={str(r["seed"]): r["final_return"] for r in rs},
          steady_sps=median(r["steady_sps"] for r in rs),
          compile_s=median(r["compile_s"] for r in rs),
          env_steps=rs[0]["env_steps"][-1], wall_s=median(r["wall_s"] for r in rs))
  return table


def print_table(table):
  print("| task | backend | trainer | env steps | final eval return (mean ± s.e.) | per seed "
        "| steady env steps/s | rlcore/brax | compile s |")
  print("|---|---|---|---:|---:|---|---:|---:|---:|")
  for key, by in table.items():
    task, backend = key.split("/")
    for trainer in _ordered(by):
      c = by[trainer]
      ratio = ""
      if trainer.startswith("rlcore") and "brax" in by:
        ratio = f"{c['steady_sps'] / by['brax']['steady_sps']:.2f}x"
      seeds = ", ".join(f"{s}: {v:.1f}" for s, v in sorted(c["per_seed"].items()))
      print(f"| {task} | {backend} | {trainer} | {c['env_steps']:,} | "
            f"{c['final_mean']:.1f} ± {c['final_se']:.1f} | {seeds} | "
            f"{c['steady_sps']:,.0f} | {ratio} | {c['compile_s']:.1f} |")


def _ordered(trainers):
  """rlcore, brax, then ablations (rlcore[key=value]) by name."""
  return sorted(trainers, key=lambda t: (TRAINERS.index(t) if t in TRAINERS else 2, t))


def plot(runs, plot_dir):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  paths = []
  for task in sorted({r["task"] for r in runs}):
    fig, ax = plt.subplots(figsize=(6, 4))
    here = [r for r in runs if r["task"] == task]
    for i, trainer in enumerate(_ordered({r["trainer"] for r in here})):
      colour = {"rlcore": "tab:blue", "brax": "tab:orange"}.get(trainer, f"C{i + 2}")
      rs = [r for r in here if r["trainer"] == trainer]
      for r in rs:
        ax.plot(r["env_steps"], r["eval_returns"], color=colour, alpha=0.3, lw=0.8)
      n = min(len(r["env_steps"]) for r in rs)
      mean = np.mean([r["eval_returns"][:n] for r in rs], 0)
      # An ablation's name lists its keys: wrap it so the legend stays inside the axes.
      ax.plot(rs[0]["env_steps"][:n], mean, color=colour, lw=2,
              label=textwrap.fill(f"{trainer} (mean of {len(rs)} seeds)".replace(",", ", "), 40))
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return (deterministic policy, 128 episodes)")
    ax.set_title(f"{task} ({runs[0]['backend']} backend)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = os.path.join(plot_dir, f"brax_{task}.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
  return paths


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--part", choices=("learning", "speed"), default="learning")
  parser.add_argument("--tasks", default="inverted_pendulum")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--backend", default=None,
                      help="learning part: one backend (default: configs/ppo_brax.py's "
                           "default_backend(task))")
  parser.add_argument("--backends", default="spring,positional,generalized,mjx",
                      help="speed part: backends to time")
  parser.add_argument("--trainers", default="rlcore,brax")
  parser.add_argument("--num-timesteps", type=float, default=None,
                      help="override brax's published num_timesteps (both trainers)")
  parser.add_argument("--num-evals", type=int, default=None,
                      help="override brax's published num_evals (both trainers; epochs = "
                           "num_evals - 1)")
  parser.add_argument("--rlcore-set", default="",
                      help="ablation: comma-separated KEY=VALUE set on rlcore's config "
                           "(values as Python literals), e.g. log_std_init=-0.69")
  parser.add_argument("--speed-updates", type=int, default=2,
                      help="speed part: updates per evaluation epoch")
  parser.add_argument("--json", default=None, help="write every run here")
  parser.add_argument("--plot-dir", default=None, help="write brax_<task>.png here")
  parser.add_argument("--report", default=None,
                      help="comma-separated --json files of earlier runs: print their table "
                           "and plot them together (no training)")
  args = parser.parse_args()
  if args.report:
    runs = [r for path in args.report.split(",") for r in json.load(open(path))["runs"]]
    print_table(summarise(runs))
    if args.plot_dir:
      for p in plot(runs, args.plot_dir):
        print("wrote", p)
    return
  module = brax_config_module()
  tasks = [t for t in args.tasks.split(",") if t]
  trainers = [t for t in args.trainers.split(",") if t]
  for t in trainers:
    if t not in RUNNERS:
      parser.error(f"--trainers: unknown {t!r}; allowed: {', '.join(RUNNERS)}")
  seeds = [int(s) for s in args.seeds.split(",") if s]
  overrides = {}
  for item in filter(None, args.rlcore_set.split(",")):
    key, sep, value = item.partition("=")
    if not sep:
      parser.error(f"--rlcore-set: expected KEY=VALUE, got {item!r}")
    try:
      overrides[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      overrides[key] = value
  runners = dict(RUNNERS, rlcore=functools.partial(run_rlcore, overrides=overrides))
  with contextlib.redirect_stdout(sys.stderr):   # mujoco's "Failed to import warp"
    import brax  # pylint: disable=import-outside-toplevel
  print(f"# {platform.node()}, {jax.devices()[0].device_kind}, jax {jax.__version__}, "
        f"brax {brax.__version__}, {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
  runs = []

  def save():
    if args.json:   # after every run, so an interrupted sweep keeps what it finished
      with open(args.json, "w") as f:
        json.dump(dict(runs=runs, table=summarise(runs), argv=sys.argv), f, indent=1)

  if args.part == "learning":
    for task in tasks:
      backend = args.backend or module.default_backend(task)
      for seed in seeds:
        for trainer in trainers:
          r = runners[trainer](task, backend, seed, args.num_timesteps, args.num_evals)
          runs.append(r)
          save()
          print(f"  {task} {trainer} seed {seed}: final {r['final_return']:.1f}, "
                f"{r['steady_sps']:,.0f} steps/s, compile {r['compile_s']:.1f} s, "
                f"wall {r['wall_s']:.0f} s; curve "
                + " ".join(f"{x:.0f}" for x in r["eval_returns"]), flush=True)
  else:
    for task in tasks:
      s = module.BRAX_SETTINGS[task]
      batch = (s["batch_size"] * s["num_minibatches"] * s["unroll_length"]
               * s["action_repeat"])
      for backend in args.backends.split(","):
        for trainer in trainers:
          # Three epochs (num_evals 4): brax compiles in the first two, the third is steady.
          r = runners[trainer](task, backend, seeds[0], args.speed_updates * batch * 3, 4)
          runs.append(r)
          save()
          print(f"  {task} {backend} {trainer}: {r['steady_sps']:,.0f} steps/s, compile "
                f"{r['compile_s']:.1f} s", flush=True)
  table = summarise(runs)
  print()
  print_table(table)
  if args.plot_dir and args.part == "learning":
    for p in plot(runs, args.plot_dir):
      print("wrote", p)


if __name__ == "__main__":
  main()
