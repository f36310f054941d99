"""Verifiable multi-step text tasks for tiny character-level LM policies.

Chained arithmetic generated in-process from a seed (`generate`), a character
tokenizer (`CharTokenizer`), an outcome verifier (`verify`, `verify_batch`), a
programmatic process reward model with exploitable flaws (`ProcessRewardModel`), and
supervised warm-start data with mixed verbosity and occasional slips (`sft_corpus`).
All host-side Python/numpy: score decoded strings between jitted calls.

For datasets of your own: `rlcore.envs.text.datasets` reads JSONL prompt / answer files
(GSM8K's `#### answer` and MATH's `\\boxed{}` conventions), splits them into train and
held-out, and loads a reward function given as "module:function";
`rlcore.envs.text.answers` extracts, normalises and matches final answers and gives a
format reward; `rlcore.envs.text.steps` finds PURE's step ends in a completion's tokens.

Typical GRPO/PURE loop:

    tok = CharTokenizer()
    problems = generate(rng, P)                                   # one batch per step
    prompts, pmask = tok.batch_encode_prompts([p.prompt for p in problems],
                                              TASK_MAX_PROMPT_LEN)
    ... sample TASK_MAX_COMPLETION_LEN tokens per prompt (G per prompt) ...
    texts = tok.batch_decode(completion_tokens)
    correct, well_formed = verify_batch(problems_repeated, texts)
    scores, step_mask, step_ends = ProcessRewardModel().score_batch(
        problems_repeated, texts, TASK_MAX_STEPS)

Length constants (tokens), for the hardest problems (6 operations, values <= 99) at the
highest corpus verbosity (3 fillers):
  * TASK_MAX_PROMPT_LEN = 16: BOS + "dd" + 6 x "<op>d" + "=" (16 exactly).
  * TASK_MAX_COMPLETION_LEN = 96: 6 x "dd+d=dd;" (48) + 3 x "check dd=dd;" (36) +
    "#dd" (3) + EOS = 88 at most in the corpus, plus 8 tokens of slack.
  * TASK_MAX_STEPS = TASK_MAX_COMPLETION_LEN: every step has >= 1 token, so no step of
    a completion that fits is ever dropped by `ProcessRewardModel.score_batch`.
"""

from rlcore.envs.text.arithmetic import (DIFFICULTY_OPS, FILLER_PREFIXES, FILLER_TEMPLATES,
                                         MAX_VERBOSITY, Problem, apply_op, generate,
                                         in_held_out, sft_corpus, solution)
from rlcore.envs.text.prm import DEFAULT_FLAWS, FLAWS, ProcessRewardModel
from rlcore.envs.text.tokenizer import CharTokenizer
from rlcore.envs.text.verifier import (count_filler_steps, parse_step, split_steps, verify,
                                       verify_batch)

TASK_MAX_PROMPT_LEN = 16
TASK_MAX_COMPLETION_LEN = 96
TASK_MAX_STEPS = TASK_MAX_COMPLETION_LEN

__all__ = [
    "CharTokenizer", "Problem", "generate", "solution", "sft_corpus", "verify",
    "verify_batch", "ProcessRewardModel", "TASK_MAX_PROMPT_LEN", "TASK_MAX_COMPLETION_LEN",
    "TASK_MAX_STEPS", "DIFFICULTY_OPS", "FILLER_TEMPLATES", "MAX_VERBOSITY", "FLAWS",
    "DEFAULT_FLAWS", "FILLER_PREFIXES", "apply_op", "count_filler_steps", "in_held_out",
    "parse_step", "split_steps",
]
