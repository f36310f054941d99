"""Times the official TD-JEPA update (Bagatella et al.) on the CPU, in its own python.

Called by `benchmarks/td_jepa.py` in a subprocess, with a checkout of the official
repository (github.com/marbaga/td_jepa_public, CC BY-NC 4.0; the folder holding
`metamotivo/`) as the first argument, put first on `sys.path`; nothing of it is copied
here. Usage:

    python _td_jepa_official_driver.py OFFICIAL_PATH [--obs_dim 24 --action_dim 6
        --phi_dim 256 --psi_dim 50 --phi_hidden_layers 0 --phi_hidden_dim 256
        --psi_hidden_layers 2 --psi_hidden_dim 256 --pred_hidden 1024 --actor_hidden 1024
        --batch 1024 --symmetric 0 --steps 20 --warmup 3 --threads 1 --compile 0
        --data 100000 --physics_dim 0 --print_model 0]

The defaults are the DMC proprioceptive settings of the official launcher
(`scripts/train/proprio/launch_td_jepa_dmc.py`, its `BASE_CFG`): φ encoder one linear
layer to 256 + Norm, ψ encoder 2 × 256 (Linear-LayerNorm-Tanh, Linear-ReLU) to 50 + Norm,
both predictors `ForwardArchi` 1024 wide (2 embedding layers, 1 hidden layer, an ensemble
of 2), the "simple" actor 1024 wide with std 0.2 (clip 0.3), batch 1024, discount 0.98,
every learning rate 1e-4, orthonormality coefficients 0.1, EMA τ 0.001 for encoders and
predictors, train_goal_ratio 0.5, identity observation normaliser; with the walker's
observation (24) and action (6) sizes. `--symmetric 1` is the official one-encoder
variant (`symmetric=True`: only the φ encoder, φ predictor and actor; z has φ's size, the
ψ flags are ignored). As the official `train.py`, `torch.set_float32_matmul_precision
("high")` (no effect on the CPU).

The agent is the official `TDJEPAAgentConfig(...).build(Box(obs_dim), action_dim)` on
the CPU (torch seeded 0). The replay buffer is what the official trainer hands the agent
for DMC state data, `{"train": DictBuffer}`, filled with `--data` random transitions
(keys `observation`, `action`, `next/observation`, `next/terminated` (1% True) and, with
`--physics_dim` > 0, float64 `physics` and `next/physics` as the DMC datasets carry;
every key is gathered at each sample).

Timed: `--steps` consecutive calls of the official `agent.update(replay_buffer, step)`
after `--warmup` untimed ones (`time.perf_counter` around the whole loop; CPU ops are
synchronous). One call samples its batch from the buffer (`DictBuffer.sample`: uniform
indices with replacement, a gather of every key) — part of the official update step,
hence timed — then samples the task latents (half the batch replaced by the ψ encodings
of permuted next observations), the TD-JEPA loss (target networks, both predictor
ensembles, the orthonormality terms) with one backward pass and four Adam steps (two in
the symmetric variant), the running ψ covariance, the actor loss with its own backward
pass and Adam step, and the EMA updates of the target encoders and predictors.

`--compile 1` sets the official `compile=True`: `torch.compile(mode="reduce-overhead")` of
the update functions (CUDA graphs do not apply on the CPU: Inductor's C++ code). The first
warm-up call, which compiles, is reported apart (`first_update_s`). If building or
updating fails (e.g. compilation), the traceback goes to stderr, the JSON line carries
`"error"` and the exit status is 1.

Torch uses `--threads` intra-op threads (`torch.set_num_threads`; the caller also sets
OMP_NUM_THREADS). On a 2-core machine that other processes also load, 2 threads measured
several times slower than 1 (OpenMP threads wait on each other at every op); on the quiet
machine 2 threads were faster (paper sizes 0.91 vs 0.54 updates/s, ours 29.6 vs 18.4,
2026-12-04). Everything the official code prints goes to stderr; stdout has exactly
one JSON line: updates_per_s, seconds_per_update, warmup_s, first_update_s, sizes,
params (trainable parameters per network, targets excluded), torch, threads, compile.

Environment: a python 3.11 venv with the CPU build of torch and the official code's
imports on this path: pydantic, gymnasium, numpy, safetensors, h5py, tqdm (the package
`metamotivo.agents` imports every agent; tyro, wandb, ogbench, exca, dm_control and
pandas are not imported on this path). No stub or overlay is needed.
"""

import argparse
import contextlib
import json
import sys
import time
import traceback


def parse():
  p = argparse.ArgumentParser()
  p.add_argument("official_path")
  for name, default in (("obs_dim", 24), ("action_dim", 6), ("phi_dim", 256), ("psi_dim", 50),
                        ("phi_hidden_layers", 0), ("phi_hidden_dim", 256),
                        ("psi_hidden_layers", 2), ("psi_hidden_dim", 256),
                        ("pred_hidden", 1024), ("actor_hidden", 1024), ("batch", 1024),
                        ("symmetric", 0), ("steps", 20), ("warmup", 3), ("threads", 1),
                        ("compile", 0), ("data", 100_000), ("physics_dim", 0),
                        ("print_model", 0)):
    p.add_argument(f"--{name}", type=int, default=default)
  args = p.parse_args()
  if args.phi_hidden_layers == 1 or args.psi_hidden_layers == 1:
    # The official BackwardMap with one hidden layer is Linear-LayerNorm-Tanh, Linear.
    print("note: 1 hidden layer is the official Linear-LayerNorm-Tanh then the output "
          "layer", file=sys.stderr)
  return args


