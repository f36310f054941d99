"""A pointwise reward model with tiny score gaps plus noise: std-normalised GRPO vs
Pref-GRPO win rates, from the same noisy scores with a tie margin and from a pairwise
judge.

The reward model scores 0.7 + 0.002·correct + N(0, 0.004²): the signal is below the
noise. GRPO's z-score turns these sub-noise differences into unit-scale advantages
("illusory advantage"), so the policy follows noise and drifts from its start (KL and
accuracy move). Win rates computed from the same noisy scores call pairs closer than
the margin ties: at 0.01 (about 1.8 standard deviations of a pair's score
difference) some pairs still differ and GRPO's normalisation of the win rates
amplifies them again; at 0.03 nearly every pair is a tie, advantages are near zero
and the policy stays put without learning. Pref-GRPO's premise is a pairwise judge
that compares two samples directly and discerns what the pointwise gaps hide; the
"pairwise" judge makes that premise explicit, P(i ≻ j) = sigmoid((q_i − q_j) / T) with
q the verifier score, at a sharp (T = 0.5) and a soft (T = 2) setting. Claim tested
(Pref-GRPO, Wang et al. 2025, https://arxiv.org/abs/2508.20751; spec §1 and demo D1):
pointwise GRPO drifts, win rates are stable.

Launch:

    python experiments/main.py --config=configs/grpo_pref.py --workdir=runs/grpo_pref

Runtime on this 2-core CPU: 3-7 min per run (100 steps), after the cached SFT warm
start shared with configs/grpo_prm.py. Measured through the runner (seed 0, 384
held-out problems, SFT start 0.740; KL is the per-step k3 estimate):

| point | mean |A| first / last 10 | KL median / last 10 / max | held-out accuracy, update 10 -> 100 |
|---|---|---|---|
| pointwise_grpo | 0.78 / 0.77 | 0.059 / 0.089 / 10.1 | 0.70 -> 0.54 (drifts) |
| pref_grpo_win_rate (margin 0.01) | 0.40 / 0.37 | 0.135 / 0.222 / 3.26 | 0.63 -> 0.44 (drifts) |
| pref_grpo_margin_0.03 | 0.00 / 0.00 | 0.001 / 0.001 / 0.011 | 0.67-0.74 (flat) |
| pref_grpo_pairwise_judge (T = 0.5) | 0.59 / 0.35 | 0.019 / 0.030 / 1.29 | 0.82 -> 0.89 |
| pref_grpo_pairwise_judge_t2 | 0.59 / 0.35 | 0.019 / 0.034 / 0.060 | 0.82 -> 0.89 |

Win rates are stable when the judge discerns quality (the max of 1.29 is one step's
outlier; the step before and after read 0.013 and 0.052); from the same noisy
pointwise scores they drift (margin 0.01) or carry no signal (margin 0.03). GRPO's
normalisation of the win rates makes the judge's temperature nearly irrelevant.

Seed 1 (three of the points):

| point | mean |A| first / last 10 | KL median / last 10 / max | held-out accuracy, update 10 -> 100 |
|---|---|---|---|
| pointwise_grpo | 0.77 / 0.78 | 0.041 / 0.043 / 0.50 | 0.69 -> 0.72 (0.55 at updates 30-40) |
| pref_grpo_win_rate (margin 0.01) | 0.43 / 0.39 | 0.106 / 0.581 / 2.10 | 0.71 -> 0.18 (drifts) |
| pref_grpo_pairwise_judge (T = 0.5) | 0.62 / 0.33 | 0.024 / 0.043 / 50.5 | 0.80 -> 0.91 |

On seed 1 the pointwise run wanders (0.69 -> 0.55 -> 0.72) instead of ending lower;
the win rates from its noisy scores collapse (0.18); the pairwise judge learns as on
seed 0. Its KL max of 50.5 is one update (68; the updates before and after read 0.021
and 0.031): the k3 estimate on a batch where one sampled token's log-prob fell by
many nats within the update (that update's k3 approx_kl, old vs new policy, was 6.4).

Seeds 2 and 3 (three of the points; "mean" is the held-out accuracy averaged over the
ten evaluations, "min" its lowest):

| point | seed | mean |A| first / last 10 | KL median / last 10 / max | accuracy 10 -> 100 (min, mean) |
|---|---:|---|---|---|
| pointwise_grpo | 2 | 0.77 / 0.77 | 0.063 / 0.057 / 0.169 | 0.69 -> 0.69 (0.54, 0.616) |
| pref_grpo_margin_0.03 | 2 | 0.00 / 0.00 | 0.002 / 0.007 / 0.066 | 0.73 -> 0.71 (0.68, 0.710) |
| pref_grpo_pairwise_judge | 2 | 0.64 / 0.32 | 0.019 / 0.029 / 0.140 | 0.83 -> 0.90 (0.83, 0.871) |
| pointwise_grpo | 3 | 0.77 / 0.78 | 0.052 / 0.072 / 0.192 | 0.72 -> 0.58 (0.44, 0.568) |
| pref_grpo_margin_0.03 | 3 | 0.00 / 0.00 | 0.002 / 0.002 / 0.053 | 0.73 -> 0.71 (0.65, 0.713) |
| pref_grpo_pairwise_judge | 3 | 0.64 / 0.32 | 0.026 / 0.046 / 0.976 | 0.77 -> 0.91 (0.77, 0.855) |

Over seeds 0-3, pointwise GRPO's advantages stay at unit scale (mean |A| 0.77-0.78)
although its scores differ by less than their noise; it moves 1.7-3.3x further from
the reference than the pairwise judge (KL median 0.041-0.063 against 0.019-0.026),
and its held-out accuracy swings by 15-28 points and averages 0.568-0.652 over
training, below its first evaluation (0.69-0.72) on every seed; it ends lower on
seeds 0 and 3 and at or above its start on seeds 1 and 2. The pairwise judge's win
rates are stable and learn on every seed (lowest evaluation = the first; 0.77-0.83
-> 0.89-0.91).
"""

from experiments import runner
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = runner.with_runner_defaults(grpo.default_config())
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
