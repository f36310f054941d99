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
from rlcore.experiment import integrity
from rlcore.experiment import summary as summary_lib
from rlcore.experiment.configs import load_config, prepare_config
from rlcore.experiment.execution import make_executor
from rlcore.experiment.sweeps import Group, plan, point_name


def run(config, workdir: str, *, progress: bool = True) -> list[dict]:
  """Runs every group of `config` under `workdir`; returns their summaries.

  The workdir is locked for the run (a second run on it fails at once), and each
  group checks that its directory holds no run of another config (see
  `rlcore.experiment.integrity`).

  Args:
    config: a ConfigDict (`config.agent` names a registered family).
    workdir: where metrics, checkpoints, summaries and plots go (created).
    progress: show a progress bar per group.

  Returns:
    One summary dict per group (as in its summary.json).

  Raises:
    ValueError: a bad config (naming the key and what is allowed), or
      `integrity.ConfigChangedError`: the workdir holds a run of another config.
    integrity.WorkdirBusyError: another run holds the workdir.
    integrity.DivergenceError: a loss went NaN or infinite (and
      `config.allow_nonfinite` is False).
  """
  config = prepare_config(config)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(f"workdir {workdir!r} is a file, not a directory; pass a "
                             f"directory (it is created if missing).")
  os.makedirs(workdir, exist_ok=True)
  with integrity.WorkdirLock(workdir):
    summaries = [run_group(g, _group_dir(workdir, g), progress=progress)
                 for g in plan(config)]
    if len(summaries) > 1:
      rio.write_json_atomic(os.path.join(workdir, "sweep_summary.json"),
                            {s["group"]: s for s in summaries})
      if config.plot:
        summary_lib.plot_sweep(workdir, summaries, title=f"{config.agent}: the sweep's groups")
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
  """Runs one group (all its points and seeds) with resume; returns its summary.

  Call it through `run`, which holds the workdir's lock.
  """
  os.makedirs(gdir, exist_ok=True)
  config, points = integrity.check_config(gdir, group.config, group.points,
                                          group.config.existing)
  group = group._replace(config=config, points=points)
  names = [point_name(p) for p in points]
  summary_path = os.path.join(gdir, "summary.json")
  point_files = [os.path.join(gdir, "points", f"{n}.json") for n in names]
  if os.path.exists(summary_path) and all(map(os.path.exists, point_files)):
    print(f"[runner] {gdir}: finished earlier with this config ({integrity.RECORD}); "
          f"skipped. To train it again, add --config.existing=restart (the old run is "
          f"moved aside) or use another --workdir.")
    return rio.read_json(summary_path)

  family = get_family(config.agent)
  S, R = config.num_seeds, len(points) * config.num_seeds
  t0 = time.perf_counter()
  agent, executor = make_executor(family, config, R)
  keys, hparams, seeds = _run_inputs(agent, config, points)
  ckpt = rio.Checkpointer(os.path.join(gdir, "checkpoints"))
  writer = rio.MetricsWriter(gdir, tensorboard=bool(config.tensorboard))
  states, done = _resume(gdir, ckpt, executor, (keys, hparams, seeds), names,
                         agent.num_updates)
  writer.truncate_after("update", done)
  init_s = time.perf_counter() - t0
  remaining = agent.num_updates - done
  executor.prepare(states, [n for n in (min(config.chunk_updates, remaining),
                                        remaining % config.chunk_updates) if n])

  bar = rio.progress_bar(agent.num_updates, os.path.basename(gdir.rstrip("/")) or "run",
                         initial=done, disable=not progress)
  shown = agent.plot_metrics[0]
  nonfinite: dict[str, int] = {}
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
        always_keys=agent.finite_metrics, steps_per_second=steps / dt,
        wall_time=time.time() - t_start))
    bad = summary_lib.nonfinite(metrics, agent.finite_metrics, names, S, done)
    if bad:
      for key in {b["metric"] for b in bad}:
        nonfinite[key] = nonfinite.get(key, 0) + sum(b["metric"] == key for b in bad)
      if not config.allow_nonfinite:
        bar.close()
        ckpt.close()
        writer.close()
        first = bad[0]
        raise integrity.DivergenceError(
            f"{gdir}: {first['metric']} is {first['value']} at update {first['update']} "
            f"(point {first['point']}, seed index {first['seed']}; {len(bad)} non-finite "
            f"values in this chunk, written as null to metrics.jsonl; the chunk was not "
            f"checkpointed). Lower the learning rate or fix the config; "
            f"--config.allow_nonfinite=True goes on anyway.")
    done += n
    ckpt.save(done, states, {"updates": done, "points": names})
    last = np.asarray(metrics[shown])[:, -1] if shown in metrics else np.array([np.nan])
    bar.set_postfix({shown: f"{float(np.nanmean(last)):.4g}"} if np.isfinite(last).any()
                    else {}, refresh=False)
    bar.update(n)
  bar.close()
  ckpt.close()
  writer.close()

  evaluations = None
  if agent.evaluate is not None:
    evaluations = _evaluate(agent, executor, states, R, gdir, progress)
  recs = rio.read_jsonl(os.path.join(gdir, "metrics.jsonl"))
  timing = dict(init_seconds=init_s, compile_seconds=executor.compile_seconds,
                steps_per_second=run_steps / run_s if run_s else None, run_seconds=run_s,
                sharding=executor.sharding, nonfinite=nonfinite)
  summary = summary_lib.summarise(group, config, recs, names, evaluations, timing,
                                  agent.plot_metrics)
  if config.plot and recs:
    summary_lib.plot(recs, names, agent.plot_metrics, os.path.join(gdir, "curve.png"),
                     title=f"{config.agent}: {group.name or os.path.basename(gdir.rstrip('/'))}")
  summary_lib.write_point_files(gdir, summary)
  rio.write_json_atomic(summary_path, summary)
  return summary


