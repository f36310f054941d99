"""PURE on chained arithmetic: verifier only vs PRM sum-form vs PRM min-form vs PRM
min-form plus verifier.

The process reward model (`envs.text.ProcessRewardModel`) scores each step. It has
three flaws: filler and restated steps ("ok", "so 22", "check 22=22") score higher than
real steps (`filler_bonus`, `restate_bonus`), and it does not see results that are off
by exactly 1 (`off_by_one`: "22*2=45" scores as high as "22*2=44"), a blind spot of the
kind a learned PRM has. Step rewards 2·score − 1 go through credit assignment (sum or
min-form, T = 0.1), PURE's leave-one-out token baseline, return-to-go and whitening;
the verifiable reward (correct − 1) goes on the last token. Claim tested (PURE, Cheng
et al. 2025, https://arxiv.org/abs/2504.15275): sum-form is hacked (PRM reward climbs
while verifier accuracy falls), min-form is not, and PRM plus verifier is best.

Launch:

    python experiments/main.py --config=configs/grpo_prm.py --workdir=runs/grpo_prm

Runtime on this 2-core CPU: 3-5 min per run with two runs side by side (100 steps;
sum-form is the slowest, its answers grow long), after the cached default SFT warm
start (0-3 filler steps; shared with configs/grpo_pref.py; `sft.import_npz` loads the
checked-in tests/data/sft_default.npz into the cache, see the README).

Measured through the runner with this config, seeds 0-6 (3-6 run after the settings
were fixed on 0-2): held-out pass@1 (T = 1, 384
problems) at the first evaluation (update 10) -> its peak -> update 100, and the mean
of the last five evaluations (updates 60-100); filler steps per answer and the PRM's
step-score sum, first 10 -> last 10 training steps. The verifier-only runs never read
the PRM (prm_coef = 0), so they are the same runs as with the PRM below.

| point | seed | held-out accuracy | last five | filler | PRM sum |
|---|---:|---|---:|---|---|
| verifier | 0 | 0.797 -> 0.888 -> 0.867 | 0.871 | 1.79 -> 1.04 | |
| prm_sum | 0 | 0.711 -> 0.750 -> 0.599 | 0.645 | 2.05 -> 10.78 | 6.00 -> 14.01 |
| prm_min | 0 | 0.771 -> 0.831 -> 0.831 | 0.786 | 1.40 -> 0.04 | |
| prm_min_verifier | 0 | 0.789 -> 0.922 -> 0.888 | 0.894 | 1.51 -> 0.04 | |
| verifier | 1 | 0.828 -> 0.885 -> 0.885 | 0.866 | 1.92 -> 1.50 | |
| prm_sum | 1 | 0.703 -> 0.747 -> 0.565 | 0.624 | 2.21 -> 7.95 | 5.98 -> 11.22 |
| prm_min | 1 | 0.773 -> 0.784 -> 0.688 | 0.711 | 1.34 -> 0.02 | |
| prm_min_verifier | 1 | 0.797 -> 0.914 -> 0.914 | 0.881 | 1.56 -> 0.05 | |
| verifier | 2 | 0.823 -> 0.885 -> 0.857 | 0.863 | 1.75 -> 1.80 | |
| prm_sum | 2 | 0.734 -> 0.740 -> 0.633 | 0.672 | 2.08 -> 11.68 | 5.86 -> 14.72 |
| prm_min | 2 | 0.768 -> 0.786 -> 0.784 | 0.774 | 1.42 -> 0.02 | |
| prm_min_verifier | 2 | 0.826 -> 0.901 -> 0.901 | 0.881 | 1.61 -> 0.06 | |
| verifier | 3 | 0.810 -> 0.917 -> 0.888 | 0.899 | 1.73 -> 0.27 | |
| prm_sum | 3 | 0.721 -> 0.768 -> 0.625 | 0.652 | 2.05 -> 11.65 | 5.78 -> 14.81 |
| prm_min | 3 | 0.721 -> 0.799 -> 0.732 | 0.753 | 1.35 -> 0.03 | |
| prm_min_verifier | 3 | 0.771 -> 0.917 -> 0.909 | 0.905 | 1.46 -> 0.04 | |
| verifier | 4 | 0.818 -> 0.914 -> 0.885 | 0.893 | 1.75 -> 1.42 | |
| prm_sum | 4 | 0.724 -> 0.750 -> 0.654 | 0.694 | 2.13 -> 8.46 | 6.02 -> 11.80 |
| prm_min | 4 | 0.747 -> 0.794 -> 0.760 | 0.770 | 1.40 -> 0.02 | |
| prm_min_verifier | 4 | 0.810 -> 0.922 -> 0.885 | 0.895 | 1.52 -> 0.03 | |
| verifier | 5 | 0.818 -> 0.904 -> 0.896 | 0.876 | 1.67 -> 0.47 | |
| prm_sum | 5 | 0.719 -> 0.742 -> 0.479 | 0.572 | 2.14 -> 12.51 | 6.20 -> 15.47 |
| prm_min | 5 | 0.745 -> 0.797 -> 0.781 | 0.762 | 1.29 -> 0.04 | |
| prm_min_verifier | 5 | 0.810 -> 0.914 -> 0.909 | 0.906 | 1.41 -> 0.04 | |
| verifier | 6 | 0.820 -> 0.914 -> 0.914 | 0.879 | 1.89 -> 1.10 | |
| prm_sum | 6 | 0.714 -> 0.719 -> 0.479 | 0.605 | 2.15 -> 11.59 | 6.05 -> 14.51 |
| prm_min | 6 | 0.760 -> 0.805 -> 0.766 | 0.753 | 1.38 -> 0.02 | |
| prm_min_verifier | 6 | 0.812 -> 0.906 -> 0.906 | 0.876 | 1.71 -> 0.07 | |

Means of the last five evaluations over the seven seeds: min-form + verifier 0.891,
verifier alone 0.878, min-form alone 0.759, sum-form 0.638.

* PRM plus verifier is best on average, 1.3 +- 0.4 points (mean +- standard error
  of the per-seed differences) above the verifier alone, and on six of the seven
  seeds (+0.3 to +3.0; seed 6: -0.3): the PRM's step credit speeds learning (its peak
  is -0.8 to +3.4 points from the verifier's), and the verifier catches the
  off-by-one slips the PRM cannot see. Min-form alone ends 8.5-15.5 points below.
* Sum-form is hacked on every seed: the policy pads its answers with filler the PRM
  rates highly (2.1-2.2 -> 8.0-12.5 filler steps), its PRM reward climbs (5.8-6.2 ->
  11.2-15.5) and its held-out accuracy falls from its peak (0.72-0.77) to 0.479-0.654.
* Min-form is not hacked by the filler flaw: filler falls to almost none (1.3-1.4 ->
  0.02-0.04) and its PRM step-sum falls with it; on five seeds its held-out accuracy
  ends (last five) above its first evaluation (+0.6 to +3.2 points). Alone, though, it
  cannot correct the errors the PRM does not see: on seed 1 its training accuracy
  drifted down (0.785 -> 0.705, first 10 -> last 10 steps; held-out 0.773 -> 0.711)
  while its min-form PRM reward rose (0.79 -> 0.81), the slow hack PURE reports for
  its PRM-only runs; on seeds 3 and 6 its held-out accuracy fell back from its peak
  (0.799, 0.805) to 0.732 and 0.766 while its PRM reward kept rising (0.78 -> 0.82).
* With a PRM whose only flaws are the filler and restatement bonuses (the default
  `process.flaws`, which min-form neutralises), the verifier adds nothing: min-form
  alone 0.900, min-form + verifier 0.890, verifier 0.867, sum-form 0.753 (seeds 0-2;
  sum-form hacked on each, filler 2.1 -> 8.4-12.0). With that PRM plus a
  deterministic step-score error (`--config.process.prm_noise=0.5`), min-form alone
  and min-form + verifier tie at 0.877.
"""

from experiments import runner
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = runner.with_runner_defaults(grpo.default_config())
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
