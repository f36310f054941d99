"""Benchmark of rlcore transforms against rlax and numpy, measured in the same run.

For each function and shape it reports the compile time (lower + compile), the
steady-state median time of the compiled call, and speed ratios
`peer_time / rlcore_time` (> 1 means rlcore is faster) against rlax (where rlax has
the function) and a numpy implementation (a Python loop over time, vectorised over
the batch, for the recurrences; vectorised numpy otherwise). Contenders are timed
interleaved (round-robin), on device-resident inputs, so that machine drift and
host-to-device copies do not bias the ratios.

    python benchmarks/transforms.py                 # full table
    python benchmarks/transforms.py --quick         # smaller shapes, fewer repeats
    python benchmarks/transforms.py --json out.json # also write the rows as JSON

Shapes: control [T, B] = [128, 2048], [1024, 256], [4096, 64] and PureJaxRL's CartPole
rollout [128, 4]; LLM: 64 prompts x 8
samples x 4096 tokens (token-level GAE over [4096, 512], PURE credit with 64 steps
per response, GRPO on [64, 8] broadcast to the tokens).
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

import rlcore

try:
  import rlax
except ImportError:  # rlax is a test extra; the benchmark still runs without it
  rlax = None


def compare(candidates, reps):
  """Times candidates interleaved, round-robin, so that drift hits all of them alike.

  Args:
    candidates: list of (name, fn, args, is_jax). JAX functions are jitted and their
      compile time (lower + compile) is measured apart; their array arguments are
      placed on the device first, so host-to-device copies are not timed.
    reps: timed rounds.

  Returns:
    {name: (compile seconds or None, median steady-state seconds)}.
  """
  calls, compile_s = {}, {}
  for name, fn, args, is_jax in candidates:
    if is_jax:
      args = jax.device_put(args)
      t0 = time.perf_counter()
      compiled = jax.jit(fn).lower(*args).compile()
      compile_s[name] = time.perf_counter() - t0
      call = (lambda c, a: lambda: jax.block_until_ready(c(*a)))(compiled, args)
    else:
      compile_s[name] = None
      call = (lambda f, a: lambda: f(*a))(fn, args)
    call()  # warm up
    calls[name] = call
  times = {name: [] for name in calls}
  for _ in range(reps):
    for name, call in calls.items():
      t = time.perf_counter()
      call()
      times[name].append(time.perf_counter() - t)
  return {name: (compile_s[name], statistics.median(times[name])) for name in calls}


def row(function, shape, results, reps_note=None):
  """A table row from `compare` results keyed "rlcore", "rlax", "numpy"."""
  c, s = results["rlcore"]
  out = dict(function=function, shape=shape, compile_ms=c * 1e3, rlcore_us=s * 1e6)
  for peer in ("rlax", "numpy"):
    if peer in results:
      ps = results[peer][1]
      out[f"{peer}_us"] = ps * 1e6
      out[f"vs_{peer}"] = ps / s
  return out


# --- numpy peers ------------------------------------------------------------------------------

def np_gae(r, values, discount, lam):
  adv = np.zeros_like(r)
  acc = np.zeros(r.shape[1:], r.dtype)
  delta = r + discount * values[1:] - values[:-1]
  for t in range(r.shape[0] - 1, -1, -1):
    acc = delta[t] + discount[t] * lam * acc
    adv[t] = acc
  return adv


def np_lambda_returns(r, next_values, discount, lam):
  out = np.zeros_like(r)
  acc = next_values[-1]
  for t in range(r.shape[0] - 1, -1, -1):
    acc = r[t] + discount[t] * ((1 - lam) * next_values[t] + lam * acc)
    out[t] = acc
  return out


def np_min_form(r, mask, temperature):
  logits = np.where(mask, -r / temperature, -np.inf)
  top = np.max(logits, axis=-1, keepdims=True)
  e = np.where(mask, np.exp(logits - top), 0.0)
  return e / e.sum(-1, keepdims=True) * r


def np_grpo(r, eps):
  mean = r.mean(-1, keepdims=True)
  std = r.std(-1, ddof=1, keepdims=True)
  return (r - mean) / (std + eps)


# --- rows -------------------------------------------------------------------------------------

def control_data(rng, t, b):
  r = rng.normal(size=(t, b)).astype(np.float32)
  values = rng.normal(size=(t + 1, b)).astype(np.float32)
  term = rng.random((t, b)) < 0.01
  trunc = (rng.random((t, b)) < 0.01) & ~term
  return r, values, term, trunc


def rows_for_control(rng, t, b, reps, functions=("gae", "lambda_returns", "min_form",
                                                    "grpo_advantages")):
  gamma, lam = 0.99, 0.95
  r, values, term, trunc = control_data(rng, t, b)
  discount = (gamma * (1 - term)).astype(np.float32)
  shape = f"[{t}, {b}]"
  out = []
  if "gae" in functions:
    cands = [("rlcore", lambda r, v, te, tr: rlcore.gae(r, v, te, tr, gamma, lam),
              (r, values, term, trunc), True),
             ("numpy", np_gae, (r, values, discount, lam), False)]
    if rlax is not None:
      peer = jax.vmap(rlax.truncated_generalized_advantage_estimation,
                      in_axes=(1, 1, None, 1), out_axes=1)
      cands.append(("rlax", lambda r, d, v: peer(r, d, lam, v), (r, discount, values), True))
    out.append(row("gae", shape, compare(cands, reps)))
  if "lambda_returns" in functions:
    next_values = values[1:]
    cands = [("rlcore", lambda r, nv, te: rlcore.lambda_returns(r, nv, te, None, gamma, lam),
              (r, next_values, term), True),
             ("numpy", np_lambda_returns, (r, next_values, discount, lam), False)]
    if rlax is not None:
      peer_l = jax.vmap(rlax.lambda_returns, in_axes=(1, 1, 1, None), out_axes=1)
      cands.append(("rlax", lambda r, d, nv: peer_l(r, d, nv, lam), (r, discount, next_values),
                    True))
    out.append(row("lambda_returns", shape, compare(cands, reps)))
  if "min_form" in functions:
    # min_form over B sequences of T steps each.
    steps = np.ascontiguousarray(r.T)
    mask = np.ones_like(steps, bool)
    cands = [("rlcore", lambda x, m: rlcore.min_form(x, m, temperature=0.1), (steps, mask), True),
             ("numpy", np_min_form, (steps, mask, 0.1), False)]
    out.append(row("min_form", f"[{b}, {t}] steps", compare(cands, reps)))
  if "grpo_advantages" in functions:
    # grpo over T*B samples in groups of 8.
    grouped = r.reshape(-1, 8)
    cands = [("rlcore", lambda x: rlcore.grpo_advantages(x), (grouped,), True),
             ("numpy", np_grpo, (grouped, 1e-6), False)]
    out.append(row("grpo_advantages", f"[{grouped.shape[0]}, 8]", compare(cands, reps)))
  return out


def rows_for_llm(rng, prompts, group, tokens, steps, reps):
  b = prompts * group
  # Token-level GAE (PPO on an LLM): time axis = tokens.
  out = rows_for_control(rng, tokens, b, reps, functions=("gae", "lambda_returns"))
  for r in out:
    r["shape"] = f"[{tokens} tok, {b} seq]"

  # PURE credit: min_form over steps, scattered to tokens, token returns-to-go.
  step_r = rng.uniform(-1, 1, size=(b, steps)).astype(np.float32)
  n_steps = rng.integers(1, steps + 1, size=(b,))
  step_mask = np.arange(steps)[None, :] < n_steps[:, None]
  ends = np.sort(rng.choice(tokens, size=(b, steps)), axis=-1).astype(np.int32)
  resp = np.arange(tokens)[None, :] <= ends.max(-1, keepdims=True)

  def pure(x, m, e, rm):
    star = rlcore.min_form(x, m, temperature=0.1)
    return rlcore.token_returns(rlcore.steps_to_tokens(star, e, m, tokens), rm)

  def np_pure(x, m, e, rm):
    star = np.where(m, np_min_form(x, m, 0.1), 0.0)
    tok = np.zeros((b, tokens), np.float32)
    for i in range(b):
      np.add.at(tok[i], e[i][m[i]], star[i][m[i]])
    return np.flip(np.cumsum(np.flip(tok * rm, -1), -1), -1) * rm

  res = compare([("rlcore", pure, (step_r, step_mask, ends, resp), True),
                 ("numpy", np_pure, (step_r, step_mask, ends, resp), False)], reps)
  out.append(row("min_form -> tokens -> returns",
                 f"[{b} seq, {steps} steps, {tokens} tok]", res))
  res = compare([("rlcore", lambda x, m: rlcore.min_form(x, m, temperature=0.1),
                  (step_r, step_mask), True),
                 ("numpy", np_min_form, (step_r, step_mask, 0.1), False)], reps)
  out.append(row("min_form", f"[{b} seq, {steps} steps]", res))

  # GRPO on [P, G] and its broadcast to the response tokens.
  rewards = rng.integers(0, 2, size=(prompts, group)).astype(np.float32)
  mask = rng.random((prompts, group, tokens)) < 0.9
  res = compare([("rlcore", lambda x, m: rlcore.broadcast_to_tokens(rlcore.grpo_advantages(x), m),
                  (rewards, mask), True),
                 ("numpy", lambda x, m: np_grpo(x, 1e-6)[..., None] * m, (rewards, mask), False)],
                reps)
  out.append(row("grpo_advantages -> tokens", f"[{prompts}, {group}, {tokens} tok]", res))
  res = compare([("rlcore", lambda x: rlcore.grpo_advantages(x), (rewards,), True),
                 ("numpy", np_grpo, (rewards, 1e-6), False)], reps)
  out.append(row("grpo_advantages", f"[{prompts}, {group}]", res))
  return out


def method_sweep(rng, shapes, reps):
  """GAE under each recurrence path, to pick the per-backend default by measurement."""
  paths = [("scan, unroll 1", dict(method="scan", unroll=1)),
           ("scan, unroll 8", dict(method="scan", unroll=8)),
           ("scan, unroll 16", dict(method="scan", unroll=16)),
           ("associative", dict(method="associative"))]
  rows = []
  for t, b in shapes:
    r, values, term, trunc = control_data(rng, t, b)
    cands = [(label, (lambda kw: lambda r, v, te, tr: rlcore.gae(r, v, te, tr, 0.99, 0.95, **kw))(kw),
              (r, values, term, trunc), True) for label, kw in paths]
    res = compare(cands, reps)
    base = res[paths[0][0]][1]
    for label, _ in paths:
      c, s = res[label]
      rows.append(dict(shape=f"[{t}, {b}]", path=label, compile_ms=c * 1e3, us=s * 1e6,
                       vs_scan1=base / s))
  return rows


def fmt(x, spec):
  return "-" if x is None else format(x, spec)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
  parser.add_argument("--reps", type=int, default=None, help="timed repeats per row")
  parser.add_argument("--json", default=None, help="also write the rows here")
  parser.add_argument("--skip-sweep", action="store_true", help="skip the GAE path sweep")
  args = parser.parse_args()
  reps = args.reps or (5 if args.quick else 50)
  rng = np.random.default_rng(0)
  if args.quick:
    control = [(32, 64), (128, 16)]
    llm = (4, 4, 256, 16)
  else:
    control = [(128, 2048), (1024, 256), (4096, 64), (128, 4)]
    llm = (64, 8, 4096, 64)

  device = jax.devices()[0]
  print(f"jax {jax.__version__}, backend {jax.default_backend()}, device "
        f"{getattr(device, 'device_kind', device)}, {len(jax.devices())} device(s), "
        f"python {platform.python_version()}, rlax {getattr(rlax, '__version__', 'absent')}")
  rows = []
  for t, b in control:
    rows.extend(rows_for_control(rng, t, b, reps))
  rows.extend(rows_for_llm(rng, *llm, reps))

  print("\n| function | shape | compile ms | rlcore µs | rlax µs | vs rlax | numpy µs | vs numpy |")
  print("|---|---|---:|---:|---:|---:|---:|---:|")
  for r in rows:
    print(f"| {r['function']} | {r['shape']} | {r['compile_ms']:.0f} | {r['rlcore_us']:.1f} | "
          f"{fmt(r.get('rlax_us'), '.1f')} | {fmt(r.get('vs_rlax'), '.2f')}x | "
          f"{fmt(r.get('numpy_us'), '.1f')} | {fmt(r.get('vs_numpy'), '.1f')}x |")
  sweep = [] if args.skip_sweep else method_sweep(rng, control[:3], reps)
  if sweep:
    print("\nGAE recurrence paths (default per backend is chosen from this):")
    print("| shape | path | compile ms | µs | speed vs scan unroll 1 |")
    print("|---|---|---:|---:|---:|")
    for r in sweep:
      print(f"| {r['shape']} | {r['path']} | {r['compile_ms']:.0f} | {r['us']:.1f} | "
            f"{r['vs_scan1']:.2f}x |")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(dict(jax=jax.__version__, backend=jax.default_backend(),
                     device=str(getattr(device, "device_kind", device)), rows=rows,
                     sweep=sweep), f, indent=1)


if __name__ == "__main__":
  main()
