"""A pointwise reward model with tiny score gaps plus noise: std-normalised GRPO vs
Pref-GRPO win rates, from the same noisy scores with a tie margin and from a pairwise
judge.

The reward model scores 0.7 + 0.002·correct + N(0, 0.004²): the signal is below the
noise, and GRPO's z-score turns these sub-noise differences into unit-scale advantages
("illusory advantage"). Five points, 100 updates each: pointwise GRPO; win rates from
the same noisy scores with tie margin 0.01 and 0.03; and a pairwise judge,
P(i ≻ j) = sigmoid((q_i − q_j) / T) with q the verifier score, at T = 0.5 and T = 2.
Claim tested (Pref-GRPO, Wang et al. 2025, https://arxiv.org/abs/2508.20751; spec §1 and
demo D1): pointwise GRPO drifts, win rates are stable.

Launch (one seed per run; add `--config.seed=N` and a workdir per seed for others):

    python experiments/main.py --config=configs/grpo_pref.py --workdir=runs/grpo_pref

Runtime on this 2-core CPU: 3-7 min per run (100 steps), after the cached SFT warm
start shared with configs/grpo_prm.py.

Results: results/grpo_pref.md
"""

from rlcore import experiment
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = experiment.with_runner_defaults(grpo.default_config())
  c.reward = "pointwise_rm"
  c.num_updates = 100
  c.chunk_updates = 10
  c.sweep_points = [
      {"pref.enabled": False, "_name": "pointwise_grpo"},
      {"pref.enabled": True, "_name": "pref_grpo_win_rate"},
      {"pref.enabled": True, "pref.margin": 0.03, "_name": "pref_grpo_margin_0.03"},
      {"pref.enabled": True, "pref.judge": "pairwise", "_name": "pref_grpo_pairwise_judge"},
      {"pref.enabled": True, "pref.judge": "pairwise", "pref.judge_temperature": 2.0,
       "_name": "pref_grpo_pairwise_judge_t2"},
  ]
  return c
