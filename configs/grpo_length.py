"""GRPO on chained arithmetic: no shaping vs LASER vs LASER-D vs LASER-DE vs the
group-based length penalty (Efficient Reasoning).

A ~0.3M-parameter character-level LM is warm-started (SFT, cached) on solutions of
mixed verbosity (0-3 filler steps), then trained with GRPO (P = 16 prompts x G = 8,
clip 0.2 / 0.28, k3 KL 0.001) on the verifier score (1 / -0.5 / -1) with each
length-shaping method applied before the group normalisation. The claim tested (LASER,
Liu et al. 2025, https://arxiv.org/abs/2505.15612): LASER variants cut response length
by >= 30% against no shaping with <= 2 points of held-out accuracy lost; LASER-D keeps
hard problems longer than easy ones; the group-based penalty trades accuracy for length.

Launch:

    python experiments/main.py --config=configs/grpo_length.py --workdir=runs/grpo_length

Runtime on this 2-core CPU: 3-8 min per run (194 s alone, up to 458 s beside another
experiment), 100 steps each, after a one-time SFT warm start (1500 steps, cached in
~/.cache/rlcore/sft; 24 min measured under heavy load).

Measured (seed 0, 384 held-out problems, pass@1 at T = 1; SFT start 0.740 / 42.1
tokens): none 0.898 / 31.8; LASER 0.898 / 29.8; LASER-D 0.891 / 29.4 (targets easy 24,
medium 24, hard 40; hard answers 44.9 vs easy 15.1 tokens); LASER-DE 0.914 / 29.9;
group penalty 0.883 / 29.5. The cut against no shaping is 6-8%, not the paper's
>= 30%: here the unshaped run sheds its filler steps too (filler never helps accuracy).

The task bounds the cut: the minimal solutions of the 384 held-out problems average
29.5 tokens with EOS (15.1 / 29.7 / 45.3 by difficulty), LASER ends there, and the SFT
start is 42.1, so even against a run that kept the SFT's length the largest cut is
30.0%. A variant whose SFT corpus makes verbose solutions slip less often
(`sft.slip_by_verbosity=(0.6, 0.4, 0.2, 0.1)`, same overall slip rate), so that
length helps accuracy in the warm start, did not keep the unshaped run long either:
none 0.911 / 32.9, LASER 0.919 / 29.6 (15.4 / 29.9 / 45.3, the minimal lengths), a
10% cut.
"""

from experiments import runner
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = runner.with_runner_defaults(grpo.default_config())
  c.num_updates = 100
  c.chunk_updates = 10
  c.shaping.target_length = 40
  c.sweep_points = [
      {"shaping.chain": "", "_name": "none"},
      {"shaping.chain": "laser", "_name": "laser"},
      {"shaping.chain": "laser_d", "_name": "laser_d"},
      {"shaping.chain": "laser_de", "_name": "laser_de"},
      {"shaping.chain": "group_length_penalty", "_name": "group"},
  ]
  return c
