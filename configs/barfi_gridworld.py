"""BARFI on the continuous GridWorld: heuristic quality x method, 25 seeds vmapped.

Sweep: `aux` in {good, bad (the +50 distractor), none} x five methods (each a listed
point): REINFORCE on the primary reward only, naive r_p + r_aux, potential-based
shaping with r_aux as the potential, BARFI first-order and BARFI Neumann (K = 5,
alpha = 5e-4). 1998 episodes per run (the official 2000 update after every third
episode; the last two add nothing), the official GridWorld settings (RMSprop, reward
and discount lr 5e-3, entropy 0.25, delta 3, inner_mul 5, first_mul 150, hess_mul 15,
batch 1) except each method's actor lr and penalties (METHODS below). Seeds: indices
0-4 chose the settings, 5-24 are reported.

Launch:

    python experiments/main.py --config=configs/barfi_gridworld.py --workdir=runs/barfi_gw
    python experiments/barfi_report.py --workdir=runs/barfi_gw --seeds=5:25 \
        --png=results/barfi_gridworld.png                       # tables and curves
    python experiments/main.py --config=configs/barfi_gridworld.py:matched_lr \
        --workdir=runs/barfi_gw_matched                         # baselines at actor lr 1e-3
    python experiments/main.py --config=configs/barfi_gridworld.py \
        --config.sweep.aux='("bad",)' --config.num_seeds=5     # one heuristic, fewer seeds

Runtime on a 2-core CPU: 7 min 39 s for the whole sweep (15 groups of 25 seeds, each
compiled once: 8-25 s; training 5-30 s per group), measured with another job on the CPU.

Results: results/barfi.md
"""

import ml_collections

from rlcore import experiment
from rlcore.agents import barfi

# One setting per method, chosen on seeds 0-4 (results/barfi.md, "How the settings were
# chosen"): the best mean over the three heuristics of the last-10% episode return.
METHODS = [
    {"_name": "primary_only", "outer": "none", "reward": "primary", "actor_lr": 5e-3},
    {"_name": "naive", "outer": "none", "reward": "naive", "actor_lr": 1e-3},
    {"_name": "potential", "outer": "none", "reward": "potential", "actor_lr": 5e-3},
    {"_name": "barfi_first_order", "outer": "first_order", "reward": "aligned",
     "actor_lr": 1e-3, "gamma_l2": 0.0625, "reward_l2": 0.0625},
    {"_name": "barfi_neumann", "outer": "neumann", "reward": "aligned",
     "actor_lr": 1e-3, "gamma_l2": 1.0, "reward_l2": 0.0625},
]


def get_config(arg=None):
  """`arg`: "" (each method at its chosen setting) or "matched_lr": the methods chosen
  with actor_lr 5e-3 (primary only, potential) rerun at 1e-3, the rate of the others,
  to compare learning speed at one inner learning rate."""
  if arg not in (None, "", "matched_lr"):
    raise ValueError(f"configs/barfi_gridworld.py: unknown argument {arg!r}; allowed: "
                     "'' or 'matched_lr'.")
  c = experiment.with_runner_defaults(barfi.default_config())
  c.task = "gridworld"
  c.aux = "bad"
  c.episodes = 1998
  c.actor_lr = 5e-3         # the official GridWorld learning rates (methods override actor_lr)
  c.reward_lr = 5e-3
  c.gamma_lr = 5e-3
  c.num_seeds = 25
  c.sweep = ml_collections.ConfigDict({"aux": ("good", "bad", "none")})  # a tuple: overridable
  c.sweep_points = [dict(m) for m in METHODS]
  if arg == "matched_lr":
    c.sweep_points = [dict(m, actor_lr=1e-3) for m in METHODS if m["actor_lr"] != 1e-3]
  c.chunk_updates = 111     # 666 updates = 6 chunks: one compiled chunk
  return c
