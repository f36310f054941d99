"""GRPO-style training of a causal LM on verifiable step-by-step text tasks.

Two tasks (`config.task`, `rlcore.agents.grpo.tasks`): the built-in chained arithmetic
with its character-level model and SFT warm start ("arithmetic"), or a local Hugging Face
Llama / Qwen2 checkpoint on a JSONL dataset of prompts and answers, with the
checkpoint's chat template and optional user reward and step-scoring functions
("dataset"; configs/grpo_dataset.py).

One update samples G completions for each of P prompts (`rlcore.lm.sample`, KV
cache), scores them on the host (the verifier of `rlcore.envs.text` and, if
configured, its process reward model or a noisy pointwise reward model), turns the
scores into token advantages in the order docs/design.md fixes (verifier score →
shaping: LASER, LASER-D, LASER-DE or another length reward, PURE credit assignment of
process rewards, Pref-GRPO win rates → group baseline and normalisation by any
advantage of `rlcore.group` → broadcast to tokens with the response mask), and runs
`inner_epochs` epochs of minibatch updates of the token-level clipped loss with
separate lower/upper clip (`rlcore.ppo_clip_loss`) plus β · KL to a frozen reference
(`rlcore.kl_estimate`), aggregated by `config.aggregation`.

Instead of (or besides) that token KL, `config.occupancy` turns on ORPO's occupancy
regulariser to the same reference (Laidlaw et al., https://arxiv.org/abs/2403.03185):
an LLM is a contextual bandit, so a response's exact log occupancy ratio is its
sequence log-ratio d = log π_old(y|x) − log π_ref(y|x), and its sequence reward becomes
score − λ · distance(d) (kind kl, chi2 or sqrt_chi2, χ̂² over the whole batch), clipped,
before the group advantage (`rewards.sequence_penalty`).

Reward modes (`config.reward`):

* "outcome": the verifier score s ∈ {1 correct, −0.5 wrong but well formed, −1
  malformed or truncated} (LASER's R), then the length-shaping chain and the group
  advantage `config.advantage`;
* "process": PURE — step rewards 2·PRM − 1 ∈ [−1, 1], credit assignment
  `config.process.credit` ("sum", "min" (softmax, T = `min_form_temperature`),
  "strict_min") with weight `prm_coef`, PURE's leave-one-out token baseline, plus the
  verifiable reward VR = correct − 1 with a leave-one-out baseline on the last token
  with weight `verifier_coef`; return-to-go, separators 0, whitening
  (`rlcore.pure_advantages`). The PRM is `rlcore.envs.text.ProcessRewardModel` with
  the flaws `process.flaws` and, with `process.prm_noise` > 0, a fixed deterministic
  uniform error of that half-width on every step score;
* "pointwise_rm": a pointwise reward model whose scores differ by tiny amounts plus
  noise, `base + signal · correct + N(0, noise²)`, normalised by the group advantage,
  or, with `config.pref.enabled`, replaced by Pref-GRPO win rates from a judge
  (`config.pref.judge`): "pointwise" compares the same noisy scores with a tie margin
  (`pref.margin`); "pairwise" sees both completions and prefers the better one,
  P(i ≻ j) = sigmoid((q_i − q_j) / `pref.judge_temperature`) with q the verifier score.

The pieces, one module each: `config` (keys, defaults, validation), `tasks` (prompts,
tokenizer, first policy, verifier and hooks of each task), `rollout`
(sample → decode → verify → score), `rewards` (the pure reward pipeline),
`update` (the loss and the jitted update), `agent` (the host loop of the
`rlcore.agents.Agent` protocol). The experiments and what they measured:
configs/grpo_*.py and results/.

See "DeepSeekMath" (GRPO), Shao et al. 2024 (https://arxiv.org/abs/2402.03300);
LASER, Liu et al. 2025 (https://arxiv.org/abs/2505.15612); PURE, Cheng et al. 2025
(https://arxiv.org/abs/2504.15275); Pref-GRPO, Wang et al. 2025
(https://arxiv.org/abs/2508.20751).
"""

from rlcore.agents import protocol
from rlcore.agents.grpo.rewards import Scored, advantages, group_advantages, make_shaping
from rlcore.agents.grpo.agent import PLOT_METRICS, GRPOAgent, GRPOState, make_agent
from rlcore.agents.grpo.config import (
    ADVANTAGES, CREDITS, JUDGES, LENGTH_SHAPINGS, REWARDS, default_config, length_chain,
    prm_flaws, validate_config)
from rlcore.agents.grpo.rollout import Rollout, rollout, score
from rlcore.agents.grpo.tasks import ArithmeticTask, DatasetTask, export_hf, make_task

FAMILY = protocol.register(protocol.AgentFamily(
    name="grpo", default_config=default_config, make_agent=make_agent,
    validate_config=validate_config))
