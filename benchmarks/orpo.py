"""ORPO speed: rlcore's tomato env and ORPO update against the official ORPO code.

Peer: the official code of Laidlaw, Singhal & Dragan, "Correlated Proxies: A New
Definition and Improved Mitigation for Reward Hacking" (https://arxiv.org/abs/2403.03185,
github.com/cassidylaidlaw/orpo: RLlib 2.7.1 and PyTorch), run from a local checkout
(`--official_path`, never copied) in its own interpreter (`--official_python`) through
`benchmarks/_orpo_official_driver.py`, one subprocess per repetition.

Measured, on the tomato gridworld level 4 ("rhard", 10x10, 26 cells, 9 tomatoes, horizon
100, reward factor 0.02, proxy reward: `envs/tomato.py` and the official
`create_simple_example(level=4)`, the level of the paper's tomato runs):

1. env steps/s with uniformly random actions: rlcore's batched env (`orpo.default_config`'s
   16 envs, auto-reset and episode statistics as the agent steps it) as one jitted
   `lax.scan`, for 1 seed and vmapped over 10 seeds; against 16 official
   `Tomato_Environment`s stepped in a python loop (all the official code has: RLlib
   steps its envs one by one in each worker).
2. one ORPO training update (rollouts of π and of π_ref, discriminator epochs, reward
   augmentation, GAE, PPO epochs) for regularizer `sqrt_chi2` and `none` at
   `orpo.default_config()` (16 + 16 envs x 100 steps, 8 epochs x 8 minibatches, MLPs
   64x64): the agent's own `init` and `run_chunk`, `jax.jit(jax.vmap(...))` over the seeds
   as `rlcore.experiment` runs them, compile (lower + compile) timed apart, a chunk of
   `--chunk` updates per timed call. The reference policy is a randomly initialised
   network (speed only; no reference training). Against one `algorithm.train()` of the
   official RLlib ORPO (`sqrt_chi2`, λ = 0.01; one randomly initialised reference
   policy; 2 rollout workers x 16 envs x 100 steps, the official policy mapping giving
   one worker to each policy, so 1600 current-policy steps per iteration as ours; SGD
   minibatch 200 = 1600 / 8, 8 epochs; ray local mode, CPU) and, for `none`, RLlib PPO
   (1 worker x 16 envs x 100 steps), both at the official tomato model (policy and value
   MLPs 4 x 512, discriminator 2 x 256) and at ours (2 x 64; `--official_small`). The
   first official iteration of each process is left out (warm-up). Torch runs one
   thread (`--official_threads=1`): with its default two threads on this shared 2-core
   VM, beside one other busy process, an official ORPO iteration took 60-99 s instead
   of 6 s (the intra-op pool's threads wait on each other); on the quiet machine two
   threads took 5.1 s. The official code
   trains one seed per process; its 10-seed time is 10 x its 1-seed iteration (the
   ratio at 10 seeds compares our vmapped update with 10 serial official iterations).
3. the exact tabular evaluation (`agent.evaluate`: the policy table over the 26 624
   `TomatoMDP` states, exact true/proxy return, occupancy and χ²/KL/TV to the
   reference), for information; no peer.

Contenders run interleaved (each repetition: ours, then the official) for `--reps`
repetitions; the tables give medians, and `ratio` is official time / rlcore time
(above 1: rlcore is faster).

    python benchmarks/orpo.py --official_path=/path/to/orpo \\
        --official_python=/path/to/venv/bin/python --official_overlay=/path/to/overlay
    python benchmarks/orpo.py                         # rlcore only
    python benchmarks/orpo.py --official_path=... --reps=1 --official_iters=2  # smoke

The official venv needs ray[rllib]==2.7.1, torch, numpy<2, gymnasium 0.28.1, sacred;
ray 2.7.1 also imports `pkg_resources` and pyarrow, so with a recent setuptools and
pyarrow put `setuptools<81` and `pyarrow==14.0.2` in a folder given as
`--official_overlay` (`pip install --no-deps --target DIR "setuptools<81"
pyarrow==14.0.2`), which goes first on the subprocess's PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def parse():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_path", "--official-path", "--official", default="",
                 help="checkout of cassidylaidlaw/orpo (holding occupancy_measures/); "
                 "empty: rlcore only")
  p.add_argument("--official_python", "--official-python", default=sys.executable,
                 help="python with the official code's dependencies")
  p.add_argument("--official_overlay", "--official-overlay", default="",
                 help="folder put first on the official subprocess's PYTHONPATH")
  p.add_argument("--official_threads", "--official-threads", type=int, default=1,
                 help="torch threads of the official process (OMP_NUM_THREADS; 0: torch's "
                 "default, one per core)")
  p.add_argument("--official_iters", "--official-iters", type=int, default=3,
                 help="official training iterations per process (the first is left out)")
  p.add_argument("--official_small", "--official-small", type=int, default=1,
                 help="also run the official ORPO at our network sizes (1/0)")
  p.add_argument("--no_official_train", "--no-official-train", action="store_true",
                 help="official env only")
  p.add_argument("--seeds", default="1,10")
  p.add_argument("--reps", type=int, default=2)
  p.add_argument("--chunk", type=int, default=5, help="updates per timed call")
  p.add_argument("--calls", type=int, default=2, help="timed calls per repetition")
  p.add_argument("--env_steps", "--env-steps", type=int, default=10000,
                 help="steps per env in one env-throughput call")
  p.add_argument("--json", default="", help="write the results here")
  return p.parse_args()


ARGS = parse()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from rlcore.agents import control, orpo  # noqa: E402

SEEDS = [int(s) for s in ARGS.seeds.split(",")]
REGULARIZERS = ("sqrt_chi2", "none")


def base_config(regularizer: str):
  c = orpo.default_config()
  c.regularizer = regularizer
  return c


def random_reference(config) -> orpo.Reference:
  """A randomly initialised reference network of the reference config's shape."""
  env = control.make_env(config)
  network, _ = control.make_network(env, config)
  params = network.init(jax.random.PRNGKey(123), jnp.zeros(env.observation_shape))
  return orpo.Reference(network=network, params=jax.tree.map(np.asarray, params))


