"""Times the official TD-JEPA update (Bagatella et al.) on the CPU, in its own python.

Called by `benchmarks/td_jepa.py` in a subprocess, with a checkout of the official
repository (github.com/marbaga/td_jepa_public, CC BY-NC 4.0; the folder holding
`metamotivo/`) as the first argument; nothing of it is copied here. Usage:

    python _td_jepa_official_driver.py OFFICIAL_PATH [--obs_dim 24 --action_dim 6
        --phi_dim 256 --psi_dim 50 --phi_hidden_layers 0 --phi_hidden_dim 256
        --psi_hidden_layers 2 --psi_hidden_dim 256 --pred_hidden 1024 --actor_hidden 1024
        --batch 1024 --symmetric 0 --steps 20 --warmup 3 --threads 1 --compile 0]

The defaults are the DMC proprioceptive settings of the official launcher
(`scripts/train/proprio/launch_td_jepa_dmc.py`: φ one linear layer to 256 + Norm, ψ
2 × 256 to 50 + Norm, predictors `ForwardArchi` 1024 wide with 2 embedding layers, 1 hidden
layer and an ensemble of 2, the "simple" actor 1024 wide, batch 1024, discount 0.98,
orthonormality coefficients 0.1, EMA τ 0.001) with the walker's observation (24) and
action (6) sizes. The agent is the official `TDJEPAAgentConfig(...).build(obs_space,
action_dim)` on the CPU; its replay buffer, `{"train": DictBuffer}`, holds 100 000
random transitions (1% terminated). One timed step is one call of the official
`agent.update(replay_buffer, step)`, which also samples its batch from the buffer: the
TD-JEPA loss and four Adam steps, the ψ covariance, the actor step and the EMA updates.
`--compile 1` wraps the update functions in `torch.compile` as the official
`compile=True` does (mode "reduce-overhead"). Prints one JSON line.
"""

import argparse
import json
import sys
import time


def main():
  p = argparse.ArgumentParser()
  p.add_argument("official_path")
  for name, default in (("obs_dim", 24), ("action_dim", 6), ("phi_dim", 256), ("psi_dim", 50),
                        ("phi_hidden_layers", 0), ("phi_hidden_dim", 256),
                        ("psi_hidden_layers", 2), ("psi_hidden_dim", 256),
                        ("pred_hidden", 1024), ("actor_hidden", 1024), ("batch", 1024),
                        ("symmetric", 0), ("steps", 20), ("warmup", 3), ("threads", 1),
                        ("compile", 0), ("data", 100_000)):
    p.add_argument(f"--{name}", type=int, default=default)
  args = p.parse_args()
  sys.path.insert(0, args.official_path)

  import gymnasium
  import numpy as np
  import torch

  torch.set_num_threads(args.threads)
  from metamotivo.agents.td_jepa.agent import (TDJEPAAgentConfig,
                                               TDJEPAAgentTrainConfig)
  from metamotivo.agents.td_jepa.model import TDJEPAModelConfig
  from metamotivo.buffers.transition import DictBuffer

  archi = {
      "phi_dim": args.phi_dim, "psi_dim": args.psi_dim, "norm_z": True,
      "phi_predictor": {"hidden_dim": args.pred_hidden, "hidden_layers": 1},
      "psi_predictor": {"hidden_dim": args.pred_hidden, "hidden_layers": 1},
      "actor": {"hidden_dim": args.actor_hidden, "hidden_layers": 1, "name": "simple"},
      "phi_mlp_encoder": {"hidden_dim": args.phi_hidden_dim,
                          "hidden_layers": args.phi_hidden_layers, "norm": True},
      "psi_mlp_encoder": {"hidden_dim": args.psi_hidden_dim,
                          "hidden_layers": args.psi_hidden_layers, "norm": True},
  }
  model = TDJEPAModelConfig(device="cpu", archi=archi, symmetric=bool(args.symmetric))
  train = TDJEPAAgentTrainConfig(batch_size=args.batch, discount=0.98, phi_ortho_coef=0.1,
                                 psi_ortho_coef=0.1, encoder_target_tau=0.001,
                                 predictor_target_tau=0.001)
  cfg = TDJEPAAgentConfig(model=model, train=train, compile=bool(args.compile))
  obs_space = gymnasium.spaces.Box(-np.inf, np.inf, (args.obs_dim,), np.float32)
  agent = cfg.build(obs_space, args.action_dim)

  rng = np.random.default_rng(0)
  n = args.data
  obs = rng.normal(size=(n, args.obs_dim)).astype(np.float32)
  buffer = DictBuffer(capacity=n + 1, device="cpu")
  buffer.extend({
      "observation": obs,
      "action": rng.uniform(-1, 1, (n, args.action_dim)).astype(np.float32),
      "next": {"observation": obs + 0.1 * rng.normal(size=obs.shape).astype(np.float32),
               "terminated": (rng.random((n, 1)) < 0.01)},
  })
  replay = {"train": buffer}

  t = time.perf_counter()
  for i in range(args.warmup):
    agent.update(replay, i)
  warmup_s = time.perf_counter() - t
  t = time.perf_counter()
  for i in range(args.steps):
    agent.update(replay, args.warmup + i)
  dt = (time.perf_counter() - t) / args.steps
  print(json.dumps({"updates_per_s": 1.0 / dt, "seconds_per_update": dt, "warmup_s": warmup_s,
                    "sizes": vars(args), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "compile": bool(args.compile)}))


if __name__ == "__main__":
  main()
