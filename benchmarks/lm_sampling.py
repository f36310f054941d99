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
# The time split of one GRPO step.


def _task_model_split(args):
  """Real GRPO steps of `rlcore.agents.grpo` on the text task (P=16 x G=8, 96 new tokens):
  medians of the per-phase timers the agent records (after 2 warm-up steps)."""
  import tempfile
  from rlcore.agents import grpo
  c = grpo.default_config()
  c.sft.steps = 20 if args.quick else 200      # timing only: a short warm start suffices
  c.sft.cache_dir = tempfile.mkdtemp(prefix="rlcore_bench_sft_")
  c.eval_every = 10_000
  if args.quick:
    c.prompts_per_step, c.group_size = 4, 4
  agent = grpo.make_agent(c)
  state = agent.init(jax.random.key(0), seed=0)
  state, _ = agent.run_chunk(state, 2)                     # compile every shape once
  state, m = agent.run_chunk(state, 2 if args.quick else 5)
  phases = {k: float(np.median(m[f"time_{k}"])) for k in
            ("sample", "score", "advantages", "update")}
  return dict(section="grpo_step_split", case="task model (GRPO agent, SFT warm start)",
              shape=f"P={c.prompts_per_step} G={c.group_size} N=96",
              params_m=lm.count_params(state.params) / 1e6, **phases,
              total_s=sum(phases.values()))


def _manual_split(name, config, P, G, prompt_len, new_tokens, reps):
  """One GRPO step of a random-init model with a stand-in scorer (random 0/1 rewards:
  no task exists for a 151k-token vocabulary): sampling, scoring, advantages, and the
  update (old/ref log-probs + forward/backward of the clipped loss + Adam)."""
  import optax
  import rlcore
  params = lm.init_params(config, jax.random.key(0))
  rng = np.random.default_rng(0)
  prompts, pmask = random_prompts(rng, P * G, prompt_len, config.vocab_size)
  opt = optax.adam(1e-6)
  opt_state = opt.init(params)

  @jax.jit
  def sample(p, key):
    out = lm.sample(p, config, prompts, pmask, key, max_new_tokens=new_tokens,
                    temperature=1.0, eos_id=-1, pad_id=0)
    return out.tokens, out.response_mask

  @jax.jit
  def advantages(rewards, response_mask):
    return rlcore.broadcast_to_tokens(rlcore.grpo_advantages(rewards).reshape(-1),
                                      response_mask > 0)

  @jax.jit
  def update(p, o, tokens, mask, response_mask, adv):
    lp_old = lm.token_logprobs(p, config, tokens, mask, start=prompt_len)

    def loss(q):
      lp = lm.token_logprobs(q, config, tokens, mask, start=prompt_len)
      return rlcore.ppo_clip_loss(lp, lp_old, adv, response_mask)[0]

    g = jax.grad(loss)(p)
    u, o = opt.update(g, o, p)
    return optax.apply_updates(p, u), o

  times = {k: [] for k in ("sample", "score", "advantages", "update")}
  for i in range(reps + 1):
    t0 = time.perf_counter()
    tokens, rmask = jax.block_until_ready(sample(params, jax.random.key(i)))
    t1 = time.perf_counter()
    rewards = jnp.asarray(rng.integers(0, 2, (P, G)).astype(np.float32))
    t2 = time.perf_counter()
    adv = jax.block_until_ready(advantages(rewards, rmask))
    t3 = time.perf_counter()
    mask = jnp.concatenate([jnp.asarray(pmask, jnp.float32), rmask], 1)
    params, opt_state = jax.block_until_ready(update(params, opt_state, tokens, mask, rmask, adv))
    t4 = time.perf_counter()
    if i:   # the first step compiles
      for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
        times[k].append(v)
  phases = {k: float(np.median(v)) for k, v in times.items()}
  return dict(section="grpo_step_split", case=name,
              shape=f"P={P} G={G} prompt={prompt_len} N={new_tokens}",
              params_m=lm.count_params(params) / 1e6, **phases, total_s=sum(phases.values()))


def grpo_step_split(args):
  """Time split of one GRPO step (sampling, scoring, advantages, update)."""
  rows = [_task_model_split(args)]
  print_rows(rows[-1:])
  qwen = lm.LMConfig.qwen2_0_5b(param_dtype=args.qwen_dtype,
                                **({"num_layers": 2} if args.quick else {}))
  rows.append(_manual_split("qwen2-0.5b size (random init, stand-in scorer)" +
                            (", 2 layers" if args.quick else ""), qwen, 1, 4, 16,
                            4 if args.quick else 16, 1 if args.quick else 2))
  print_rows(rows[-1:])
  return rows


SECTIONS = {"sampling": sampling_rows, "logprob_grad": logprob_grad_rows,
            "grpo_step_split": grpo_step_split}


def print_rows(rows):
  for r in rows:
    if r["section"] == "sampling":
      print(f"| {r['case']} | {r['shape']} | {r['params_m']:.1f}M {r['param_dtype']} | "
            f"{r['compile_s']:.1f} / {r['peer_compile_s']:.1f} | {r['cache_s'] * 1e3:.0f} | "
            f"{r['peer_s'] * 1e3:.0f} | {r['cache_tok_s']:.0f} | {r['peer_tok_s']:.1f} | "
            f"{r['speedup']:.1f}x | {r['same_tokens']} |")
    elif r["section"] == "grpo_step_split":
      print(f"| {r['case']} | {r['shape']} | {r['params_m']:.1f}M | "
            + " | ".join(f"{r[k] * 1e3:.0f} ({100 * r[k] / r['total_s']:.0f}%)"
                         for k in ("sample", "score", "advantages", "update"))
            + f" | {r['total_s'] * 1e3:.0f} |")
    else:
      print(f"| {r['case']} | {r['shape']} | {r['params_m']:.2f}M | {r['compile_s']:.1f} | "
            f"{r.get('step_s', float('nan')) * 1e3:.0f} | {r.get('tok_s', float('nan')):.0f} |")


HEADERS = {
    "sampling": ("| model | shape | params | compile s (cache / peer) | cache ms | peer ms | "
                 "cache tok/s | peer tok/s | vs peer | same tokens |\n"
                 "|---|---|---|---:|---:|---:|---:|---:|---:|---|"),
    "logprob_grad": ("| step | shape | params | compile s | ms | tokens/s |\n"
                     "|---|---|---|---:|---:|---:|"),
    "grpo_step_split": ("| model | shape | params | sampling ms | scoring ms | advantages ms | "
                        "update ms | step ms |\n|---|---|---|---:|---:|---:|---:|---:|"),
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