def timed_compile(fn, *args):
  t = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - t


# ----------------------------------------------------------------------------- env


def our_env_runner(seeds: int):
  config = orpo.default_config()
  env = control.make_env(config)
  steps = ARGS.env_steps

  def run(key):
    k_reset, k_act = jax.random.split(key)
    state = env.reset(k_reset)
    actions = jax.random.randint(k_act, (steps, config.num_envs), 0, 4)

    def step(s, a):
      s = env.step(s, a)
      return s, s.reward.sum()

    state, r = jax.lax.scan(step, state, actions)
    return r.sum()

  keys = jax.random.split(jax.random.PRNGKey(0), seeds)
  compiled, compile_s = timed_compile(jax.vmap(run), keys)
  jax.block_until_ready(compiled(keys))

  def go(rep):
    k = jax.random.split(jax.random.PRNGKey(rep + 1), seeds)
    t = time.perf_counter()
    jax.block_until_ready(compiled(k))
    return time.perf_counter() - t

  return dict(compile_s=compile_s, steps=seeds * config.num_envs * steps, go=go,
              board=list(env.unwrapped.layout.cells.shape))


# --------------------------------------------------------------------------- train


def our_train_runner(regularizer: str, seeds: int):
  config = base_config(regularizer)
  agent = orpo.make_agent(config, reference=random_reference(config))
  keys = jax.random.split(jax.random.PRNGKey(0), seeds)
  hp = jax.tree.map(lambda x: jnp.broadcast_to(x, (seeds,)), agent.default_hparams())
  init = jax.jit(jax.vmap(lambda k, h: agent.init(k, h)))
  states = jax.block_until_ready(init(keys, hp))
  chunk = ARGS.chunk
  compiled, compile_s = timed_compile(jax.vmap(lambda s: agent.run_chunk(s, chunk)), states)
  holder = {"states": states}

  def go():
    t = time.perf_counter()
    out, metrics = compiled(holder["states"])
    jax.block_until_ready(out)
    holder["states"] = out
    return (time.perf_counter() - t) / chunk

  go()   # first call after compile: allocations, thread pool warm-up
  return dict(compile_s=compile_s, go=go, agent=agent, holder=holder,
              env_steps=config.num_envs * config.num_steps * seeds,
              ref_steps=(config.reference_envs * config.num_steps * seeds
                         if regularizer != "none" else 0))


# ------------------------------------------------------------------------ official


def official(args: list[str], timeout: int = 600) -> dict:
  driver = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "_orpo_official_driver.py")
  env = dict(os.environ)
  if ARGS.official_overlay:
    env["PYTHONPATH"] = os.pathsep.join(
        [ARGS.official_overlay] + [p for p in [env.get("PYTHONPATH", "")] if p])
  if ARGS.official_threads:
    env["OMP_NUM_THREADS"] = str(ARGS.official_threads)
  p = subprocess.run([ARGS.official_python, driver, ARGS.official_path] + args,
                     capture_output=True, text=True, env=env, timeout=timeout)
  line = [l for l in p.stdout.splitlines() if l.startswith("OFFICIAL_RESULT ")]
  if p.returncode or not line:
    raise RuntimeError(f"official run {args} failed (exit {p.returncode}):\n"
                       f"{(p.stdout + p.stderr)[-4000:]}")
  return json.loads(line[-1].split(" ", 1)[1])


