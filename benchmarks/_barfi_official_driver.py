"""Runs the official BARFI code (Gupta et al. 2023) for one seed and prints its time.

Called by `benchmarks/barfi.py` in a subprocess, with the current directory set to an
exported copy of the official `barfi-cp/` folder (whose `src/` it imports; nothing
of it is copied here). Usage:

    python _barfi_official_driver.py AGENT SEED EPISODES JSON_OVERRIDES

Prints one line `OFFICIAL_RESULT {"seconds": ..., "returns": [...]}` on stderr (the
official `Config` replaces sys.stdout with its logger).

Shims, applied here without editing the official files:
- `PyFixedReps.TileCoder` is imported by the official `Basis.py` at module level for a
  tile-coding basis the Fourier-basis runs never build; when the package is missing an
  empty stand-in module is registered.
- gym 0.25's passive env checker reads `np.bool8`, which numpy 2 removed; it is set to
  `np.bool_` when missing.
- gym >= 0.26 dropped `Env.seed`; the official CartPole envs call it once at start-up.
  When missing it is replaced by a call that seeds the env's `np_random` the same way.
"""

import json
import os
import sys
import time
import types


def main():
  agent, seed, episodes, overrides = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
  sys.path.insert(0, os.getcwd())
  try:
    import PyFixedReps.TileCoder  # noqa: F401
  except ImportError:
    pkg = types.ModuleType("PyFixedReps")
    tc = types.ModuleType("PyFixedReps.TileCoder")
    tc.TileCoder = None
    pkg.TileCoder = tc
    sys.modules["PyFixedReps"], sys.modules["PyFixedReps.TileCoder"] = pkg, tc
  import numpy as np
  if not hasattr(np, "bool8"):
    np.bool8 = np.bool_
  import gym
  import gym.utils.seeding
  if not hasattr(gym.Env, "seed"):
    def seed(self, s=None):
      self.np_random, _ = gym.utils.seeding.np_random(s)
      return [s]
    for env_cls in (gym.Env, gym.Wrapper):
      env_cls.seed = seed
  import torch
  from collections import namedtuple
  from src.config import Config
  from src.solver import Solver

  exp = dict(agent=agent, env_name="CartPoleBadAuxDebug", optim="rmsprop",
             max_episodes=episodes, gamma=0.99, actor_reg=0.25, gamma_L2=0.25, reward_L2=0.0,
             reward_lr=1e-3, gamma_lr=1e-3, actor_lr=1e-3, state_lr=0.0, critic_lr=0.0,
             batch_size=1, buffer_size=10000, delta=3, Neumann_loops=5, Neumann_alpha=5e-4,
             approx="Neumann", raw_basis=False, NN_basis_dim="16", basis="fourier", seed=seed)
  exp.update(json.loads(overrides))
  # main.py's init_dict
  exp.update(debug=True, save_model=True, log_output="term_file", save_count=100,
             experiment="Data", folder_suffix="Default", restore=False, gpu=False)
  torch.set_num_threads(1)          # as the official main.py
  args = namedtuple("experiment", exp.keys())(*exp.values())
  config = Config(args, exp)
  solver = Solver(config=config)
  t = time.perf_counter()
  returns, *_ = solver.train(max_episodes=episodes)
  seconds = time.perf_counter() - t
  sys.stderr.write("OFFICIAL_RESULT " + json.dumps(dict(seconds=seconds,
                                                        returns=[float(r) for r in returns])) + "\n")


if __name__ == "__main__":
  main()
