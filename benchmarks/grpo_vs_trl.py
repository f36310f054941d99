"""GRPO steps per second: rlcore's GRPO against TRL's `GRPOTrainer` on the same tiny Qwen2.

Both train the toy checkpoint of `rlcore.lm.toy` (a random Qwen2: vocabulary 282 in a
288-row embedding, hidden 32, intermediate 64, 2 layers, 4 query and 2 key/value heads,
tied embeddings; 27,936 parameters; its byte-level BPE tokenizer and ChatML template) on
its synthetic GSM8K-style prompts, rendered with that chat template, with the same
settings: 8 prompts x 8 completions per step, at most 32 completion tokens (the flags
--prompts, --group and --max_tokens; the model's sizes are flags too), temperature 1
(no top-k or top-p), one optimiser step per batch (TRL's num_iterations = 1, rlcore's
inner_epochs = num_minibatches = 1), Adam (TRL's AdamW with weight decay 0) at a
constant lr 3e-3, gradient clip 1.0, ratio clip [0.8, 1.28], token-mean loss (TRL's
"dapo"), group-normalised advantages, no KL (β = 0), float32 on the CPU. The reward is a
trivially learnable one (the fraction of a completion's characters that are digits), so
the per-step reward curves can be compared.

Each run is a separate process (`--worker`), the trainers alternate per seed, and the
first `--warmup` steps (compiling, for rlcore) are left out of the steady-state times.
Per step: sampling (generation), scoring (decoding and the reward function), the rest
(old/reference log-probabilities, advantages and the update) and the whole step.

    python benchmarks/grpo_vs_trl.py --trl_python=/path/to/trl-venv/bin/python
    python benchmarks/grpo_vs_trl.py --hidden_size=128 --num_layers=4   # a wider model
    python benchmarks/grpo_vs_trl.py --seeds=0 --steps=10 --json out.json   # quick
    # Qwen2-0.5B's body (with the toy's vocabulary), on a CPU:
    python benchmarks/grpo_vs_trl.py --hidden_size=896 --intermediate_size=4864 \
        --num_layers=24 --num_heads=14 --prompts=2 --group=4 --max_tokens=16 \
        --microbatches=1 --scan_layers --seeds=0 --steps=5 --warmup=2

The update's gradient is the same in both, computed in parts: rlcore sums it over
`--microbatches` (2) halves of the batch in one jitted update (`config.microbatches`),
TRL over `--trl_accumulation` (1) parts (its gradient_accumulation_steps, with
per_device_train_batch_size = the batch / that). On this CPU rlcore's update was
faster in 2 parts than in 1 or 4, TRL's in 1 part than in 2 (benchmarks/README.md).

TRL runs in the interpreter `--trl_python` (default: this one), which needs trl,
torch and transformers; rlcore runs here. rlcore runs with `reference_diagnostics =
False`: at β = 0 TRL computes neither reference nor old log-probabilities, and neither
does rlcore then. Results: benchmarks/README.md ("GRPO against TRL's GRPOTrainer").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

P, G, N, LR = 8, 8, 32, 3e-3    # defaults of --prompts, --group, --max_tokens; the lr


def digits(completions):
  """The fraction of each completion's characters that are digits."""
  return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def rlcore_reward(prompts, completions, answers):
  """`digits` in the signature of rlcore's `dataset.reward_fn`."""
  del prompts, answers
  return digits(completions)


def run_rlcore(folder, seed, steps, P=P, G=G, N=N, *, microbatches=2, scan_layers=False):
  import jax
  from rlcore.agents import grpo
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # this file, importable
  c = grpo.default_config()
  c.task, c.model.hf_path, c.dataset.path = "dataset", folder + "/ckpt", folder + "/data.jsonl"
  c.dataset.reward_fn = "grpo_vs_trl:rlcore_reward"
  c.prompts_per_step, c.group_size, c.max_completion_len = P, G, N
  c.temperature, c.top_p, c.lr, c.kl_coef, c.max_grad_norm = 1.0, 1.0, LR, 0.0, 1.0
  c.clip_low, c.clip_high, c.aggregation, c.advantage = 0.2, 0.28, "token-mean", "grpo"
  c.inner_epochs = c.num_minibatches = 1
  # As TRL at β = 0 and num_iterations = 1: no reference model, no separate forward pass
  # for the old log-probabilities (the kl and occupancy_* metrics are not measured).
  c.reference_diagnostics = False
  c.microbatches = microbatches    # the same gradient, summed over parts of the batch
  c.model.scan_layers = scan_layers
  c.num_updates, c.eval_every = 10 ** 6, 10 ** 6
  agent = grpo.make_agent(c)
  state = agent.init(jax.random.key(seed), seed=seed)
  rows = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, m = agent.run_chunk(state, 1)
    total = time.perf_counter() - t0
    rows.append(dict(reward=float(m["verifier_reward"][0]), total=total,
                     sample=float(m["time_sample"][0]), score=float(m["time_score"][0]),
                     rest=total - float(m["time_sample"][0]) - float(m["time_score"][0])))
  return rows


