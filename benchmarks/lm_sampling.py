"""Benchmark of rlcore.lm: KV-cache sampling against recompute-the-prefix sampling.

For each model size it samples the same batch with the same key twice, once with
`rlcore.lm.sample` (prefill + one-token steps over a KV cache) and once with the
peer `rlcore.lm.sample_without_cache` (every step re-runs the model over the whole
[B, P + N] buffer), and reports the compile time (lower + compile) apart from the
steady-state median, generated tokens per second (B·N / time) and the speed ratio
`peer time / cache time`. EOS is disabled (eos_id = -1) so every row generates N
tokens. It also times the forward + backward of `token_logprobs` (the policy-gradient
side of a GRPO step) on the tiny model.

    python benchmarks/lm_sampling.py                  # tiny task size and Qwen2-0.5B size
    python benchmarks/lm_sampling.py --quick          # small shapes; Qwen2 widths, 2 layers
    python benchmarks/lm_sampling.py --json out.json  # also write the rows as JSON
    python benchmarks/lm_sampling.py --sections sampling
    python benchmarks/lm_sampling.py --large          # + GRPO-scale rollouts (accelerators)

Sizes: (a) the tiny text-task model (`LMConfig.tiny(64)`, float32), batch 64, prompt 32,
64 new tokens; (b) a random-init model of Qwen2-0.5B's sizes (494M parameters,
float32 by default, `--qwen-dtype bfloat16` for bf16 storage), batch 2, prompt 32,
16 new tokens. Logprob
gradient: batch 512 x 128 tokens on the tiny model.

To extend: write `def my_section(args) -> list[dict]` and append it to SECTIONS; rows
are printed by `print_rows` (keys: section, case, shape, compile_s, ... any numbers).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from rlcore import lm


def compile_and_time(fn, args, reps):
  """(compile seconds, median steady-state seconds, output) of jax.jit(fn)(*args)."""
  args = jax.device_put(args)
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - t0
  out = jax.block_until_ready(compiled(*args))  # warm up
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - t)
  return compile_s, statistics.median(times), out


def random_prompts(rng, batch, prompt_len, vocab):
  """[B, P] left-padded prompts with 50-100 % real tokens, and their mask."""
  lengths = rng.integers(prompt_len // 2, prompt_len + 1, batch)
  mask = (np.arange(prompt_len)[None, :] >= prompt_len - lengths[:, None]).astype(np.int32)
  tokens = np.where(mask == 1, rng.integers(2, vocab, (batch, prompt_len)), 0)
  return tokens.astype(np.int32), mask


def sampling_case(name, config, batch, prompt_len, new_tokens, reps, peer_reps):
  """One row: KV-cache sampling vs recompute-the-prefix, same params, batch and key."""
  rng = np.random.default_rng(0)
  t0 = time.perf_counter()
  params = jax.block_until_ready(jax.jit(lm.init_params, static_argnums=0)(
      config, jax.random.key(0)))
  init_s = time.perf_counter() - t0
  tokens, mask = random_prompts(rng, batch, prompt_len, config.vocab_size)
  key = jax.random.key(1)

  def run(sampler):
    return lambda p, t, m, k: sampler(p, config, t, m, k, max_new_tokens=new_tokens,
                                      temperature=1.0, top_p=1.0, eos_id=-1, pad_id=0)

  c_compile, c_time, c_out = compile_and_time(run(lm.sample), (params, tokens, mask, key), reps)
  generated = batch * new_tokens
  row = dict(
      section="sampling", case=name, shape=f"B={batch} P={prompt_len} N={new_tokens}",
      params_m=lm.count_params(params) / 1e6, param_dtype=config.param_dtype,
      init_s=init_s, compile_s=c_compile, cache_s=c_time, cache_tok_s=generated / c_time,
      peer_compile_s=float("nan"), peer_s=float("nan"), peer_tok_s=float("nan"),
      speedup=float("nan"), same_tokens=None)
  if peer_reps:  # 0: too slow to time the peer at this size on this machine
    n_compile, n_time, n_out = compile_and_time(run(lm.sample_without_cache),
                                                (params, tokens, mask, key), peer_reps)
    row.update(peer_compile_s=n_compile, peer_s=n_time, peer_tok_s=generated / n_time,
               speedup=n_time / c_time, same_tokens=bool(np.array_equal(
                   np.asarray(c_out.response), np.asarray(n_out.response))))
  return row


def sampling_rows(args):
  if args.quick:
    cases = [("tiny", lm.LMConfig.tiny(64), 8, 16, 16, 3, 2),
             ("qwen2-0.5b widths, 2 layers", lm.LMConfig.qwen2_0_5b(
                 num_layers=2, param_dtype=args.qwen_dtype), 1, 8, 4, 1, 1)]
  else:
    cases = [("tiny", lm.LMConfig.tiny(64), 64, 32, 64, args.reps, args.reps),
             ("qwen2-0.5b (random init)", lm.LMConfig.qwen2_0_5b(param_dtype=args.qwen_dtype),
              2, 32, 16, 2, 1)]
  if args.large:  # GRPO-scale rollouts; meant for accelerators
    cases += [("tiny", lm.LMConfig.tiny(64), 512, 32, 128, args.reps, 1),
              ("qwen2-0.5b (random init)", lm.LMConfig.qwen2_0_5b(param_dtype=args.qwen_dtype),
               32, 32, 64, 2, 1)]
  rows = []
  for case in cases:
    rows.append(sampling_case(*case))
    print_rows(rows[-1:])
  return rows


def logprob_grad_rows(args):
  """Forward + backward of sum(token_logprobs · mask) on the tiny model: the LM side of a
  policy-gradient step at GRPO's batch (512 sequences x 128 tokens)."""
  batch, length = (64, 64) if args.quick else (512, 128)
  config = lm.LMConfig.tiny(64)
  params = lm.init_params(config, jax.random.key(0))
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, 64, (batch, length)).astype(np.int32)
  mask = np.ones((batch, length), np.float32)

  def loss(p, t, m):
    return jnp.sum(lm.token_logprobs(p, config, t, m) * m) / jnp.sum(m)

  rows = []
  for case, fn in [("forward (token_logprobs)", loss),
                   ("forward + backward", jax.grad(loss))]:
    c, s, _ = compile_and_time(fn, (params, tokens, mask), 3 if args.quick else args.reps)
    rows.append(dict(section="logprob_grad", case=case, shape=f"B={batch} L={length}",
                     params_m=lm.count_params(params) / 1e6, compile_s=c, step_s=s,
                     tok_s=batch * length / s))
  print_rows(rows)
  return rows


