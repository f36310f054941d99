"""GRPO on your own local Hugging Face checkpoint and JSONL dataset, with this library's
shaping: LASER / LASER-D / LASER-DE on token lengths, PURE credit on process rewards, and
every group advantage.

`model.hf_path` is a local Llama or Qwen2 checkpoint folder as `save_pretrained` (or
`huggingface-cli download`) writes it: config.json, the safetensors weights,
tokenizer.json and a chat template (chat_template.jinja, or the `chat_template` field
of tokenizer_config.json). `dataset.path` is a JSONL file with a prompt and an answer
per line (`dataset.prompt_field` / `answer_field`; GSM8K's `#### answer` or MATH's
`\\boxed{}` read by `dataset.answer_format`). Each prompt is rendered with the
checkpoint's chat template; a completion scores 1 if its answer (after `####`, in a
`\\boxed{}`, or its last number: `dataset.answer_method = "auto"`) matches, -0.5 if it
gives a wrong one, -1 if none or truncated. `dataset.reward_fn = "module:function"`
puts your own score per completion in place of that; `reward = "process"` with
`dataset.step_scorer = "module:function"` scores each reasoning step (steps end at
tokens ending in `dataset.step_separator`, a blank line, as PURE splits them) for PURE's
min-form credit; `reward = "pointwise_rm"` reads a reward model's scores from
`dataset.reward_fn`, for Pref-GRPO's win rates (`pref.enabled`).
`rlcore.agents.grpo.tasks` documents the hooks' signatures.

Launch (both paths are required; any other key as usual):

    python experiments/main.py --config=configs/grpo_dataset.py --workdir=runs/mine \\
        --config.model.hf_path=/path/to/Qwen2-0.5B-Instruct \\
        --config.dataset.path=/path/to/gsm8k_train.jsonl --config.shaping.chain=laser

Settings: lr 1e-6 and β = 0.04 (DeepSeekMath's GRPO), 16 prompts x 8 completions of up
to 256 tokens per update (each minibatch's gradient in 4 microbatches of 16
sequences, for memory; the blocks scanned, faster than looped at this size), an
instruction that asks for the answer after `####` (as
verl's GSM8K preprocessing does); LASER's target 128 tokens when `shaping.chain` is set.
They are starting points for a ~0.5B model, not settings tuned on one.

Runtime: on this 2-core CPU the test suite's 28k-parameter Qwen2 (`rlcore.lm.toy`)
runs 4 updates of 4 x 4 completions in 13 s, start-up and compiling included
(2026-12-04). No real checkpoint could be run here (nothing can be downloaded), so
there is no learning result for this config yet and no results file. Speed against
TRL: benchmarks/README.md.
"""

from rlcore import experiment
from rlcore.agents import grpo


def get_config(arg=None):
  del arg
  c = experiment.with_runner_defaults(grpo.default_config())
  c.task = "dataset"
  c.model.hf_path = ""          # required: --config.model.hf_path=/path/to/checkpoint
  c.dataset.path = ""           # required: --config.dataset.path=/path/to/data.jsonl
  c.dataset.prompt_suffix = ("\nLet's think step by step and output the final answer "
                             "after \"####\".")
  c.max_completion_len = 256
  c.prompts_per_step, c.group_size = 16, 8
  c.microbatches = 4            # the backward pass 16 sequences at a time (same gradient)
  c.model.scan_layers = True    # scanned blocks: faster than the loop at ~0.5B (lm.LMConfig)
  c.lr = 1e-6
  c.kl_coef = 0.04
  c.shaping.target_length = 128
  c.shaping.laser_lower, c.shaping.laser_upper, c.shaping.laser_interval = 64, 256, 32
  c.num_updates = 200
  c.chunk_updates = 10
  c.eval_every = 20
  c.eval_problems = 128
  return c
