"""The experiment runner: sweeps, jitted chunks, metrics, checkpoints, resume, devices.

A config (an `ml_collections.ConfigDict`, see `configs/`) names an agent and may
declare a sweep, `config.sweep = {"key": [values], ...}`, a product of values:

* keys that are the agent's scalar hyperparameters (`agent_module.HPARAMS`, e.g. `lr`,
  `ent_coef`, `shaping.scale`) are *vmapped*: together with `num_seeds` seeds they
  form the leading axis R of one compiled training call;
* every other key is *structural* (env name, network sizes, shaping chain): each
  combination is a separate group, run one after the other under
  `<workdir>/<group>/`.

A group runs as chunks of `chunk_updates` updates, each one jitted call over all R
runs. Between chunks the host appends to `metrics.jsonl`, saves an orbax checkpoint
(agent state with its shaping state and RNG key, plus the config) and updates the
progress bar. Rerun with the same workdir, a group resumes from its last checkpoint
and reaches bit-for-bit the parameters of an uninterrupted run (chunk boundaries are
fixed by the config); a finished group (its `summary.json` and one file per point
under `points/`, written atomically) is skipped.

With several devices, the R runs (or, if R does not divide, each run's batch of
environments) are sharded over a one-axis `jax.sharding.Mesh`. On CPU devices
(`python experiments/main.py --cpu_devices=2` exposes one per core) "auto" shards runs
only: sharding one run's environments puts collectives in every step, which costs more
than it saves there, so R that does not divide runs on one device.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from rlcore import io as rio

RUNNER_DEFAULTS = dict(
    seed=0,                 # base seed; run r of seed s uses fold_in(key(seed), s)
    num_seeds=1,            # seeds vmapped in one call
    sweep={},               # {"key": [values]}: a product of values
    sweep_points=[],        # [{"key": value, ..., "_name": label}]: listed structural points
    chunk_updates=20,       # updates per jitted chunk (checkpoint/log interval)
    log_every=1,            # write every n-th update's metrics
    shard="auto",           # "auto" | "seeds" | "envs" | "none"
    tensorboard=False,      # also write TensorBoard scalars (tensorboardX)
    host_eval_env="",       # gymnasium id to evaluate greedy policies on at the end
    host_eval_episodes=0,
    plot=True,              # write curve.png
)
SHARD_MODES = ("auto", "seeds", "envs", "none")


def with_runner_defaults(config) -> ml_collections.ConfigDict:
  """`config` plus every runner key it lacks (so `--config.seed=3` etc. can override).

  Args:
    config: an agent config, e.g. `ppo.default_config()`.

  Returns:
    The same ConfigDict, extended in place.
  """
  with config.unlocked():
    for k, v in RUNNER_DEFAULTS.items():
      if k not in config:
        config[k] = (ml_collections.ConfigDict(v, allow_dotted_keys=True)
                     if isinstance(v, dict) else v)
  return config


def agent_module(name: str):
  """The agent module for `config.agent`."""
  from rlcore.agents import grpo, ppo, reinforce
  modules = {"ppo": ppo, "reinforce": reinforce, "grpo": grpo}
  if name not in modules:
    raise ValueError(f"config.agent: unknown agent {name!r}; allowed: {', '.join(modules)}.")
  return modules[name]


def _flat_keys(cfg, prefix=""):
  keys = []
  for k, v in cfg.items():
    full = prefix + k
    if isinstance(v, ml_collections.ConfigDict) and k != "sweep":
      keys += _flat_keys(v, full + ".")
    else:
      keys.append(full)
  return keys


def prepare_config(config) -> ml_collections.ConfigDict:
  """Fills runner defaults and fails on unknown keys, sweep keys and values."""
  module = agent_module(config.get("agent", "ppo"))
  config = with_runner_defaults(config.copy_and_resolve_references())
  with config.unlocked():
    config.sweep_points = [dict(p) for p in config.sweep_points]
  allowed = set(_flat_keys(module.default_config())) | set(RUNNER_DEFAULTS)
  unknown = sorted(set(_flat_keys(config)) - allowed)
  if unknown:
    raise ValueError(f"unknown config keys {unknown}; allowed keys: {', '.join(sorted(allowed))}.")
  sweep = dict(config.sweep)
  for key, values in sweep.items():
    if key not in allowed or key in RUNNER_DEFAULTS and key != "seed":
      raise ValueError(f"config.sweep: unknown or unsweepable key {key!r}; sweepable: "
                       f"{', '.join(sorted(allowed - set(RUNNER_DEFAULTS)))}.")
    if not isinstance(values, (list, tuple)) or not values:
      raise ValueError(f"config.sweep[{key!r}] must be a non-empty list of values, "
                       f"got {values!r}.")
  for i, point in enumerate(config.sweep_points):
    bad = [k for k in point if k != "_name" and (k not in allowed or k in RUNNER_DEFAULTS)]
    if not isinstance(point, dict) or bad:
      raise ValueError(f"config.sweep_points[{i}] must be a dict of config keys; unknown or "
                       f"unsweepable keys: {bad}.")
  if config.shard not in SHARD_MODES:
    raise ValueError(f"config.shard: {config.shard!r} is not allowed; choose one of "
                     f"{', '.join(SHARD_MODES)}.")
  for name in ("num_seeds", "chunk_updates", "log_every"):
    v = config[name]
    if isinstance(v, bool) or int(v) != v or v < 1:
      raise ValueError(f"config.{name} must be a positive integer, got {v!r}.")
  first = {k: v[0] for k, v in sweep.items()}
  for point in list(config.sweep_points) or [{}]:
    module.validate_config(override(config, {**first, **{k: v for k, v in point.items()
                                                      if k != "_name"}}))
  return config


def override(config, overrides: dict):
  """A copy of `config` with dotted keys set: override(c, {"shaping.scale": 2.0})."""
  c = config.copy_and_resolve_references()
  with c.unlocked():
    for key, value in overrides.items():
      node = c
      *path, leaf = key.split(".")
      for p in path:
        node = node[p]
      node[leaf] = value
  return c


def _point_name(overrides: dict) -> str:
  if not overrides:
    return "default"
  parts = []
  for k, v in overrides.items():
    v = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    parts.append(f"{k}={v}")
  return "_".join(parts).replace("/", "-").replace(" ", "")


def plan(config) -> list[dict]:
  """Groups of a (prepared) config: [{name, config, points: [overrides]}]."""
  module = agent_module(config.agent)
  sweep = dict(config.sweep)
  structural = {k: v for k, v in sweep.items() if k not in module.HPARAMS}
  vmapped = {k: v for k, v in sweep.items() if k in module.HPARAMS}
  listed = [dict(p) for p in config.get("sweep_points", [])] or [{}]
  groups = []
  for combo in itertools.product(*structural.values()) if structural else [()]:
    for extra in listed:
      label = extra.pop("_name", None)
      overrides = {**dict(zip(structural, combo)), **extra}
      points = [dict(zip(vmapped, c)) for c in itertools.product(*vmapped.values())]
      name = _point_name(overrides) if overrides else ""
      if label:
        name = "_".join(filter(None, [_point_name(dict(zip(structural, combo)))
                                      if structural else "", label]))
      groups.append(dict(name=name,
                         config=override(config, overrides), points=points or [{}],
                         overrides=overrides))
  return groups


def run(config, workdir: str, *, progress: bool = True) -> list[dict]:
  """Runs every group of `config` under `workdir`; returns their summaries."""
  config = prepare_config(config)
  os.makedirs(workdir, exist_ok=True)
  summaries = []
  for group in plan(config):
    gdir = os.path.join(workdir, group["name"]) if group["name"] else workdir
    summaries.append(run_group(group, gdir, progress=progress))
  if len(summaries) > 1:
    rio.write_json_atomic(os.path.join(workdir, "sweep_summary.json"),
                          {s["group"]: s for s in summaries})
  return summaries


def _make_mesh(config, num_runs: int):
  devices = jax.devices()
  n = len(devices)
  mode = config.shard
  if n == 1 or mode == "none":
    return None, None
  mesh = Mesh(np.array(devices), ("d",))
  runs_divide, envs_divide = num_runs % n == 0, config.num_envs % n == 0
  if mode == "seeds" and not runs_divide:
    raise ValueError(f"config.shard='seeds': the {num_runs} runs (points x num_seeds) do "
                     f"not divide over {n} devices; use a multiple of {n} or shard='envs'.")
  if mode == "envs" and not envs_divide:
    raise ValueError(f"config.shard='envs': num_envs={config.num_envs} does not divide over "
                     f"{n} devices; use a multiple of {n} or shard='seeds'.")
  if mode == "seeds" or (mode == "auto" and runs_divide):
    return mesh, "seeds"
  if mode == "envs":
    return mesh, "envs"
  if devices[0].platform == "cpu":
    # Sharding one run's environments puts a cross-device collective in every env step
    # and SGD step; on CPU devices that made CartPole PPO 4.5x slower (benchmarks/README).
    print(f"[runner] the {num_runs} runs do not divide over {n} CPU devices: running on "
          f"one device (shard='envs' would shard each run's environments, which is slower "
          f"on CPU devices; use a multiple of {n} runs to use them all).")
    return None, None
  if envs_divide:
    return mesh, "envs"
  raise ValueError(f"cannot shard over {n} devices: neither the {num_runs} runs "
                   f"(points x num_seeds) nor num_envs={config.num_envs} is divisible by "
                   f"{n}; change num_seeds or num_envs, or set shard='none'.")


def _run_keys(config, num_points: int):
  base = jax.random.key(int(config.seed))
  seeds = jnp.stack([jax.random.fold_in(base, s) for s in range(config.num_seeds)])
  return jnp.concatenate([seeds] * num_points)   # run r = point r // S, seed r % S


def _run_hparams(agent, points, num_seeds):
  default = agent.default_hparams()
  rows = []
  for overrides in points:
    hp = dict(default)
    hp.update({k: jnp.asarray(v, jnp.float32) for k, v in overrides.items()})
    rows += [hp] * num_seeds
  return jax.tree.map(lambda *xs: jnp.stack(xs), *rows)


def _config_json(config) -> dict:
  return json.loads(config.to_json_best_effort())


def load(config, workdir: str, group: str = ""):
  """The last checkpointed agent state of a run: `(state [R, ...], agent, metadata)`.

  For a host-loop agent (GRPO) the state is a list with one state per seed.

  Args:
    config: the run's config (as given to `run`).
    workdir: the run's workdir.
    group: the structural group's name ("" when the config has no structural sweep).
  """
  config = prepare_config(config)
  groups = {g["name"]: g for g in plan(config)}
  if group not in groups:
    raise ValueError(f"load: unknown group {group!r}; this config has: {sorted(groups)}.")
  g = groups[group]
  module = agent_module(g["config"].agent)
  agent = module.make_agent(g["config"])
  S = g["config"].num_seeds
  if getattr(module, "HOST_LOOP", False):  # a list of per-seed states (_run_host_group)
    key = jax.random.key(int(g["config"].seed))  # init reads files: not traceable
    template = [agent.init(jax.random.fold_in(key, s)) for s in range(S)]
  else:
    template = jax.eval_shape(jax.vmap(agent.init), _run_keys(g["config"], len(g["points"])),
                              _run_hparams(agent, g["points"], S))
  gdir = os.path.join(workdir, group) if group else workdir
  with rio.Checkpointer(os.path.join(gdir, "checkpoints")) as ckpt:
    state, meta = ckpt.restore(template)
  return state, agent, meta


def run_group(group: dict, gdir: str, *, progress: bool = True) -> dict:
  """Runs one structural group (all its vmapped points and seeds) with resume."""
  config, points = group["config"], group["points"]
  names = [_point_name(p) for p in points]
  point_files = [os.path.join(gdir, "points", f"{n}.json") for n in names]
  summary_path = os.path.join(gdir, "summary.json")
  if os.path.exists(summary_path) and all(map(os.path.exists, point_files)):
    print(f"[runner] {gdir}: finished earlier, skipping.")
    return rio.read_json(summary_path)
  os.makedirs(gdir, exist_ok=True)

  module = agent_module(config.agent)
  if getattr(module, "HOST_LOOP", False):
    return _run_host_group(group, gdir, module, progress=progress)
  S, R = config.num_seeds, len(points) * config.num_seeds
  mesh, shard_mode = _make_mesh(config, R)
  constrain = None
  if shard_mode == "envs":
    env_sharding = NamedSharding(mesh, P("d"))
    constrain = lambda s: jax.tree.map(
        lambda x: jax.lax.with_sharding_constraint(x, env_sharding)
        if x.ndim >= 1 and x.shape[0] == config.num_envs else x, s)
  agent = module.make_agent(config, constrain_env=constrain)
  run_sharding = NamedSharding(mesh, P("d")) if shard_mode == "seeds" else None

  def jit(fn):
    if run_sharding is None:
      return jax.jit(fn)
    return jax.jit(fn, out_shardings=run_sharding)

  init = jit(jax.vmap(agent.init))
  keys, hparams = _run_keys(config, len(points)), _run_hparams(agent, points, S)
  template = jax.eval_shape(init, keys, hparams)

  ckpt = rio.Checkpointer(os.path.join(gdir, "checkpoints"))
  metrics_writer = rio.MetricsWriter(gdir, tensorboard=bool(config.tensorboard))
  start = ckpt.latest_step()
  if start is None:
    state = init(keys, hparams)
    done_updates = 0
  else:
    state, meta = ckpt.restore(template)
    if run_sharding is not None:
      state = jax.device_put(state, run_sharding)
    done_updates = int(meta["updates"])
    metrics_writer.truncate_after("update", done_updates)
    print(f"[runner] {gdir}: resuming after update {done_updates}/{agent.num_updates}.")

  chunk = config.chunk_updates
  compiled, compile_s = {}, 0.0

  def chunk_fn(length):
    nonlocal compile_s
    if length not in compiled:
      t = time.perf_counter()
      fn = jit(jax.vmap(lambda s: jax.lax.scan(lambda c, _: agent.update(c), s, None,
                                                length)))
      compiled[length] = fn.lower(state).compile()
      compile_s += time.perf_counter() - t
    return compiled[length]

  bar = (rio.ProgressBar(agent.num_updates, desc=os.path.basename(gdir.rstrip("/")) or "run")
         if progress else None)
  if bar is not None and done_updates:
    bar.update(done_updates)
  run_s, run_steps, t_start = 0.0, 0, time.time()
  while done_updates < agent.num_updates:
    length = min(chunk, agent.num_updates - done_updates)
    fn = chunk_fn(length)
    t = time.perf_counter()
    state, metrics = fn(state)
    metrics = jax.device_get(metrics)
    dt = time.perf_counter() - t
    run_s += dt
    run_steps += length * agent.steps_per_update * R
    records = _records(metrics, points, names, S, done_updates, config.log_every,
                       sps=length * agent.steps_per_update * R / dt,
                       wall=time.time() - t_start)
    metrics_writer.write_many(records)
    done_updates += length
    ckpt.save(done_updates, state, {"updates": done_updates, "config": _config_json(config),
                                    "points": names})
    if bar is not None:
      bar.update(length, **{"return": f"{float(np.nanmean(metrics['episode_return'][:, -1])):.1f}"})
  if bar is not None:
    bar.close()
  ckpt.close()
  metrics_writer.close()

  records = rio.read_jsonl(os.path.join(gdir, "metrics.jsonl"))
  summary = _summarise(group, config, agent, state, records, names, compile_s, run_s,
                       run_steps, gdir, shard_mode)
  for name, path in zip(names, point_files):
    rio.write_json_atomic(path, summary["points"][name])
  rio.write_json_atomic(summary_path, summary)
  return summary


def _run_host_group(group: dict, gdir: str, module, *, progress: bool = True) -> dict:
  """A host-loop agent (GRPO): seeds one after another, chunks of host steps.

  Same files and resume behaviour as the jitted path: after each chunk every seed's
  state is checkpointed together with the metrics written so far; a rerun restores
  them and continues with the same host RNG streams (seeded by step).
  """
  config = group["config"]
  S = config.num_seeds
  agent = module.make_agent(config)
  seeds = [int(config.seed) + s for s in range(S)]
  t0 = time.perf_counter()
  states = [agent.init(jax.random.fold_in(jax.random.key(int(config.seed)), s))
            for s in range(S)]
  init_s = time.perf_counter() - t0
  ckpt = rio.Checkpointer(os.path.join(gdir, "checkpoints"))
  metrics_writer = rio.MetricsWriter(gdir, tensorboard=bool(config.tensorboard))
  done = 0
  if ckpt.latest_step() is not None:
    states, meta = ckpt.restore(states)
    done = int(meta["updates"])
    metrics_writer.truncate_after("update", done)
    print(f"[runner] {gdir}: resuming after update {done}/{agent.num_updates}.")
  bar = (rio.ProgressBar(agent.num_updates, desc=os.path.basename(gdir.rstrip("/")) or "run")
         if progress else None)
  if bar is not None and done:
    bar.update(done)
  run_s, run_steps, t_start = 0.0, 0, time.time()
  first_chunk_s = None
  while done < agent.num_updates:
    length = min(config.chunk_updates, agent.num_updates - done)
    t = time.perf_counter()
    per_seed = []
    for i, seed in enumerate(seeds):
      states[i], m = agent.run_steps(states[i], length, seed)
      per_seed.append(m)
    dt = time.perf_counter() - t
    if first_chunk_s is None:
      first_chunk_s = dt
    else:
      run_s += dt
      run_steps += length * agent.steps_per_update * S
    metrics = {k: np.stack([m[k] for m in per_seed]) for k in per_seed[0]}
    records = _records(metrics, [{}], ["default"], S, done, config.log_every,
                       sps=length * agent.steps_per_update * S / dt, wall=time.time() - t_start,
                       per_seed_keys=module.PLOT_METRICS)
    metrics_writer.write_many(records)
    done += length
    ckpt.save(done, states, {"updates": done, "config": _config_json(config)})
    if bar is not None:
      key = module.PLOT_METRICS[0]
      bar.update(length, **{key: f"{float(np.nanmean(metrics[key][:, -1])):.3f}"})
  if bar is not None:
    bar.close()
  ckpt.close()
  metrics_writer.close()
  records = rio.read_jsonl(os.path.join(gdir, "metrics.jsonl"))
  final = records[-1] if records else {}
  evals = [r for r in records if "eval_accuracy" in r]
  summary = dict(group=group["name"] or "default", overrides=group["overrides"],
                 points={"default": dict(point="default", overrides={}, final=final,
                                         last_eval=evals[-1] if evals else {},
                                         env_steps=final.get("env_steps"))},
                 init_seconds=init_s, first_chunk_seconds=first_chunk_s,
                 compile_seconds=None,
                 steps_per_second=run_steps / run_s if run_s else None,
                 run_seconds=run_s, jax_version=jax.__version__,
                 device=str(jax.devices()[0].device_kind), num_devices=jax.device_count(),
                 sharding="none", backend=jax.default_backend(), config=_config_json(config))
  if config.plot and records:
    for key in module.PLOT_METRICS:
      curves = {}
      recs = [r for r in records if key + "_per_seed" in r]
      if recs:
        x = np.array([r["env_steps"] for r in recs])
        curves[key] = (x, np.array([r[key + "_per_seed"] for r in recs], np.float64).T)
        rio.learning_curve_png(os.path.join(gdir, f"curve_{key}.png" if key != module.PLOT_METRICS[0]
                                            else "curve.png"), curves,
                               xlabel="completions sampled", ylabel=key,
                               title=f"{config.agent}: {group['name'] or 'default'}")
  rio.write_json_atomic(os.path.join(gdir, "points", "default.json"), summary["points"]["default"])
  rio.write_json_atomic(os.path.join(gdir, "summary.json"), summary)
  return summary


def _records(metrics, points, names, S, first_update, log_every, sps, wall,
             per_seed_keys=("episode_return", "shaped_return")):
  """One record per logged update per point: seed means plus per-seed lists."""
  K = np.shape(metrics["env_steps"])[1]   # metrics are [R, K]
  out = []
  for k in range(K):
    update = first_update + k + 1
    if update % log_every and k != K - 1:
      continue
    for p, name in enumerate(names):
      sl = slice(p * S, (p + 1) * S)
      rec = dict(update=update, point=name, env_steps=int(metrics["env_steps"][0][k]),
                 steps_per_second=sps, wall_time=wall)
      for key, value in metrics.items():
        if key == "env_steps":
          continue
        v = np.asarray(value[sl, k], np.float64)
        if np.all(np.isnan(v)):
          continue   # not measured at this update (e.g. evaluations)
        rec[key] = float(np.nanmean(v))
        if key in per_seed_keys:
          rec[key + "_per_seed"] = v.tolist()
      out.append(rec)
  return out


def _summarise(group, config, agent, state, records, names, compile_s, run_s, run_steps,
               gdir, shard_mode) -> dict:
  S = config.num_seeds
  points = {}
  for p, name in enumerate(names):
    recs = [r for r in records if r["point"] == name]
    final = recs[-1] if recs else {}
    points[name] = dict(point=name, overrides=group["points"][p],
                        final=final, env_steps=final.get("env_steps"))
  if config.host_eval_env and config.host_eval_episodes:
    returns = host_evaluate(agent, state, config)
    for p, name in enumerate(names):
      r = returns[p * S:(p + 1) * S]
      points[name]["host_eval"] = dict(env=config.host_eval_env,
                                       episodes=config.host_eval_episodes,
                                       mean_return_per_seed=r.mean(1).tolist(),
                                       mean_return=float(r.mean()))
  summary = dict(group=group["name"] or "default", overrides=group["overrides"],
                 points=points, compile_seconds=compile_s,
                 steps_per_second=run_steps / run_s if run_s else None,
                 run_seconds=run_s, jax_version=jax.__version__,
                 device=str(jax.devices()[0].device_kind), num_devices=jax.device_count(),
                 sharding=shard_mode or "none", backend=jax.default_backend(),
                 config=_config_json(config))
  if config.plot and records:
    _plot(records, names, os.path.join(gdir, "curve.png"), config)
  return summary


def host_evaluate(agent, state, config) -> np.ndarray:
  """Greedy policy of every run on the host gymnasium env: [R, episodes] returns."""
  from envs import host
  R = jax.tree.leaves(state.params)[0].shape[0]
  policy = jax.jit(lambda s, o: agent.policy(s.params, agent.observe(s, o)))
  out = np.zeros((R, config.host_eval_episodes))
  for r in range(R):
    one = jax.tree.map(lambda x: x[r], state)
    out[r] = host.evaluate(lambda o, s=one: policy(s, o), config.host_eval_env,
                           episodes=config.host_eval_episodes, seed=1000 * r)
  return out


def _plot(records, names, path, config):
  curves = {}
  for name in names:
    recs = [r for r in records if r["point"] == name and "episode_return_per_seed" in r]
    x = np.array([r["env_steps"] for r in recs])
    y = np.array([r["episode_return_per_seed"] for r in recs]).T
    curves[f"{name} (return)"] = (x, y)
    if config.shaping.get("chain"):
      curves[f"{name} (shaped)"] = (x, np.array([r["shaped_return_per_seed"] for r in recs]).T)
  rio.learning_curve_png(path, curves, xlabel="env steps", ylabel="episode return",
                         title=f"{config.agent} on {config.env_name}")
