"""BARFI end to end: rlcore's agent against the official PyTorch code, episodes per second.

Task: CartPole with the misleading PD heuristic (`CartPoleBadAuxDebug`), BARFI Neumann
at the official CartPole settings (RMSprop, actor / reward / discount lr 1e-3, entropy
0.25, reward_L2 0, gamma_L2 0.25, K = 5, alpha = 5e-4, delta 3, inner_mul 5,
first_mul 150, hess_mul 15, batch 1), `--episodes` episodes per seed (default 999, the
official 1000 less the last episode, which is never followed by an update). Episodes
per second count every episode of the run, including the outer and inner updates.
The official buffer holds 10000 episodes, ours `--episodes`: neither wraps.

* rlcore: `jax.jit(jax.vmap(run))` over the seeds, in this process, compile timed apart
  (AOT lower + compile); with `--cpu-devices=N` the seeds are split over N CPU devices
  (`jax.pmap` of the vmapped run), as `experiments/main.py --cpu_devices=N` does.
* official: `Dhawgupta/gupta2023behavior`'s `barfi-cp` (no licence: run from a local
  checkout, never copied), one seed per process as its own scripts run it, through
  `benchmarks/_barfi_official_driver.py` in the interpreter given by
  `--official-python` (a venv with torch, gym 0.25 and matplotlib). For S seeds it runs
  `--official-procs` processes at a time (default: one per core); its S-seed rate is
  measured on `--official-seeds` seeds (default: as many as processes) and, since its
  seeds are independent processes, is the same for any S beyond that.

Contenders are interleaved (rlcore 1 seed, official 1 seed, rlcore S seeds, official
parallel seeds) for `--reps` rounds; the table reports medians.

    python benchmarks/barfi.py --official=/path/to/gupta2023behavior \
        --official-python=/path/to/venv/bin/python
    python benchmarks/barfi.py --official=... --episodes=99 --reps=1    # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def parse():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official", default="", help="checkout of Dhawgupta/gupta2023behavior "
                 "(the folder holding barfi-cp/); empty: rlcore only")
  p.add_argument("--official-python", default=sys.executable,
                 help="python with the official code's dependencies")
  p.add_argument("--episodes", type=int, default=999)
  p.add_argument("--seeds", type=int, nargs="+", default=[1, 20])
  p.add_argument("--reps", type=int, default=2)
  p.add_argument("--official-procs", type=int, default=os.cpu_count() or 1)
  p.add_argument("--official-seeds", type=int, default=0,
                 help="seeds timed for the official multi-seed rate (0: --official-procs)")
  p.add_argument("--cpu-devices", type=int, default=1)
  p.add_argument("--json", default="", help="write the results here")
  return p.parse_args()


ARGS = parse()
if ARGS.cpu_devices > 1:
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             f" --xla_force_host_platform_device_count={ARGS.cpu_devices}")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from rlcore.agents import barfi  # noqa: E402


def rlcore_runner(seeds: int):
  """(compile seconds, run() -> (seconds, mean return of the last 10% of episodes))."""
  c = barfi.default_config()
  c.task, c.aux, c.outer, c.reward = "cartpole", "misleading", "neumann", "aligned"
  c.episodes, c.buffer_size = ARGS.episodes, ARGS.episodes
  c.actor_lr = c.reward_lr = c.gamma_lr = 1e-3
  c.gamma_l2, c.reward_l2 = 0.25, 0.0
  agent = barfi.make_agent(c)
  devices = ARGS.cpu_devices if seeds % ARGS.cpu_devices == 0 else 1
  run = jax.vmap(lambda k: agent.run_chunk(agent.init(k), agent.num_updates)[1]
                 ["episode_return"])
  keys = jax.random.split(jax.random.PRNGKey(0), seeds)
  t = time.perf_counter()
  if devices > 1:
    keys = keys.reshape(devices, seeds // devices, -1)
    compiled = jax.pmap(run).lower(keys).compile()
  else:
    compiled = jax.jit(run).lower(keys).compile()
  compile_s = time.perf_counter() - t
  rep = [0]

  def go():
    rep[0] += 1
    k = jax.random.split(jax.random.PRNGKey(rep[0]), seeds).reshape(keys.shape)
    t = time.perf_counter()
    returns = np.asarray(jax.block_until_ready(compiled(k))).reshape(seeds, -1)
    return time.perf_counter() - t, float(returns[:, -returns.shape[1] // 10:].mean())

  return compile_s, go


def official_run(workdir: str, seeds: list[int]) -> tuple[float, float]:
  """Runs `seeds` of the official code in parallel processes; (wall seconds, return)."""
  driver = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "_barfi_official_driver.py")
  t = time.perf_counter()
  procs = [subprocess.Popen(
      [ARGS.official_python, driver, "BarfiNeumann", str(s), str(ARGS.episodes), "{}"],
      cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
      for s in seeds]
  finals = []
  for p in procs:
    _, err = p.communicate()
    line = [l for l in err.splitlines() if l.startswith("OFFICIAL_RESULT ")]
    if p.returncode or not line:
      raise RuntimeError(f"official run failed (exit {p.returncode}):\n{err[-3000:]}")
    returns = json.loads(line[-1].split(" ", 1)[1])["returns"]
    finals.append(float(np.mean(returns[-len(returns) // 10:])))
  return time.perf_counter() - t, float(np.mean(finals))


def main():
  print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {len(jax.devices())} device(s), "
        f"{os.cpu_count()} cores; {ARGS.episodes} episodes per seed")
  ours = {s: rlcore_runner(s) for s in ARGS.seeds}
  workdir = None
  if ARGS.official:
    src = os.path.join(ARGS.official, "barfi-cp")
    workdir = tempfile.mkdtemp(prefix="barfi_official_")
    shutil.copytree(src, os.path.join(workdir, "barfi-cp"), ignore=shutil.ignore_patterns(
        ".git", "experiments", "analysis", "notebooks"))
    os.makedirs(os.path.join(workdir, "barfi-cp", "analysis"), exist_ok=True)
    shutil.copy(os.path.join(src, "analysis", "utils.py"),
                os.path.join(workdir, "barfi-cp", "analysis", "utils.py"))
    workdir = os.path.join(workdir, "barfi-cp")
  n_par = ARGS.official_seeds or ARGS.official_procs
  rows = {("rlcore", s): [] for s in ARGS.seeds}
  rows.update({("official", 1): [], ("official", n_par): []} if workdir else {})
  for rep in range(ARGS.reps):
    for s in ARGS.seeds:
      rows[("rlcore", s)].append(ours[s][1]())
      print(f"rep {rep} rlcore {s} seed(s): {rows[('rlcore', s)][-1][0]:.1f} s", flush=True)
      if workdir and s == 1:
        rows[("official", 1)].append(official_run(workdir, [1 + rep]))
        print(f"rep {rep} official 1 seed: {rows[('official', 1)][-1][0]:.1f} s", flush=True)
    if workdir:
      seeds = [100 + rep * n_par + i for i in range(n_par)]
      rows[("official", n_par)].append(official_run(workdir, seeds))
      print(f"rep {rep} official {n_par} seeds in parallel: "
            f"{rows[('official', n_par)][-1][0]:.1f} s", flush=True)

  def rate(kind, s):
    secs = np.median([r[0] for r in rows[(kind, s)]])
    return s * ARGS.episodes / secs, secs, np.mean([r[1] for r in rows[(kind, s)]])

  results = []
  print("\n| seeds | rlcore episodes/s | official episodes/s | ratio | rlcore compile s | "
        "rlcore run s | official run s | final return rlcore / official |")
  print("|---:|---:|---:|---:|---:|---:|---:|---|")
  for s in ARGS.seeds:
    ours_rate, ours_s, ours_ret = rate("rlcore", s)
    off = None
    if workdir:
      # One process per seed: the official rate for s > 1 seeds is that of `n_par`
      # processes in parallel (s / n_par rounds of them).
      off = rate("official", 1 if s == 1 else n_par)
      off_rate = off[0]
    row = dict(seeds=s, rlcore_eps=ours_rate, rlcore_run_s=ours_s, compile_s=ours[s][0],
               rlcore_final=ours_ret)
    if off:
      row.update(official_eps=off_rate, official_run_s=off[1], official_final=off[2],
                 ratio=ours_rate / off_rate)
    results.append(row)
    print(f"| {s} | {ours_rate:.1f} | {row.get('official_eps', float('nan')):.2f} | "
          f"{row.get('ratio', float('nan')):.1f}x | {ours[s][0]:.1f} | {ours_s:.1f} | "
          f"{row.get('official_run_s', float('nan')):.1f} | {ours_ret:.0f} / "
          f"{row.get('official_final', float('nan')):.0f} |")
  if ARGS.json:
    with open(ARGS.json, "w") as f:
      json.dump(dict(episodes=ARGS.episodes, official_parallel=n_par, rows=results), f,
                indent=1)


if __name__ == "__main__":
  main()