def _evaluate(agent, executor, states, R, gdir, progress):
  """The agent's evaluation of every run, with a progress bar over the runs."""
  bar = rio.progress_bar(R, f"evaluating {os.path.basename(gdir.rstrip('/')) or 'run'}",
                         unit="run", disable=not progress)
  out = []
  for r in range(R):
    out.append(agent.evaluate(executor.run_state(states, r)))
    bar.update(1)
  bar.close()
  return out


def _resume(gdir, ckpt, executor, inputs, names, num_updates):
  """(states, updates done): from the newest intact checkpoint that metrics.jsonl
  reaches, or fresh. A checkpoint newer than the log (records lost to a truncated
  file) is passed over for an older one, so the missing records are recomputed."""
  if ckpt.latest_step() is None:
    return executor.init(*inputs), 0
  template = executor.template(*inputs)
  try:
    states, meta = ckpt.restore(template)
  except FileNotFoundError:          # every checkpoint was corrupt and set aside
    states, meta = None, {"updates": 0}
  for step, path, reason in ckpt.set_aside:
    print(f"[runner] {gdir}: checkpoint {step} set aside ({reason}); kept at {path}.")
  if states is None:
    print(f"[runner] {gdir}: no intact checkpoint left: training from the start.")
    return executor.init(*inputs), 0
  done = int(meta["updates"])
  path = os.path.join(gdir, "metrics.jsonl")
  logged = integrity.last_complete_update(rio.read_jsonl(path) if os.path.exists(path)
                                          else [], names)
  if logged < done:
    older = max([s for s in ckpt.all_steps() if s <= logged], default=0)
    print(f"[runner] {gdir}: metrics.jsonl ends at update {logged} but the checkpoint is "
          f"at update {done}: resuming from update {older} to recompute the missing "
          f"records (later checkpoints are moved aside).")
    ckpt.set_aside_after(older, "newer than metrics.jsonl")
    if not older:
      return executor.init(*inputs), 0
    states, meta = ckpt.restore(template, step=older)
    done = int(meta["updates"])
  print(f"[runner] {gdir}: resuming after update {done}/{num_updates}.")
  return executor.place(states), done


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


def trained_run(config_spec: str, workdir: str, group: str = "", run_index: int = 0, *,
                agent: str, key: str):
  """One run's final parameters from a config's workdir, training it there first.

  Calls `run` on the config (which skips a finished run, resumes an interrupted one and
  trains a missing one), then reads the last checkpoint of `group` and picks run
  `run_index` (point x seed index). Used for a frozen reference policy (ORPO) and a
  learned shaping potential (TD-JEPA).

  Args:
    config_spec: "path/to/config.py[:arg]".
    workdir: the run's workdir.
    group: its group ("" without a structural sweep).
    run_index: which run of the group.
    agent: the agent family the config must name.
    key: the sub-config that named this run, for messages (e.g. "reference": its
      keys config, workdir, group and run).

  Returns:
    (params of that run as numpy arrays, the group's agent).
  """
  path, _, arg = str(config_spec).partition(":")
  config = load_config(path, arg or None)
  if config.agent != agent:
    raise ValueError(f"config.{key}.config must be a {agent} config, got agent "
                     f"{config.agent!r} from {config_spec!r}.")
  print(f"[runner] {config_spec} in {workdir}: trained there first unless finished")
  run(config, str(workdir), progress=False)
  states, group_agent, _ = load(config, str(workdir), str(group))
  runs = jax.tree.leaves(states.params)[0].shape[0]
  if not 0 <= int(run_index) < runs:
    raise ValueError(f"config.{key}.run = {run_index} is out of range: {workdir} holds "
                     f"{runs} runs.")
  return jax.tree.map(lambda x: np.asarray(x[int(run_index)]), states.params), group_agent
