"""BARFI on CartPole with PD-controller heuristics: heuristic quality x method, 25 seeds.

Sweep: `aux` in {helpful (+1 when the action agrees with a PD controller on the pole
angle), misleading (−5 when it agrees, +1 otherwise), noisy (−5 + U(0, 5) / +1 + U(0, 1))}
x five methods (each a listed point): REINFORCE on the primary reward only, naive
r_p + r_aux, potential-based shaping with r_aux as the potential, BARFI first-order and
BARFI Neumann (K = 5, alpha = 5e-4). 999 episodes per run (the official 1000; the last
one is never followed by an update), the official CartPole settings otherwise (RMSprop,
reward and discount lr 1e-3, entropy 0.25, delta 3, inner_mul 5, first_mul 150,
hess_mul 15, batch 1). Seeds: indices 0-4 chose each method's setting (METHODS below),
5-24 are reported.

Launch:

    python experiments/main.py --config=configs/barfi_cartpole.py --workdir=runs/barfi_cp
    python experiments/barfi_report.py --workdir=runs/barfi_cp --seeds=5:25 \
        --png=results/barfi_cartpole.png
    python experiments/main.py --config=configs/barfi_cartpole.py:learned_primary \
        --workdir=runs/barfi_cp_learned     # BARFI with the official CartPole reward form

Runtime on a 2-core CPU: 39 min for the whole sweep, quiet (each BARFI group about 5 min
after an 11-14 s compile, each baseline 30-40 s); `:learned_primary` on the helpful and
misleading heuristics (4 groups) took 32 min with other jobs on the cores.

Results: results/barfi.md
"""

import ml_collections

from rlcore import experiment
from rlcore.agents import barfi

# One setting per method, chosen on seeds 0-4 (results/barfi.md, "How the settings were
# chosen"): the best mean over the misleading and helpful heuristics of the last-10%
# episode return.
METHODS = [
    {"_name": "primary_only", "outer": "none", "reward": "primary", "actor_lr": 1e-3},
    {"_name": "naive", "outer": "none", "reward": "naive", "actor_lr": 4e-3},
    {"_name": "potential", "outer": "none", "reward": "potential", "actor_lr": 1e-3},
    {"_name": "barfi_first_order", "outer": "first_order", "reward": "aligned",
     "actor_lr": 1e-3, "gamma_l2": 0.25, "reward_l2": 1.0},
    {"_name": "barfi_neumann", "outer": "neumann", "reward": "aligned",
     "actor_lr": 1e-3, "gamma_l2": 0.25, "reward_l2": 0.0},
]


def get_config(arg=None):
  """`arg`: "" (each method at its chosen setting) or "learned_primary": the two BARFI
  methods at the same settings with the official CartPole code's reward form
  r_phi = b(s) + v(s) r_p + w(s) r_aux (`primary_weight="learned"`), not tuned again."""
  if arg not in (None, "", "learned_primary"):
    raise ValueError(f"configs/barfi_cartpole.py: unknown argument {arg!r}; allowed: "
                     "'' or 'learned_primary'.")
  c = experiment.with_runner_defaults(barfi.default_config())
  c.task = "cartpole"
  c.aux = "misleading"
  c.episodes = 999
  c.num_seeds = 25
  c.sweep = ml_collections.ConfigDict({"aux": ("helpful", "misleading", "noisy")})  # a tuple: overridable
  c.sweep_points = [dict(m) for m in METHODS]
  if arg == "learned_primary":
    c.primary_weight = "learned"
    c.sweep_points = [dict(m) for m in METHODS if m["outer"] != "none"]
  c.chunk_updates = 111     # 333 updates = 3 chunks: one compiled chunk
  return c
