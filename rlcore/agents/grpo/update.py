"""GRPO's update: the clipped token loss plus KL to the reference, over minibatch epochs.

    L(θ) = agg_t[max(−A_t ρ_t, −A_t clip(ρ_t, 1 − ε_low, 1 + ε_high))] + β agg_t[KL_t],

with ρ_t = π_θ / π_old per token on stored old log-probs (`rlcore.ppo_clip_loss`), KL
the k1/k2/k3 estimate to a frozen reference (`rlcore.kl_estimate`) and `agg` the
configured token aggregation (`rlcore.aggregate_tokens`). The functions here are
jitted once per `UpdateSettings` (a hashable value), so every agent with the same
settings shares their compiled programs.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rlcore
from rlcore import lm


@dataclasses.dataclass(frozen=True)
class UpdateSettings:
  """What the update depends on besides parameters and data (static to jit)."""
  lm_config: lm.LMConfig
  prompt_len: int        # PL: completions start at this token index
  lr: float
  lr_warmup_steps: int
  max_grad_norm: float
  clip_low: float
  clip_high: float
  kl_coef: float
  kl_kind: str
  aggregation: str
  inner_epochs: int
  num_minibatches: int
  microbatches: int = 1

  @classmethod
  def from_config(cls, config, lm_config: lm.LMConfig, prompt_len: int) -> "UpdateSettings":
    return cls(lm_config=lm_config, prompt_len=int(prompt_len), lr=float(config.lr),
               lr_warmup_steps=int(config.lr_warmup_steps),
               max_grad_norm=float(config.max_grad_norm), clip_low=float(config.clip_low),
               clip_high=float(config.clip_high), kl_coef=float(config.kl_coef),
               kl_kind=str(config.kl_kind), aggregation=str(config.aggregation),
               inner_epochs=int(config.inner_epochs),
               num_minibatches=int(config.num_minibatches),
               microbatches=int(config.microbatches))


def _float32_master(s: UpdateSettings) -> bool:
  """Low-precision parameters train through a float32 master copy."""
  return s.lm_config.param_dtype != "float32"


def init_optimizer(s: UpdateSettings, params):
  """The optimiser state of `params`: Adam's state, and for bfloat16 parameters a float32
  master copy as well, `(master, adam state)`.

  With bfloat16 parameters the moments and the parameters the updates accumulate in are
  float32, and the bfloat16 policy is the master copy rounded after every step: an
  update smaller than bfloat16's resolution (2^-8 relative) would otherwise be lost.
  """
  if not _float32_master(s):
    return optimizer(s).init(params)
  master = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
  return master, optimizer(s).init(master)


def _step(opt, s: UpdateSettings, params, opt_state, grads):
  """One optimiser step: (params, opt_state), through the master copy if there is one."""
  if not _float32_master(s):
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
  master, inner = opt_state
  grads = jax.tree.map(lambda g: g.astype(jnp.float32), grads)
  updates, inner = opt.update(grads, inner, master)
  master = optax.apply_updates(master, updates)
  return jax.tree.map(lambda m, p: m.astype(p.dtype), master, params), (master, inner)


def optimizer(s: UpdateSettings) -> optax.GradientTransformation:
  """Adam after global-norm clipping, with an optional linear lr warm-up.

  Adam's first steps are sign steps of size lr on every parameter; at lr = 1e-4 they
  can move one token's log-prob by 10+ nats within the first update (measured: k3
  approx_kl 42.6 at update 1 of grpo_length seed 2, 6e-5 at lr = 1e-5). A linear
  warm-up over `lr_warmup_steps` optimiser steps (updates x inner_epochs x
  num_minibatches) avoids that; 0 keeps the plain constant lr.
  """
  lr = (optax.linear_schedule(0.0, s.lr, s.lr_warmup_steps) if s.lr_warmup_steps
        else s.lr)
  return optax.chain(optax.clip_by_global_norm(s.max_grad_norm), optax.adam(lr))


@functools.partial(jax.jit, static_argnames=("lm_config", "prompt_len"))
def completion_logprobs(params, tokens, mask, *, lm_config, prompt_len):
  """[B, N] log-probabilities of the completion tokens (after the prompt)."""
  return lm.token_logprobs(params, lm_config, tokens, mask, start=prompt_len)


def loss(params, batch, s: UpdateSettings):
  """The clipped loss plus β · KL of one minibatch; returns (loss, statistics).

  Without `old_logprobs` in the batch (one on-policy step per batch) the ratio's
  denominator is the current log-probabilities, stopped: ρ = 1 in value, as TRL does
  at num_iterations = 1. Without `ref_logprobs` (β = 0 and no reference diagnostics)
  there is no KL term and the `kl` statistic is NaN.
  """
  lp = lm.token_logprobs(params, s.lm_config, batch["tokens"], batch["mask"], start=s.prompt_len)
  old = batch["old_logprobs"] if "old_logprobs" in batch else jax.lax.stop_gradient(lp)
  pg, st = rlcore.ppo_clip_loss(lp, old, batch["advantages"],
                                batch["loss_mask"], clip_low=s.clip_low,
                                clip_high=s.clip_high, aggregation=s.aggregation)
  if "ref_logprobs" not in batch:
    return pg, dict(st, pg_loss=pg, kl=jnp.full((), jnp.nan, jnp.float32))
  kl_tok = rlcore.kl_estimate(lp, batch["ref_logprobs"], s.kl_kind)
  kl = rlcore.aggregate_tokens(kl_tok, batch["loss_mask"], s.aggregation)
  return pg + s.kl_coef * kl, dict(st, pg_loss=pg, kl=kl)


_TOKEN_MEAN_STATS = ("clip_fraction", "approx_kl")


def microbatch_weights(loss_mask: jax.Array, microbatches: int, aggregation: str) -> jax.Array:
  """[k] weights w_j with loss(minibatch) = Σ_j w_j · loss(microbatch j).

  Every aggregation of `rlcore.aggregate_tokens` is a mean with its own normaliser:
  token-mean over the tokens (w_j = tokens in j / max(tokens, 1)), the others over the
  sequences (w_j = 1 / k, the microbatches being equal).

  Args:
    loss_mask: [B, W] loss mask of the minibatch.
    microbatches: k, dividing B.
    aggregation: the loss's token aggregation.

  Returns:
    [k] float32 weights.
  """
  if aggregation != "token-mean":
    return jnp.full((microbatches,), 1.0 / microbatches, jnp.float32)
  per = jnp.sum(loss_mask.reshape(microbatches, -1).astype(jnp.float32), axis=1)
  return per / jnp.maximum(jnp.sum(per), 1.0)


def minibatch_gradient(params, mb: dict, s: UpdateSettings):
  """((loss, statistics), gradient) of one minibatch, in `s.microbatches` parts.

  With k > 1 microbatches of B / k sequences, their gradients are summed with the
  weights of `microbatch_weights`: the same gradient as in one part, up to float
  rounding, with a k times smaller forward + backward at a time. Measured on a 2-core
  CPU, the toy model (hidden 32, 2 layers) at 64 sequences of 32 + 32 tokens: 31 ms
  in one part, 15 ms in two, 20 ms in four (XLA:CPU's temporary buffer of 42 MB,
  mapped afresh and page-faulted on every call above glibc's 32 MB mmap threshold,
  falls to 21 MB).
  """
  grad_fn = jax.value_and_grad(functools.partial(loss, s=s), has_aux=True)
  k = s.microbatches
  if k == 1:
    return grad_fn(params, mb)
  weights = microbatch_weights(mb["loss_mask"], k, s.aggregation)
  # ppo_clip_loss's clip_fraction and approx_kl are token-means whatever the aggregation.
  token_weights = microbatch_weights(mb["loss_mask"], k, "token-mean")
  parts = jax.tree.map(lambda x: x.reshape((k, x.shape[0] // k) + x.shape[1:]), mb)

  def accumulate(total, inputs):
    part, w, w_tok = inputs
    (value, aux), grads = grad_fn(params, part)
    scaled = ((w * value, {n: (w_tok if n in _TOKEN_MEAN_STATS else w) * x
                           for n, x in aux.items()}),
              jax.tree.map(lambda g: w * g.astype(jnp.float32), grads))
    return jax.tree.map(jnp.add, total, scaled), None

  # Sums in float32 (bfloat16 gradients too: `_step` reads them in float32 anyway).
  zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32),
                       jax.eval_shape(grad_fn, params, jax.tree.map(lambda x: x[0], parts)))
  return jax.lax.scan(accumulate, zeros, (parts, weights, token_weights))[0]


@functools.partial(jax.jit, static_argnames=("s",))
def update(params, opt_state, batch, key, s: UpdateSettings):
  """`inner_epochs` epochs of `num_minibatches` minibatch steps on one batch.

  Args:
    params: policy parameters.
    opt_state: `init_optimizer(s, params)`.
    batch: tokens, mask [B, PL + W]; advantages, loss_mask [B, W]; old_logprobs and
      ref_logprobs [B, W], each optional (see `loss`).
    key: PRNG key of the minibatch permutations.
    s: the settings.

  Returns:
    (params, opt_state, mean statistics over the minibatch steps).
  """
  opt = optimizer(s)
  n = batch["tokens"].shape[0]
  mb_size = n // s.num_minibatches

  def epoch(carry, k):
    perm = jax.random.permutation(k, n)
    mbs = jax.tree.map(lambda x: x[perm].reshape((s.num_minibatches, mb_size) + x.shape[1:]),
                       batch)

    def sgd(carry, mb):
      p, o = carry
      (value, aux), g = minibatch_gradient(p, mb, s)
      return _step(opt, s, p, o, g), dict(aux, loss=value)

    return jax.lax.scan(sgd, carry, mbs)

  (params, opt_state), aux = jax.lax.scan(epoch, (params, opt_state),
                                          jax.random.split(key, s.inner_epochs))
  return params, opt_state, jax.tree.map(jnp.mean, aux)


def trim(batch: dict, lengths, *, prompt_len: int, max_len: int) -> dict:
  """Drops right padding past the longest response (rounded up to 16 tokens): fewer
  shapes to compile, much less work when responses are short."""
  width = min(max_len, int(-(-int(np.max(np.asarray(lengths))) // 16) * 16) or 16)
  return {k: (v[:, :prompt_len + width] if k in ("tokens", "mask") else v[:, :width])
          for k, v in batch.items()}
