"""TD-JEPA speed: rlcore's update step against the official PyTorch implementation.

Peer: the official code of Bagatella et al., "TD-JEPA: Latent-predictive Representations
for Zero-Shot Reinforcement Learning" (https://arxiv.org/abs/2510.00739,
github.com/marbaga/td_jepa_public, CC BY-NC 4.0: run from a local checkout given as
`--official_path`, never copied), in its own interpreter (`--official_python`, a venv with
torch and the official dependencies) through `benchmarks/_td_jepa_official_driver.py`, one
subprocess per repetition and size.

One update step is what the official `TDJEPAAgent.update` does: sample a batch from the
dataset, mixed task latents, the TD-JEPA loss (asymmetric: two encoders, two predictor
ensembles, EMA targets, orthonormality terms) with one Adam step per parameter group,
the running ψ covariance, the TD3-style actor step, the EMA updates. Ours is
`rlcore.agents.td_jepa.make_learner(...).update`, `--chunk` steps per jitted `lax.scan`
call (the runner's shape), compile (lower + compile) timed apart; for information also
5 seeds vmapped in one call (`--seeds`). Sizes:

* `paper`: the DMC proprioceptive settings of the official launcher: observation 24
  (walker), action 6, φ one linear layer to 256 + Norm, ψ 2 × 256 to 50 + Norm,
  predictors 1024 wide (2 embedding layers, 1 hidden, ensemble of 2), actor 1024,
  batch 1024.
* `small`: ours (`configs/td_jepa_pointmass.py`): observation 2, action 2, φ 2 × 128 to 32,
  ψ 2 × 128 to 16, predictors and actor 256, batch 256.

Contenders run interleaved (each repetition: ours, then the official) for `--reps`
repetitions; tables give medians of updates/s and `ratio` = ours / official (above 1:
rlcore is faster).

    python benchmarks/td_jepa.py --official_path=/path/to/td_jepa_public \\
        --official_python=/path/to/venv/bin/python
    python benchmarks/td_jepa.py                          # rlcore only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def parse():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_path", "--official-path", default="",
                 help="checkout of marbaga/td_jepa_public (holding metamotivo/); empty: "
                 "rlcore only")
  p.add_argument("--official_python", "--official-python", default=sys.executable,
                 help="python with the official code's dependencies")
  p.add_argument("--official_threads", "--official-threads", type=int, default=2,
                 help="torch threads of the official process")
  p.add_argument("--official_overlay", "--official-overlay", default="",
                 help="folder put first on the official subprocess's PYTHONPATH")
  p.add_argument("--sizes", default="small,paper")
  p.add_argument("--seeds", type=int, default=5, help="seeds of the vmapped measurement "
                 "(0: none)")
  p.add_argument("--reps", type=int, default=3)
  p.add_argument("--chunk", type=int, default=20, help="updates per timed call (ours)")
  p.add_argument("--steps", type=int, default=20,
                 help="timed official updates per repetition (per size: paper / 4)")
  p.add_argument("--json", default="", help="write the results here")
  return p.parse_args()


ARGS = parse()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from rlcore.agents import td_jepa  # noqa: E402
from rlcore.envs import ActionSpec  # noqa: E402

SIZES = {
    "paper": dict(obs_dim=24, action_dim=6, phi_dim=256, psi_dim=50, phi_hidden=(),
                  psi_hidden=(256, 256), pred_hidden=1024, actor_hidden=1024, batch=1024),
    "small": dict(obs_dim=2, action_dim=2, phi_dim=32, psi_dim=16, phi_hidden=(128, 128),
                  psi_hidden=(128, 128), pred_hidden=256, actor_hidden=256, batch=256),
}
DATA_SIZE = 100_000


def config_for(size: dict):
  c = td_jepa.default_config()
  c.phi_dim, c.psi_dim = size["phi_dim"], size["psi_dim"]
  c.phi_hidden, c.psi_hidden = size["phi_hidden"], size["psi_hidden"]
  c.predictor_hidden, c.actor_hidden = size["pred_hidden"], size["actor_hidden"]
  c.batch_size = size["batch"]
  c.gamma = 0.98
  return c


def random_data(size: dict) -> dict:
  rng = np.random.default_rng(0)
  obs = rng.normal(size=(DATA_SIZE, size["obs_dim"])).astype(np.float32)
  return dict(observation=obs,
              action=rng.uniform(-1, 1, (DATA_SIZE, size["action_dim"])).astype(np.float32),
              next_observation=obs + 0.1 * rng.normal(size=obs.shape).astype(np.float32),
              terminated=rng.random(DATA_SIZE) < 0.01)


def ours(size_name: str, seeds: int):
  """(compile_s, go) where go() times one chunk and returns updates/s of one run."""
  size = SIZES[size_name]
  a = size["action_dim"]
  learner = td_jepa.make_learner(
      config_for(size), (size["obs_dim"],),
      ActionSpec("continuous", shape=(a,), low=-np.ones(a), high=np.ones(a)),
      random_data(size))
  chunk = ARGS.chunk
  run = lambda s: jax.lax.scan(lambda x, _: learner.update(x), s, None, chunk)
  if seeds:
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    state = jax.jit(jax.vmap(lambda k: learner.init(k)))(keys)
    run = jax.vmap(run)
  else:
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))
  t = time.perf_counter()
  compiled = jax.jit(run).lower(state).compile()
  compile_s = time.perf_counter() - t
  holder = {"state": jax.block_until_ready(compiled(state)[0])}   # warm-up call

  def go():
    t = time.perf_counter()
    out, _ = compiled(holder["state"])
    jax.block_until_ready(out)
    holder["state"] = out
    return chunk * max(seeds, 1) / (time.perf_counter() - t)

  return compile_s, go


def official(size_name: str) -> dict:
  size = SIZES[size_name]
  driver = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "_td_jepa_official_driver.py")
  steps = ARGS.steps if size_name == "small" else max(ARGS.steps // 4, 3)
  args = [ARGS.official_python, driver, ARGS.official_path,
          "--obs_dim", size["obs_dim"], "--action_dim", size["action_dim"],
          "--phi_dim", size["phi_dim"], "--psi_dim", size["psi_dim"],
          "--phi_hidden_layers", len(size["phi_hidden"]),
          "--phi_hidden_dim", (size["phi_hidden"] or (256,))[0],
          "--psi_hidden_layers", len(size["psi_hidden"]),
          "--psi_hidden_dim", (size["psi_hidden"] or (256,))[0],
          "--pred_hidden", size["pred_hidden"], "--actor_hidden", size["actor_hidden"],
          "--batch", size["batch"], "--steps", steps, "--warmup", 3,
          "--threads", ARGS.official_threads]
  env = dict(os.environ, OMP_NUM_THREADS=str(ARGS.official_threads))
  if ARGS.official_overlay:
    env["PYTHONPATH"] = os.pathsep.join(
        [ARGS.official_overlay] + [p for p in [env.get("PYTHONPATH", "")] if p])
  out = subprocess.run([str(x) for x in args], capture_output=True, text=True, env=env,
                       timeout=1800)
  if out.returncode:
    raise RuntimeError(f"official driver failed ({out.returncode}):\n{out.stderr[-3000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  results = {"device": jax.devices()[0].device_kind, "jax": jax.__version__, "sizes": {}}
  for name in ARGS.sizes.split(","):
    print(f"== {name}: {SIZES[name]}", flush=True)
    compile_1, go_1 = ours(name, 0)
    compile_v, go_v = ours(name, ARGS.seeds) if ARGS.seeds else (None, None)
    rows = {"ours_1": [], "ours_vmapped": [], "official": []}
    for rep in range(ARGS.reps):
      rows["ours_1"].append(go_1())
      if go_v:
        rows["ours_vmapped"].append(go_v())
      if ARGS.official_path:
        rows["official"].append(official(name)["updates_per_s"])
      print(f"  rep {rep}: " + ", ".join(f"{k} {v[-1]:.1f}/s" for k, v in rows.items() if v),
            flush=True)
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    res = dict(median_updates_per_s=med, all=rows, compile_s=compile_1,
               compile_vmapped_s=compile_v, seeds=ARGS.seeds)
    if "official" in med:
      res["ratio_1"] = med["ours_1"] / med["official"]
      if "ours_vmapped" in med:
        res["ratio_vmapped"] = med["ours_vmapped"] / med["official"]
    results["sizes"][name] = res
    print(json.dumps({name: {k: v for k, v in res.items() if k != "all"}}, indent=1),
          flush=True)
  if ARGS.json:
    with open(ARGS.json, "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  main()
