"""The runner's one loop: plan -> init (or resume) -> chunks -> evaluation, summary, plot.

Every agent of the `rlcore.agents.Agent` protocol runs through `run_group`:

1. the agent and an executor for the group's R = points x num_seeds runs
   (`rlcore.experiment.execution`: one vmapped call, or one run at a time);
2. the runs' states from `init`, or from the newest checkpoint of the group;
3. chunks of `chunk_updates` updates; after each, the records go to
   `metrics.jsonl`, the states to an orbax checkpoint (with the config and the
   number of updates done) and the progress bar moves;
4. the agent's optional `evaluate` on every run, then `summary.json`, one file per
   point under `points/` (all written atomically) and `curve.png`.

Rerun with the same workdir, a group resumes from its last checkpoint and reaches
bit-for-bit the state of an uninterrupted run (chunk boundaries are fixed by the
config); a finished group is skipped.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import io as rio
from rlcore.agents import get_family
from rlcore.experiment import summary as summary_lib
from rlcore.experiment.configs import config_json, prepare_config
from rlcore.experiment.execution import make_executor
from rlcore.experiment.sweeps import Group, plan, point_name


def run(config, workdir: str, *, progress: bool = True) -> list[dict]:
  """Runs every group of `config` under `workdir`; returns their summaries.

  Args:
    config: a ConfigDict (`config.agent` names a registered family).
    workdir: where metrics, checkpoints, summaries and plots go (created).
    progress: show a progress bar per group.

  Returns:
    One summary dict per group (as in its summary.json).
  """
  config = prepare_config(config)
  os.makedirs(workdir, exist_ok=True)
  summaries = [run_group(g, _group_dir(workdir, g), progress=progress) for g in plan(config)]
  if len(summaries) > 1:
    rio.write_json_atomic(os.path.join(workdir, "sweep_summary.json"),
                          {s["group"]: s for s in summaries})
  return summaries


def _group_dir(workdir, group: Group) -> str:
  return os.path.join(workdir, group.name) if group.name else workdir


def _run_inputs(agent, config, points):
  """Per-run keys, hparams and seeds: run r is point r // S with seed index r % S."""
  S = config.num_seeds
  base = jax.random.key(int(config.seed))
  seeds = [jax.random.fold_in(base, s) for s in range(S)]
  keys = jnp.stack(seeds * len(points))
  default = agent.default_hparams()
  rows = []
  for overrides in points:
    row = dict(default)
    row.update({k: jnp.asarray(v, jnp.float32) for k, v in overrides.items()})
    rows += [row] * S
  hparams = jax.tree.map(lambda *xs: jnp.stack(xs), *rows) if default else {}
  seed_ids = np.array([int(config.seed) + s for s in range(S)] * len(points), np.int32)
  return keys, hparams, seed_ids


def run_group(group: Group, gdir: str, *, progress: bool = True) -> dict:
  """Runs one group (all its points and seeds) with resume; returns its summary."""
  config, points = group.config, group.points
  names = [point_name(p) for p in points]
  summary_path = os.path.join(gdir, "summary.json")
  point_files = [os.path.join(gdir, "points", f"{n}.json") for n in names]
  if os.path.exists(summary_path) and all(map(os.path.exists, point_files)):
    print(f"[runner] {gdir}: finished earlier, skipping.")
    return rio.read_json(summary_path)
  os.makedirs(gdir, exist_ok=True)

  family = get_family(config.agent)
  S, R = config.num_seeds, len(points) * config.num_seeds
  t0 = time.perf_counter()
  agent, executor = make_executor(family, config, R)
  keys, hparams, seeds = _run_inputs(agent, config, points)
  ckpt = rio.Checkpointer(os.path.join(gdir, "checkpoints"))
  writer = rio.MetricsWriter(gdir, tensorboard=bool(config.tensorboard))
  done = 0
  if ckpt.latest_step() is None:
    states = executor.init(keys, hparams, seeds)
  else:
    states, meta = ckpt.restore(executor.template(keys, hparams, seeds))
    states = executor.place(states)
    done = int(meta["updates"])
    writer.truncate_after("update", done)
    print(f"[runner] {gdir}: resuming after update {done}/{agent.num_updates}.")
  init_s = time.perf_counter() - t0

  bar = rio.progress_bar(agent.num_updates, os.path.basename(gdir.rstrip("/")) or "run",
                         initial=done, disable=not progress)
  shown = agent.plot_metrics[0]
  run_s, run_steps, chunks, t_start = 0.0, 0, 0, time.time()
  while done < agent.num_updates:
    n = min(config.chunk_updates, agent.num_updates - done)
    t, compiled = time.perf_counter(), executor.compile_seconds or 0.0
    states, metrics = executor.chunk(states, n)
    dt = time.perf_counter() - t - ((executor.compile_seconds or 0.0) - compiled)
    steps = n * agent.steps_per_update * R
    if chunks >= executor.warmup_chunks:
      run_s, run_steps = run_s + dt, run_steps + steps
    chunks += 1
    writer.write_many(summary_lib.records(
        metrics, names, S, done, config.log_every, per_seed_keys=agent.plot_metrics,
        steps_per_second=steps / dt, wall_time=time.time() - t_start))
    done += n
    ckpt.save(done, states, {"updates": done, "config": config_json(config),
                             "points": names})
    last = np.asarray(metrics[shown])[:, -1] if shown in metrics else np.array([np.nan])
    bar.set_postfix({shown: f"{float(np.nanmean(last)):.4g}"} if np.isfinite(last).any()
                    else {}, refresh=False)
    bar.update(n)
  bar.close()
  ckpt.close()
  writer.close()

  evaluations = None
  if agent.evaluate is not None:
    print(f"[runner] {gdir}: evaluating the {R} trained runs ...", flush=True)
    evaluations = [agent.evaluate(executor.run_state(states, r)) for r in range(R)]
  recs = rio.read_jsonl(os.path.join(gdir, "metrics.jsonl"))
  timing = dict(init_seconds=init_s, compile_seconds=executor.compile_seconds,
                steps_per_second=run_steps / run_s if run_s else None, run_seconds=run_s,
                sharding=executor.sharding)
  summary = summary_lib.summarise(group, config, recs, names, evaluations, timing)
  if config.plot and recs:
    summary_lib.plot(recs, names, agent.plot_metrics, os.path.join(gdir, "curve.png"),
                     title=f"{config.agent}: {group.name or 'default'}")
  summary_lib.write_point_files(gdir, summary)
  rio.write_json_atomic(summary_path, summary)
  return summary


def load(config, workdir: str, group: str = ""):
  """The last checkpointed state of a group's runs: `(states, agent, metadata)`.

  Vectorized agents' states have a leading run axis R = points x seeds (run r is
  point r // num_seeds); host agents' states are a list of R states.

  Args:
    config: the run's config (as given to `run`).
    workdir: the run's workdir.
    group: the structural group's name ("" when the config has no structural sweep).
  """
  config = prepare_config(config)
  groups = {g.name: g for g in plan(config)}
  if group not in groups:
    raise ValueError(f"load: unknown group {group!r}; this config has: {sorted(groups)}.")
  g = groups[group]
  family = get_family(g.config.agent)
  R = len(g.points) * g.config.num_seeds
  agent, executor = make_executor(family, g.config, R)
  template = executor.template(*_run_inputs(agent, g.config, g.points))
  with rio.Checkpointer(os.path.join(_group_dir(workdir, g), "checkpoints")) as ckpt:
    states, meta = ckpt.restore(template)
  return states, agent, meta
