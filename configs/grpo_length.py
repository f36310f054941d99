"""GRPO on chained arithmetic: no shaping vs LASER vs LASER-D vs LASER-DE vs the
group-based length penalty (Efficient Reasoning).

A ~0.3M-parameter character-level LM is warm-started (SFT, cached) on verbose solutions
(0-6 filler steps such as "ok", "so 22", "check 22=22", 4.15 on average), half of
which leave out their last step and write the answer at once (`sft.skip_rate = 0.5`):
a shortcut 7-8 tokens shorter that the warm-started policy gets right less often
(0.47-0.68 by difficulty, against 0.65-0.75 for answers written out), so that shorter
answers can cost accuracy. It is then trained with GRPO (P = 16 prompts x G = 8, clip
0.2 / 0.28, k3 KL with DeepSeekMath's beta = 0.04) on the verifier score (1 / -0.5 /
-1) with each length-shaping method applied before the group normalisation (LASER:
L_T = 44, alpha = 0.5; LASER-D/DE: candidates 40..128 every 8, monitor every 20 steps;
group penalty: alpha = 0.4). The claim tested (LASER, Liu et al. 2025,
https://arxiv.org/abs/2505.15612): LASER variants cut response length by >= 30% against
no shaping with <= 2 points of held-out accuracy lost; LASER-D keeps hard problems
longer than easy ones; the group-based penalty trades accuracy for length.

Launch:

    python experiments/main.py --config=configs/grpo_length.py --workdir=runs/grpo_length

Runtime on this 2-core CPU: 3-6 min per run (100 steps) with two runs side by side,
after a one-time SFT warm start (1500 steps, 8 min, cached in ~/.cache/rlcore/sft).

Measured with this config, seeds 0-7: held-out pass@1 at T = 1 on 384 problems,
averaged over the last five evaluations (steps 60-100). Per seed, the accuracy change
in points and the length cut against no shaping of the same seed:

| seed | none: accuracy / length | LASER | LASER-D | LASER-DE | group penalty |
|---:|---|---|---|---|---|
| 0 | 0.817 / 51.2 | -0.5 / 39% | +0.9 / 39% | -0.7 / 40% | -7.9 / 48% |
| 1 | 0.830 / 46.0 | -2.7 / 32% | -0.3 / 31% | -0.9 / 30% | -13.9 / 45% |
| 2 | 0.829 / 49.6 | -1.7 / 38% | -3.3 / 36% | +0.2 / 37% | -12.6 / 50% |
| 3 | 0.820 / 55.9 | -1.0 / 43% | -1.2 / 46% | -0.7 / 44% | -10.5 / 55% |
| 4 | 0.848 / 52.8 | -0.8 / 39% | -0.8 / 39% | -2.5 / 41% | -14.3 / 51% |
| 5 | 0.830 / 47.9 | +0.7 / 33% | -2.8 / 34% | +1.6 / 35% | -10.2 / 48% |
| 6 | 0.848 / 50.3 | -2.8 / 37% | -2.4 / 37% | -1.0 / 36% | -12.9 / 49% |
| 7 | 0.820 / 52.5 | -2.6 / 41% | +0.4 / 38% | -0.2 / 38% | -11.4 / 52% |

Means over the eight seeds (change: mean +- its standard error over seeds; length in
tokens with EOS, easy / medium / hard in brackets; the last column is the accuracy on
hard problems, 5-6 operations):

| run | accuracy (change) | length | cut | hard |
|---|---|---|---:|---:|
| none | 0.830 | 50.8 (38.0 / 51.5 / 64.4) | | 0.732 |
| LASER | 0.816 (-1.4 +- 0.4) | 31.5 (19.6 / 31.6 / 44.6) | 38% | 0.686 |
| LASER-D | 0.818 (-1.2 +- 0.5) | 31.5 (18.5 / 31.5 / 46.2) | 38% | 0.694 |
| LASER-DE | 0.825 (-0.5 +- 0.4) | 31.6 (18.5 / 31.4 / 46.6) | 38% | 0.709 |
| group penalty | 0.713 (-11.7 +- 0.8) | 25.5 (10.1 / 25.1 / 43.0) | 50% | 0.643 |

How the settings were fixed: seeds 0-2 first (with LASER at L_T = 40), then seeds 3-4;
L_T = 44 was then tried on seeds 0-1 and 2-4, and adopted; seeds 5-7 were run last,
with every setting fixed (there LASER lost 1.6 points on average, LASER-D 1.6,
LASER-DE gained 0.1, the group penalty lost 11.5).

* The group penalty trades accuracy for length, on every seed: it is the shortest run
  (easy answers of 9-11 tokens, below the 15 of a written-out minimal easy solution)
  and loses 7.9-14.3 points. It rewards a correct answer for being shorter than the
  other correct answers of its group, however much accuracy the shorter form costs,
  and GRPO's normalisation amplifies that difference in groups that are all correct.
* The LASER variants cut 30-46% on every seed and lose 0.5-1.4 points on average.
  Single seeds lose up to 3.3 (LASER-D, seed 2): the unshaped runs' accuracy alone
  varies by 1.2 points (standard deviation) from seed to seed, so a per-seed change,
  a difference of two runs, carries about 1.7 points of seed noise.
* LASER-D keeps hard problems longer than easy ones (46 against 19 tokens): low-
  accuracy prompts get a longer target (final targets over the 16 LASER-D/DE runs: 40
  tokens for the easy bucket, 40-56 for the medium one, 56-80 or the fallback, the
  batch's longest answer, for the hard one). LASER's single target costs it most on
  hard problems (0.686 against 0.732 unshaped; LASER-D 0.694, LASER-DE 0.709).
* LASER at L_T = 40 (seeds 0-4, the earlier setting): 0.805, -2.3 points (-0.6 to
  -4.3), 39% cut, hard accuracy 0.676: a 40-token target is further below the
  written-out solution of a 6-operation problem (about 49 tokens), so LASER paid more
  for the shortcut there.
* Two pilots chose the LASER-D search range. With candidates from 16 (H200 GPU, jax
  0.11.2, a warm start trained there; seeds 0-2), the easy bucket's target fell to
  16-24 tokens, below a written-out two-operation answer, and LASER-D / LASER-DE lost
  2.6-6.3 / 6.0-8.4 points; LASER (L_T = 40) lost 0.1-2.2 and the group penalty
  10.1-13.1 in those runs. From 32 (this CPU, seed 0): LASER-D 0.819 (+0.2), 40% cut;
  from 40: 0.826 (+0.9), 39%; 40 was kept.
* Without the shortcut in the warm start (`sft.skip_rate = 0`, LASER-D from 16; five
  seeds for the LASER family, three for the rest), no variant lost more than 1.1
  points, the cuts were LASER 33.5%, LASER-D 29.9%, LASER-DE 31.0% on average, and the
  group penalty did not trade: it reached the minimal solutions (30.0 tokens, a 40%
  cut) with the best accuracy of all (0.883 against 0.850 unshaped), because there
  the minimal written-out solution was also the most reliable one and no shorter one
  was in the policy's repertoire (step-skipping stayed under 1% of its answers).
"""