OFFICIAL_TRAIN = {
    # name: (ALGO, REGULARIZER, sacred overrides)
    "sqrt_chi2": ("ORPO", "sqrt_chi2", {}),
    "sqrt_chi2, 2x64": ("ORPO", "sqrt_chi2", {"width": 64, "depth": 2,
                                               "discriminator_width": 64}),
    "none": ("PPO", "none", {}),
}


def main():
  t_start = time.perf_counter()
  devices = jax.devices()
  print(f"jax {jax.__version__}, backend {devices[0].platform}, {len(devices)} device(s), "
        f"{os.cpu_count()} cores, python {sys.version.split()[0]}", flush=True)
  use_official = bool(ARGS.official_path)
  official_train = use_official and not ARGS.no_official_train
  official_kinds = [k for k in OFFICIAL_TRAIN if ARGS.official_small or "2x64" not in k]

  print("compiling rlcore env and ORPO updates ...", flush=True)
  env_run = {s: our_env_runner(s) for s in SEEDS}
  train_run = {(r, s): our_train_runner(r, s) for r in REGULARIZERS for s in SEEDS}
  for (r, s), v in train_run.items():
    print(f"  update {r} {s} seed(s): compile {v['compile_s']:.1f} s", flush=True)

  env_times = {s: [] for s in SEEDS}
  train_times = {k: [] for k in train_run}
  off_env, off_train, off_meta = [], {k: [] for k in official_kinds}, {}
  num_envs = orpo.default_config().num_envs
  for rep in range(ARGS.reps):
    for s in SEEDS:
      env_times[s].extend(env_run[s]["go"](rep * 10 + i) for i in range(5))
    if use_official:
      res = official(["env", str(num_envs), str(ARGS.env_steps), "3"])
      off_env.extend(res["seconds"])
      off_meta["env"] = res
    print(f"rep {rep}: env done", flush=True)
    for kind in official_kinds if official_train else [None]:
      for (r, s), v in train_run.items():
        if kind is None or OFFICIAL_TRAIN[kind][1] == r:
          train_times[(r, s)].extend(v["go"]() for _ in range(ARGS.calls))
      if kind is not None:
        algo, reg, overrides = OFFICIAL_TRAIN[kind]
        res = official(["train", algo, reg, str(num_envs), "100", "200",
                        str(ARGS.official_iters), json.dumps(overrides)])
        off_train[kind].extend(res["seconds"][1:])
        off_meta[kind] = res
        print(f"rep {rep}: official {kind}: build {res['build_seconds']:.1f} s, iterations "
              f"{', '.join(f'{x:.2f}' for x in res['seconds'])} s", flush=True)
    print(f"rep {rep}: rlcore updates: " + ", ".join(
        f"{r}/{s}: {train_times[(r, s)][-1]:.3f} s" for (r, s) in train_run), flush=True)

  # Exact tabular evaluation (one run's state): first call (jit of the policy table and
  # the reference's occupancy) apart, then the steady state.
  agent = train_run[("sqrt_chi2", SEEDS[0])]["agent"]
  run0 = jax.tree.map(lambda x: x[0], train_run[("sqrt_chi2", SEEDS[0])]["holder"]["states"])
  t = time.perf_counter()
  agent.evaluate(run0)
  eval_first = time.perf_counter() - t
  eval_times = []
  for _ in range(3):
    t = time.perf_counter()
    ev = agent.evaluate(run0)
    eval_times.append(time.perf_counter() - t)
  from rlcore.envs import tomato
  mdp = tomato.TomatoMDP(tomato.TomatoEnv())
  policy = mdp.uniform_policy()
  mdp_times = []
  for _ in range(3):
    t = time.perf_counter()
    occ = mdp.occupancy(policy)
    mdp.returns(policy)
    tomato.divergences(occ, occ)
    mdp_times.append(time.perf_counter() - t)

  med = lambda xs: float(np.median(xs)) if xs else float("nan")
  rows = []
  if off_env:
    from rlcore.envs import tomato as tomato_env
    m = off_meta["env"]
    same = list(m["board"]) == list(tomato_env.LEVEL_4) and m["accessible"] == 26
    print(f"official board {'==' if same else '!='} envs/tomato.py LEVEL_4; official "
          f"torch {m['torch']} ({m['torch_threads']} thread(s)), numpy {m['numpy']}, "
          f"stand-ins for {', '.join(m['stubs']) or 'nothing'}")
    if not same:
      print("WARNING: the official board differs:\n" + "\n".join(m["board"]))
  print("\nTomato level 4 (\"rhard\", 10x10, 26 cells, 9 tomatoes), horizon 100, proxy "
        "reward, random actions")
  print("| env | seeds x envs | compile s | steps per call | median s | env steps/s | "
        "ratio |")
  print("|---|---:|---:|---:|---:|---:|---:|")
  off_sps = (off_meta["env"]["steps"] / med(off_env)) if off_env else float("nan")
  for s in SEEDS:
    e = env_run[s]
    sps = e["steps"] / med(env_times[s])
    rows.append(dict(part="env", impl="rlcore", seeds=s, compile_s=e["compile_s"],
                     seconds=med(env_times[s]), steps_per_s=sps,
                     ratio=sps / off_sps if off_env else None))
    print(f"| rlcore jit(vmap(scan)) | {s} x {num_envs} | {e['compile_s']:.2f} | "
          f"{e['steps']:,} | {med(env_times[s]):.4f} | {sps:,.0f} | "
          + (f"{rows[-1]['ratio']:.1f}x |" if off_env else "- |"))
  if off_env:
    steps = off_meta["env"]["steps"]
    rows.append(dict(part="env", impl="official", seeds=1, seconds=med(off_env),
                     steps_per_s=off_sps))
    print(f"| official Tomato_Environment, python loop | 1 x {num_envs} | - | {steps:,} | "
          f"{med(off_env):.4f} | {off_sps:,.0f} | |")

  print("\nOne training update: 16 envs x 100 steps of the current policy (+ 16 x 100 of "
        "the reference with a discriminator), 8 epochs x 8 minibatches")
  print("| regularizer | impl | model | seeds | compile s | s / update | "
        "current-policy env steps/s | ratio (official s x seeds / rlcore s) |")
  print("|---|---|---|---:|---:|---:|---:|---:|")
  for r in REGULARIZERS:
    peers = [k for k in official_kinds if OFFICIAL_TRAIN[k][1] == r and off_train[k]]
    for s in SEEDS:
      v = train_run[(r, s)]
      secs = med(train_times[(r, s)])
      ratios = {k: med(off_train[k]) * s / secs for k in peers}
      rows.append(dict(part="update", impl="rlcore", regularizer=r, seeds=s,
                       compile_s=v["compile_s"], seconds=secs,
                       steps_per_s=v["env_steps"] / secs, ratios=ratios))
      rtxt = "; ".join(f"{ratios[k]:.1f}x vs {'2x64' if '2x64' in k else '4x512'}"
                       for k in peers) or "-"
      print(f"| {r} | rlcore | 2x64 | {s} | {v['compile_s']:.1f} | {secs:.3f} | "
            f"{v['env_steps'] / secs:,.0f} | {rtxt} |")
    for k in peers:
      m = off_meta[k]
      secs = med(off_train[k])
      cur = m["train_batch_size"] // (2 if OFFICIAL_TRAIN[k][0] == "ORPO" else 1)
      model = "x".join([str(len(m["fcnet_hiddens"])), str(m["fcnet_hiddens"][0])])
      algo = "RLlib ORPO" if OFFICIAL_TRAIN[k][0] == "ORPO" else "RLlib PPO"
      rows.append(dict(part="update", impl=f"official {k}", regularizer=r, seeds=1,
                       seconds=secs, steps_per_s=cur / secs, build_s=m["build_seconds"],
                       iterations=len(off_train[k]), model=model))
      print(f"| {r} | official ({algo}) | {model} | 1 | build {m['build_seconds']:.1f} | "
            f"{secs:.3f} | {cur / secs:,.0f} | |")
  print(f"\nExact tabular evaluation (TomatoMDP, {mdp.num_states:,} states): "
        f"agent.evaluate (policy table + exact returns + occupancy χ²/KL/TV) "
        f"{med(eval_times) * 1e3:.0f} ms (first call {eval_first * 1e3:.0f} ms); "
        f"occupancy + returns + divergences of a fixed policy {med(mdp_times) * 1e3:.0f} ms. "
        f"(exact χ² of this run: {ev['exact_chi2']:.3g})")
  print(f"total {time.perf_counter() - t_start:.0f} s")
  if ARGS.json:
    with open(ARGS.json, "w") as f:
      json.dump(dict(rows=rows, eval_ms=med(eval_times) * 1e3, eval_first_ms=eval_first * 1e3,
                     mdp_ms=med(mdp_times) * 1e3,
                     official={k: {kk: vv for kk, vv in v.items() if kk != "board"}
                               for k, v in off_meta.items()}), f, indent=1)


if __name__ == "__main__":
  main()