def run_trl(folder, seed, steps, P=P, G=G, N=N, *, accumulation=1):
  import datasets
  import torch
  import transformers
  from trl import GRPOConfig, GRPOTrainer
  torch.set_num_threads(os.cpu_count())
  rows_in = [json.loads(l) for l in open(folder + "/data.jsonl")]
  data = datasets.Dataset.from_list(
      [{"prompt": [{"role": "user", "content": r["question"]}]} for r in rows_in])

  def reward(completions, **_):
    return digits([c[0]["content"] if isinstance(c, list) else c for c in completions])

  args = GRPOConfig(
      output_dir=os.path.join(folder, f"trl_{seed}"),
      per_device_train_batch_size=P * G // accumulation,
      num_generations=G, max_completion_length=N, temperature=1.0, top_p=1.0, top_k=0,
      num_iterations=1, learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0,
      weight_decay=0.0, max_grad_norm=1.0, beta=0.0, epsilon=0.2, epsilon_high=0.28,
      loss_type="dapo", scale_rewards="group", max_steps=steps, logging_steps=1,
      report_to=[], seed=seed, use_cpu=True, bf16=False, save_strategy="no",
      gradient_accumulation_steps=accumulation,
      dataloader_num_workers=0, disable_tqdm=True)
  model = transformers.AutoModelForCausalLM.from_pretrained(folder + "/ckpt",
                                                            dtype=torch.float32)
  tok = transformers.AutoTokenizer.from_pretrained(folder + "/ckpt")
  trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=data,
                        processing_class=tok)
  clock = {"generate": 0.0, "rewards": 0.0}

  def timed(name, fn):
    def wrapper(*a, **k):
      t = time.perf_counter()
      try:
        return fn(*a, **k)
      finally:
        clock[name] += time.perf_counter() - t
    return wrapper

  trainer._generate = timed("generate", trainer._generate)
  trainer._calculate_rewards = timed("rewards", trainer._calculate_rewards)
  rows = []

  class Timer(transformers.TrainerCallback):
    def on_step_begin(self, *a, **k):
      clock.update(generate=0.0, rewards=0.0, start=time.perf_counter())

    def on_step_end(self, *a, **k):
      total = time.perf_counter() - clock["start"]
      rows.append(dict(total=total, sample=clock["generate"],
                       score=clock["rewards"],
                       rest=total - clock["generate"] - clock["rewards"]))

  trainer.add_callback(Timer())
  trainer.train()
  rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
  for r, x in zip(rows, rewards):
    r["reward"] = float(x)
  return rows


def summarise(rows, warmup):
  steady = rows[warmup:]
  med = lambda k: statistics.median(r[k] for r in steady)
  return dict(steps_per_s=1.0 / med("total"), total_s=med("total"), sample_s=med("sample"),
              score_s=med("score"), rest_s=med("rest"),
              first_steps_s=sum(r["total"] for r in rows[:warmup]),
              rewards=[round(r["reward"], 4) for r in rows])