from experiments import runner
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = runner.with_runner_defaults(grpo.default_config())
  c.num_updates = 100
  c.chunk_updates = 10
  # A verbose warm start (0-6 filler steps, 4.15 on average: 58 tokens against 30 for
  # the minimal solutions), so that length has room to fall.
  c.sft.verbosity_probs = (0.05, 0.05, 0.1, 0.1, 0.2, 0.2, 0.3)
  # Half the warm-start examples leave out their last step and write the answer
  # straight away: a shortcut 7-8 tokens shorter that the warm-started policy gets
  # right less often (0.47-0.68 of the time, against 0.65-0.75 written out), so that
  # shorter answers can cost accuracy, as they do for reasoning models.
  c.sft.skip_rate = 0.5
  c.sft.max_skip = 1
  c.max_completion_len = 128     # a hard problem with 6 fillers needs up to 124
  c.kl_coef = 0.04               # DeepSeekMath's GRPO β
  # Adam's first steps are sign steps of size lr on every parameter; at lr = 1e-4 they
  # moved single near-tie tokens by 10+ nats in update 1 (k3 approx_kl 31-46 on seed
  # 2, whose unshaped run then drifted short). 20 optimizer steps = 5 updates.
  c.lr_warmup_steps = 20
  # LASER's L_T: at 40 (seeds 0-4) it lost 2.3 points, mostly on hard problems,
  # whose written-out solutions run to about 49 tokens; see the docstring.
  c.shaping.target_length = 44
  # LASER-D/DE's candidate targets start at 40 (16 let the easy bucket's target fall
  # below a written-out two-operation answer; see the docstring's pilots).
  c.shaping.laser_lower = 40
  c.shaping.laser_upper = 128
  c.sweep_points = [
      {"shaping.chain": "", "_name": "none"},
      {"shaping.chain": "laser", "_name": "laser"},
      {"shaping.chain": "laser_d", "_name": "laser_d"},
      {"shaping.chain": "laser_de", "_name": "laser_de"},
      {"shaping.chain": "group_length_penalty", "_name": "group"},
  ]
  return c
