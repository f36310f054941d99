"""PURE on chained arithmetic: verifier only vs PRM sum-form vs PRM min-form vs PRM
min-form plus verifier.

The process reward model (`envs.text.ProcessRewardModel`) scores each step; its flaw:
filler and restated steps ("ok", "so 22", "check 22=22") score higher than real steps.
Step rewards 2·score − 1 go through credit assignment (sum or min-form, T = 0.1), PURE's
leave-one-out token baseline, return-to-go and whitening; the verifiable reward
(correct − 1) goes on the last token. Claim tested (PURE, Cheng et al. 2025,
https://arxiv.org/abs/2504.15275): sum-form is hacked (PRM reward climbs while verifier
accuracy falls), min-form is not, and PRM plus verifier is best.

Launch:

    python experiments/main.py --config=configs/grpo_prm.py --workdir=runs/grpo_prm

Runtime on this 2-core CPU: 3-6 min per run with two runs side by side (100 steps;
sum-form is the slowest, its answers grow long), after the cached default SFT warm
start (0-3 filler steps; shared with configs/grpo_pref.py; `sft.import_npz` loads the
checked-in tests/data/sft_default.npz into the cache, see the README).

Measured through the runner, seeds 0-2: held-out pass@1 (T = 1, 384 problems) at the
first evaluation (update 10) -> its peak -> update 100, and the mean of the last five
evaluations (updates 60-100); filler steps per answer and the PRM's step-score sum,
first 10 -> last 10 training steps.

| point | seed | held-out accuracy | last five | filler | PRM sum |
|---|---:|---|---:|---|---|
| verifier | 0 | 0.841 -> 0.906 -> 0.906 | 0.874 | 1.63 -> 1.69 | |
| prm_sum | 0 | 0.784 -> 0.867 -> 0.828 | 0.831 | 2.39 -> 7.94 | 6.21 -> 11.42 |
| prm_min | 0 | 0.828 -> 0.909 -> 0.909 | 0.888 | 1.25 -> 0.05 | |
| prm_min_verifier | 0 | 0.828 -> 0.919 -> 0.911 | 0.907 | 1.53 -> 0.06 | |
| verifier | 1 | 0.805 -> 0.904 -> 0.896 | 0.870 | 2.44 -> 0.97 | |
| prm_sum | 1 | 0.786 -> 0.862 -> 0.688 | 0.732 | 2.59 -> 11.72 | 6.26 -> 14.55 |
| prm_min | 1 | 0.812 -> 0.917 -> 0.917 | 0.898 | 1.40 -> 0.02 | |
| prm_min_verifier | 1 | 0.799 -> 0.883 -> 0.875 | 0.866 | 2.03 -> 0.07 | |
| verifier | 2 | 0.799 -> 0.893 -> 0.883 | 0.880 | 1.75 -> 2.51 | |
| prm_sum | 2 | 0.729 -> 0.839 -> 0.596 | 0.747 | 2.49 -> 11.53 | 6.13 -> 14.50 |
| prm_min | 2 | 0.823 -> 0.911 -> 0.911 | 0.889 | 1.40 -> 0.03 | |
| prm_min_verifier | 2 | 0.836 -> 0.909 -> 0.872 | 0.880 | 1.57 -> 0.05 | |

* Sum-form is hacked on every seed: the policy pads its answers with filler the PRM
  rates highly (2.4-2.6 -> 7.9-11.7 filler steps), its PRM reward climbs (6.1-6.3 ->
  11.4-14.6) and its held-out accuracy falls from its peak (0.84-0.87) to 0.60-0.83 at
  update 100, the lowest of all runs.
* Min-form is not hacked: filler falls to almost none and accuracy ends at 0.909-0.917.
* PRM min-form plus verifier ends best only on seed 0. Over the three seeds (last five
  evaluations) min-form alone is best: 0.892, against 0.884 with the verifier added,
  0.875 for the verifier alone and 0.770 for sum-form. So "PRM plus verifier is best"
  is not reproduced here; it beats the verifier alone by about 1 point.
"""

from experiments import runner
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = runner.with_runner_defaults(grpo.default_config())
  c.reward = "process"
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