def compare(args, folder):
  """Writes the checkpoint and data into `folder`, runs every seed of both trainers and
  returns {trainer: {seed: summary}}."""
  from rlcore.lm import toy
  toy.write_checkpoint(folder + "/ckpt", hidden_size=args.hidden_size,
                       num_layers=args.num_layers, intermediate_size=args.intermediate_size,
                       num_heads=args.num_heads, num_kv_heads=args.num_kv_heads)
  toy.write_dataset(folder + "/data.jsonl", n=64)
  here = os.path.abspath(__file__)
  root = os.path.dirname(os.path.dirname(here))
  results = {"rlcore": {}, "trl": {}}
  for seed in [int(s) for s in args.seeds.split(",")]:
    for name in ("rlcore", "trl") if seed % 2 == 0 else ("trl", "rlcore"):
      python = sys.executable if name == "rlcore" else args.trl_python
      env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
      t = time.perf_counter()
      proc = subprocess.run([python, here, "--worker", name, "--folder", folder, "--seed",
                             str(seed), "--steps", str(args.steps), "--prompts",
                             str(args.prompts), "--group", str(args.group), "--max_tokens",
                             str(args.max_tokens), "--microbatches", str(args.microbatches),
                             "--trl_accumulation", str(args.trl_accumulation)]
                            + (["--scan_layers"] if args.scan_layers else []),
                            capture_output=True, text=True, env=env, cwd=root)
      if proc.returncode:
        sys.exit(f"{name} seed {seed} failed:\n{proc.stderr[-3000:]}")
      rows = json.loads([l for l in proc.stdout.splitlines() if l.startswith("ROWS")][-1][5:])
      s = summarise(rows, args.warmup)
      s["wall_s"] = time.perf_counter() - t
      results[name][seed] = s
      print(f"{name:>6} seed {seed}: {s['steps_per_s']:.2f} steps/s (step {s['total_s']:.3f} s: "
            f"sample {s['sample_s']:.3f}, score {s['score_s']:.3f}, rest {s['rest_s']:.3f}); "
            f"first {args.warmup} steps {s['first_steps_s']:.1f} s; process {s['wall_s']:.0f} s; "
            f"reward first 5 {sum(s['rewards'][:5]) / 5:.3f}, last 5 "
            f"{sum(s['rewards'][-5:]) / 5:.3f}", flush=True)
  return results


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--trl_python", default=sys.executable)
  ap.add_argument("--seeds", default="0,1,2")
  ap.add_argument("--steps", type=int, default=30)
  ap.add_argument("--warmup", type=int, default=3)
  ap.add_argument("--hidden_size", type=int, default=32)
  ap.add_argument("--num_layers", type=int, default=2)
  ap.add_argument("--intermediate_size", type=int, default=0, help="0: 2 x hidden_size")
  ap.add_argument("--num_heads", type=int, default=4)
  ap.add_argument("--num_kv_heads", type=int, default=2)
  ap.add_argument("--prompts", type=int, default=P, help="prompts per step")
  ap.add_argument("--group", type=int, default=G, help="completions per prompt")
  ap.add_argument("--max_tokens", type=int, default=N, help="completion tokens at most")
  ap.add_argument("--microbatches", type=int, default=2,
                  help="rlcore: the update's gradient summed over this many parts")
  ap.add_argument("--scan_layers", action="store_true",
                  help="rlcore: nn.scan over the blocks (faster for large models)")
  ap.add_argument("--trl_accumulation", type=int, default=1,
                  help="TRL: gradient_accumulation_steps (the same batch in as many parts)")
  ap.add_argument("--json", default="")
  ap.add_argument("--worker", choices=("rlcore", "trl"), help=argparse.SUPPRESS)
  ap.add_argument("--folder", help=argparse.SUPPRESS)
  ap.add_argument("--seed", type=int, help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.worker:
    batch = dict(P=args.prompts, G=args.group, N=args.max_tokens)
    if args.worker == "rlcore":
      rows = run_rlcore(args.folder, args.seed, args.steps, **batch,
                        microbatches=args.microbatches, scan_layers=args.scan_layers)
    else:
      rows = run_trl(args.folder, args.seed, args.steps, **batch,
                     accumulation=args.trl_accumulation)
    print("ROWS", json.dumps(rows))
    return
  # The checkpoint (1.4 GB at Qwen2-0.5B's body) goes when the comparison ends.
  with tempfile.TemporaryDirectory(prefix="grpo_vs_trl_") as folder:
    results = compare(args, folder)
  for name, runs in results.items():
    sps = [r["steps_per_s"] for r in runs.values()]
    print(f"{name}: median steps/s over seeds {statistics.median(sps):.2f} ({sps})")
  ratio = (statistics.median(r["steps_per_s"] for r in results["rlcore"].values())
           / statistics.median(r["steps_per_s"] for r in results["trl"].values()))
  print(f"rlcore / TRL steps per second: {ratio:.2f}x")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(dict(results=results, ratio=ratio, settings=dict(
          P=args.prompts, G=args.group, N=args.max_tokens, lr=LR, hidden=args.hidden_size,
          layers=args.num_layers, intermediate=args.intermediate_size or 2 * args.hidden_size,
          heads=args.num_heads, kv_heads=args.num_kv_heads, microbatches=args.microbatches,
          trl_accumulation=args.trl_accumulation, scan_layers=args.scan_layers)), f,
          indent=1)


if __name__ == "__main__":
  main()
