"""PURE on chained arithmetic: verifier only vs PRM sum-form vs PRM min-form vs PRM
min-form plus verifier.

The process reward model (`rlcore.envs.text.ProcessRewardModel`) scores each step and has three
flaws: filler and restated steps score higher than real steps (`filler_bonus`,
`restate_bonus`), and it does not see results that are off by exactly 1 (`off_by_one`).
Step rewards 2·score − 1 go through credit assignment (sum or min-form, T = 0.1), PURE's
leave-one-out token baseline, return-to-go and whitening; the verifiable reward
(correct − 1) goes on the last token. Claim tested (PURE, Cheng et al. 2025,
https://arxiv.org/abs/2504.15275): sum-form is hacked (PRM reward climbs while verifier
accuracy falls), min-form is not, and PRM plus verifier is best.

Launch (one seed per run; add `--config.seed=N` and a workdir per seed for others):

    python experiments/main.py --config=configs/grpo_prm.py --workdir=runs/grpo_prm

Runtime on this 2-core CPU: 3-5 min per run with two runs side by side (100 steps;
sum-form is the slowest), after the cached default SFT warm start (shared with
configs/grpo_pref.py; the README shows how to load the checked-in one).

Results: results/grpo_prm.md
"""

from rlcore import experiment
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = experiment.with_runner_defaults(grpo.default_config())
  c.reward = "process"
  # The PRM's flaws: bonuses for filler and restatements, and a blind spot for results
  # that are off by one (see the docstring; the default is the first two).
  c.process.flaws = "filler_bonus,restate_bonus,off_by_one"
  c.lr_warmup_steps = 20         # 5 updates; see configs/grpo_length.py
  c.num_updates = 100
  c.chunk_updates = 10
  c.sweep_points = [
      {"process.prm_coef": 0.0, "process.verifier_coef": 1.0, "_name": "verifier"},
      {"process.credit": "sum", "process.prm_coef": 1.0, "process.verifier_coef": 0.0,
       "_name": "prm_sum"},
      {"process.credit": "min", "process.prm_coef": 1.0, "process.verifier_coef": 0.0,
       "_name": "prm_min"},
      {"process.credit": "min", "process.prm_coef": 1.0, "process.verifier_coef": 1.0,
       "_name": "prm_min_verifier"},
  ]
  return c