# ---------------------------------------------------------------------------------------
# HOOK: `grpo_step_split(args) -> list[dict]` goes here (another worker adds it): the time
# split of one GRPO step (sampling, reward/advantages, logprob forward+backward,
# optimizer) with rows of section="grpo_step_split"; then append it to SECTIONS below.
# ---------------------------------------------------------------------------------------

SECTIONS = {"sampling": sampling_rows, "logprob_grad": logprob_grad_rows}


def print_rows(rows):
  for r in rows:
    if r["section"] == "sampling":
      print(f"| {r['case']} | {r['shape']} | {r['params_m']:.1f}M {r['param_dtype']} | "
            f"{r['compile_s']:.1f} / {r['peer_compile_s']:.1f} | {r['cache_s'] * 1e3:.0f} | "
            f"{r['peer_s'] * 1e3:.0f} | {r['cache_tok_s']:.0f} | {r['peer_tok_s']:.1f} | "
            f"{r['speedup']:.1f}x | {r['same_tokens']} |")
    else:
      print(f"| {r['case']} | {r['shape']} | {r['params_m']:.2f}M | {r['compile_s']:.1f} | "
            f"{r.get('step_s', float('nan')) * 1e3:.0f} | {r.get('tok_s', float('nan')):.0f} |")


HEADERS = {
    "sampling": ("| model | shape | params | compile s (cache / peer) | cache ms | peer ms | "
                 "cache tok/s | peer tok/s | vs peer | same tokens |\n"
                 "|---|---|---|---:|---:|---:|---:|---:|---:|---|"),
    "logprob_grad": ("| step | shape | params | compile s | ms | tokens/s |\n"
                     "|---|---|---|---:|---:|---:|"),
}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
  parser.add_argument("--reps", type=int, default=5, help="timed repeats per tiny row")
  parser.add_argument("--json", default=None, help="also write the rows here")
  parser.add_argument("--qwen-dtype", default="float32", choices=("float32", "bfloat16"),
                      help="parameter storage of the Qwen2-0.5B-sized model (float32 was "
                           "1.6x faster on the CPU: bf16 weights are converted every step)")
  parser.add_argument("--large", action="store_true",
                      help="add GRPO-scale rollouts (tiny B=512 N=128, Qwen2-0.5B B=32 N=64)")
  parser.add_argument("--sections", default=",".join(SECTIONS),
                      help=f"comma-separated subset of {list(SECTIONS)}")
  args = parser.parse_args()
  device = jax.devices()[0]
  print(f"jax {jax.__version__}, backend {jax.default_backend()}, device "
        f"{getattr(device, 'device_kind', device)}, {len(jax.devices())} device(s), "
        f"python {platform.python_version()}")
  rows = []
  for name in args.sections.split(","):
    print(f"\n{name}:\n{HEADERS.get(name, '')}")
    rows.extend(SECTIONS[name](args))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(dict(jax=jax.__version__, backend=jax.default_backend(),
                     device=str(getattr(device, "device_kind", device)), rows=rows), f,
                indent=1)


if __name__ == "__main__":
  main()
