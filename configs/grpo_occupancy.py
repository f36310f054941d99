"""ORPO's occupancy regulariser vs the token KL on the PRM that sum-form credit hacks.

The setting of `configs/grpo_prm.py`'s `prm_sum` point (GRPO with PURE, sum-form credit
of a process reward model whose flaws pay for filler and restated steps and miss
off-by-one results; no verifier reward; results/grpo_prm.md: the PRM reward climbs while
held-out accuracy falls), regularised toward the frozen SFT warm start in one of two ways:

* `sum_none`: no regulariser (kl_coef = 0; `prm_sum` itself has the default k3 KL at
  β = 0.001);
* `sum_kl_<β>`: the k3 token KL in the loss, β · agg_t[k3_t] (`kl_coef`, `kl_kind`);
* `sum_sqrt_chi2_<λ>`: ORPO's sqrt-χ² occupancy penalty (kl_coef = 0): each response's
  sequence reward becomes score − λ · (e^d − 1)/sqrt(χ̂²), d = log π_old(y|x) −
  log π_ref(y|x) its exact log occupancy ratio (a contextual bandit), χ̂² over the
  batch, the penalty clipped at `occupancy.clip` (`rlcore.agents.grpo.rewards.
  sequence_penalty`; https://arxiv.org/abs/2403.03185).

The coefficient grids were chosen on seeds 0-1; seeds 2-4 are the fresh ones (β = 0.3
was added afterwards, see KL_COEFS). The question is whether sqrt-χ² holds held-out
accuracy where the token KL at a comparable strength does not.

Launch (one seed per run; all points, or one point by name after the colon):

    python experiments/main.py --config=configs/grpo_occupancy.py \
        --workdir=runs/grpo_occupancy --config.seed=2
    python experiments/main.py --config=configs/grpo_occupancy.py:sum_kl_0.3 \
        --workdir=runs/grpo_occupancy_kl03/seed2 --config.seed=2

Runtime on this 2-core CPU (2026-12-03/04): 3.3-7 min per point and seed, about 30 min
per seed for the six points (100 updates; the hacked sum-form answers grow long), after
the cached default SFT warm start (shared with configs/grpo_prm.py; the README shows how
to load the checked-in one).

Results: results/orpo.md (the LLM section).
"""

from rlcore import experiment
from rlcore.agents import grpo

# β of the k3 token KL. 0.3 was added after seeds 2-4 of the others had run, to compare
# the KL at the sequence log-ratio sqrt-χ² (λ = 0.4) allows (results/orpo.md).
KL_COEFS = (0.1, 0.3, 1.0)
SQRT_CHI2_COEFS = (0.4, 3.0)         # λ of the sqrt-χ² occupancy penalty


def _label(x: float) -> str:
  return f"{x:g}"


def sweep_points():
  """The named points: no regulariser, k3 KL at each β, sqrt-χ² at each λ."""
  sum_form = {"process.credit": "sum", "process.prm_coef": 1.0,
              "process.verifier_coef": 0.0}
  points = [dict(sum_form, kl_coef=0.0, _name="sum_none")]
  points += [dict(sum_form, kl_coef=b, kl_kind="k3", _name=f"sum_kl_{_label(b)}")
             for b in KL_COEFS]
  points += [dict(sum_form, kl_coef=0.0, **{"occupancy.kind": "sqrt_chi2",
                                            "occupancy.coef": lam},
                  _name=f"sum_sqrt_chi2_{_label(lam)}") for lam in SQRT_CHI2_COEFS]
  return points


def get_config(arg=None):
  """`arg`: "" (every point) or one point's name (e.g. "sum_kl_0.1")."""
  points = sweep_points()
  names = [p["_name"] for p in points]
  if arg not in (None, "") and arg not in names:
    raise ValueError(f"configs/grpo_occupancy.py: unknown argument {arg!r}; allowed: '' or "
                     f"one of {', '.join(names)}.")
  c = experiment.with_runner_defaults(grpo.default_config())
  # As configs/grpo_prm.py.
  c.reward = "process"
  c.process.flaws = "filler_bonus,restate_bonus,off_by_one"
  c.lr_warmup_steps = 20
  c.num_updates = 100
  c.chunk_updates = 10
  c.occupancy.clip = 10.0        # |penalty| <= 10 per response (sum-form rewards: ~±15)
  c.occupancy.max_logit = 20.0
  c.sweep_points = [p for p in points if arg in (None, "") or p["_name"] == arg]
  return c