def build(args):
  import gymnasium
  import numpy as np
  import torch
  from metamotivo.agents.td_jepa.agent import (TDJEPAAgentConfig,
                                               TDJEPAAgentTrainConfig)
  from metamotivo.agents.td_jepa.model import TDJEPAModelConfig
  from metamotivo.buffers.transition import DictBuffer

  archi = {
      "phi_dim": args.phi_dim, "psi_dim": args.psi_dim, "norm_z": True,
      "phi_predictor": {"name": "ForwardArchi", "hidden_dim": args.pred_hidden,
                        "hidden_layers": 1},
      "psi_predictor": {"name": "ForwardArchi", "hidden_dim": args.pred_hidden,
                        "hidden_layers": 1},
      "actor": {"hidden_dim": args.actor_hidden, "hidden_layers": 1, "name": "simple"},
      "phi_mlp_encoder": {"hidden_dim": args.phi_hidden_dim,
                          "hidden_layers": args.phi_hidden_layers, "norm": True},
      "psi_mlp_encoder": {"hidden_dim": args.psi_hidden_dim,
                          "hidden_layers": args.psi_hidden_layers, "norm": True},
  }
  model = TDJEPAModelConfig(device="cpu", archi=archi, symmetric=bool(args.symmetric),
                            obs_normalizer={"name": "IdentityNormalizerConfig"})
  train = TDJEPAAgentTrainConfig(batch_size=args.batch, discount=0.98, phi_ortho_coef=0.1,
                                 psi_ortho_coef=0.1, encoder_target_tau=0.001,
                                 predictor_target_tau=0.001)
  cfg = TDJEPAAgentConfig(model=model, train=train, compile=bool(args.compile))
  obs_space = gymnasium.spaces.Box(-np.inf, np.inf, (args.obs_dim,), np.float32)
  agent = cfg.build(obs_space, args.action_dim)

  rng = np.random.default_rng(0)
  n = args.data
  obs = rng.normal(size=(n, args.obs_dim)).astype(np.float32)
  data = {
      "observation": obs,
      "action": rng.uniform(-1, 1, (n, args.action_dim)).astype(np.float32),
      "next": {"observation": obs + 0.1 * rng.normal(size=obs.shape).astype(np.float32),
               "terminated": rng.random((n, 1)) < 0.01},
  }
  if args.physics_dim:
    data["physics"] = rng.normal(size=(n, args.physics_dim))
    data["next"]["physics"] = rng.normal(size=(n, args.physics_dim))
  # As the official loader: capacity = the number of transitions, one extend.
  buffer = DictBuffer(capacity=n, device="cpu")
  buffer.extend(data)
  assert len(buffer) == n
  return agent, {"train": buffer}


def count_params(agent):
  m = agent._model
  names = ["_phi_mlp_encoder", "_phi_predictor", "_actor"]
  if not agent.cfg.model.symmetric:
    names += ["_psi_mlp_encoder", "_psi_predictor"]
  out = {k.lstrip("_"): sum(p.numel() for p in getattr(m, k).parameters()) for k in names}
  out["total"] = sum(out.values())
  return out


def main():
  args = parse()
  sys.path.insert(0, args.official_path)
  import torch

  torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  torch.set_float32_matmul_precision("high")
  sizes = {k: v for k, v in vars(args).items() if k != "official_path"}
  result = {"sizes": sizes, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "compile": bool(args.compile)}
  stage = "build"
  try:
    with contextlib.redirect_stdout(sys.stderr):
      agent, replay = build(args)
      result["params"] = count_params(agent)
      if args.print_model:
        print(agent._model)
      t = time.perf_counter()
      for i in range(args.warmup):
        stage = "first update" if i == 0 else "warm-up"
        agent.update(replay, i)
        if i == 0:
          result["first_update_s"] = time.perf_counter() - t
      result["warmup_s"] = time.perf_counter() - t
      stage = "timed updates"
      t = time.perf_counter()
      for i in range(args.steps):
        metrics = agent.update(replay, args.warmup + i)
      dt = (time.perf_counter() - t) / args.steps
      stage = "metrics"
      loss = float(metrics["total_loss"].detach())
      if loss != loss:
        raise FloatingPointError("official total_loss is NaN")
  except Exception as e:  # noqa: BLE001 (reported, exit status 1)
    traceback.print_exc()
    result["error"] = f"{stage} failed ({'torch.compile' if args.compile else 'eager'}): " \
                      f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    print(json.dumps(result), flush=True)
    sys.exit(1)
  result.update(updates_per_s=1.0 / dt, seconds_per_update=dt, last_total_loss=loss)
  print(json.dumps(result), flush=True)


if __name__ == "__main__":
  main()
