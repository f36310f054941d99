"""A decoder-only causal language model in the Llama / Qwen2 layout.

Each of the `num_layers` blocks is pre-norm:

    h = x + Attention(RMSNorm(x)),    y = h + SwiGLU(RMSNorm(h)),
    SwiGLU(x) = W_down (silu(W_gate x) ⊙ W_up x),

with RMSNorm(x) = x / sqrt(mean(x²) + eps) ⊙ scale, rotary position embeddings on the
queries and keys (HF's `rotate_half` convention: the two halves of a head are the
two coordinates of each rotated pair, so HF weights load unchanged), grouped-query
attention (`num_heads` query heads share `num_kv_heads` key/value heads; query head
h reads key/value head h // (num_heads / num_kv_heads)), optional q/k/v biases (Qwen2)
and optionally tied input/output embeddings. See "LLaMA: Open and Efficient Foundation
Language Models", Touvron et al. 2023 (https://arxiv.org/abs/2302.13971), "RoFormer:
Enhanced Transformer with Rotary Position Embedding", Su et al. 2021
(https://arxiv.org/abs/2104.09864) and "GQA: Training Generalized Multi-Query
Transformer Models from Multi-Head Checkpoints", Ainslie et al. 2023
(https://arxiv.org/abs/2305.13245).

Conventions:
* Tokens are `[B, L]` int32 with an `attention_mask` `[B, L]` (1 real, 0 padding) and
  explicit `positions` `[B, L]`; with left padding use `positions_from_mask`.
* Everything is computed in float32 whatever `param_dtype` is (bf16 parameters are
  cast at use); logits are float32. Matrix products use `config.matmul_precision`,
  "highest" by default, so GPUs do not silently drop to TF32.
* The layers are one `nn.scan` over stacked parameters (leading axis `num_layers`),
  which keeps compile time flat in depth; the KV cache is stacked the same way.

Parameter tree (`init_params`), with N = num_layers, D = hidden_size, H = num_heads,
K = num_kv_heads, E = head_dim, F = intermediate_size, V = vocab_size:

    embed/embedding [V, D]
    layers/input_norm/scale [N, D]
    layers/attn/{q,k,v,o}/kernel [N, D, H·E], [N, D, K·E], [N, D, K·E], [N, H·E, D]
    layers/attn/{q,k,v}/bias [N, H·E], [N, K·E], [N, K·E]   (attention_bias only)
    layers/post_attention_norm/scale [N, D]
    layers/mlp/{gate,up}/kernel [N, D, F];  layers/mlp/down/kernel [N, F, D]
    final_norm/scale [D]
    lm_head/kernel [D, V]   (untied embeddings only)

Kernels are HF's `nn.Linear.weight` transposed.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# A finite "minus infinity": fully masked rows (left-padding queries) then give a
# uniform softmax instead of NaNs, in the forward and the backward pass.
_MASKED = float(jnp.finfo(jnp.float32).min)


@dataclasses.dataclass(frozen=True)
class LMConfig:
  """Sizes of a Llama/Qwen2-layout causal LM (hashable: a static jit argument).

  Attributes:
    vocab_size: V, number of token ids.
    hidden_size: D, width of the residual stream.
    intermediate_size: F, width of the SwiGLU MLP.
    num_layers: number of transformer blocks.
    num_heads: query heads H.
    num_kv_heads: key/value heads K (grouped-query attention); H % K == 0.
    head_dim: E, per-head width; None means hidden_size // num_heads.
    rope_theta: rotary base θ (10 000 for Llama 2, 1e6 for Qwen2).
    rms_norm_eps: epsilon inside RMSNorm's square root.
    tie_embeddings: output projection is the input embedding transposed.
    max_position: longest position the model is meant for (informational; rotary
      embeddings extrapolate, nothing is allocated from it).
    attention_bias: q/k/v projections have biases (Qwen2: True, Llama: False).
    param_dtype: "float32" or "bfloat16" storage for the parameters.
    matmul_precision: "highest" (default), "high" or "default", the `precision` of
      every matrix product. On GPUs "default" lets XLA multiply float32 in TF32 (about
      3e-4 logit error at this model's scale, enough to flip near-tied greedy tokens
      between the cached and uncached samplers); "highest" keeps true float32, so the
      sampler's and the trainer's log-probabilities agree. No effect on CPUs.
    remat: rematerialise each block in the backward pass (`jax.checkpoint`, via
      `flax.linen.remat`): the gradient keeps one activation per block instead of all
      of the block's intermediates, for about one more forward pass of compute. The
      parameters and outputs are the same either way.
    scan_layers: run the blocks of a forward pass without a KV cache (training and
      scoring) as `flax.linen.scan` over the stacked layer parameters; False (default)
      runs them as a Python loop over the same stacked parameters, unrolled in the
      compiled program, so each block's saved activations get buffers of their own
      instead of stacked ones, but the parameters are sliced and their gradients
      stacked outside. Forward + backward of the logits on a 2-core CPU, loop against
      scan: 30 against 36 ms (hidden 32, 2 layers, 64 x 64 tokens), 213 against 256 ms
      (hidden 128, 4 layers), 535 against 581-626 ms (hidden 64, 24 layers; compiling
      4.4 against 1.5 s), but 3.6 against 3.1 s at Qwen2-0.5B's body (hidden 896, 24
      layers, 4 x 48 tokens): scan large models. Decoding with a cache always scans
      (the loop was slower there). The parameter layout is the same either way.
  """
  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: Optional[int] = None
  rope_theta: float = 10000.0
  rms_norm_eps: float = 1e-6
  tie_embeddings: bool = True
  max_position: int = 2048
  attention_bias: bool = False
  param_dtype: str = "float32"
  matmul_precision: str = "highest"
  remat: bool = False
  scan_layers: bool = False

  def __post_init__(self):
    if self.head_dim is None:
      if self.hidden_size % self.num_heads:
        raise ValueError(f"hidden_size={self.hidden_size} is not a multiple of "
                         f"num_heads={self.num_heads}; pass head_dim")
      object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"num_heads={self.num_heads} is not a multiple of "
                       f"num_kv_heads={self.num_kv_heads}")
    if self.head_dim % 2:
      raise ValueError(f"head_dim={self.head_dim} must be even for rotary embeddings")
    if self.param_dtype not in _DTYPES:
      raise ValueError(f"param_dtype={self.param_dtype!r}; allowed: {sorted(_DTYPES)}")
    if self.matmul_precision not in ("default", "high", "highest"):
      raise ValueError(f"matmul_precision={self.matmul_precision!r}; allowed: "
                       "'default', 'high', 'highest'")

  @property
  def dtype(self):
    """The jnp dtype of the parameters."""
    return _DTYPES[self.param_dtype]

  def replace(self, **changes) -> "LMConfig":
    """A copy with some fields changed (`dataclasses.replace`)."""
    return dataclasses.replace(self, **changes)

  @classmethod
  def tiny(cls, vocab_size: int, **overrides) -> "LMConfig":
    """A ~0.3M-parameter model for the CPU text tasks.

    hidden 128, SwiGLU 256, 2 layers, 4 query heads of 32 sharing 2 kv heads, tied
    embeddings: 295k parameters plus 128·vocab_size for the embedding.
    """
    base = dict(vocab_size=vocab_size, hidden_size=128, intermediate_size=256,
                num_layers=2, num_heads=4, num_kv_heads=2, rope_theta=10000.0,
                rms_norm_eps=1e-6, tie_embeddings=True, max_position=1024,
                attention_bias=False)
    base.update(overrides)
    return cls(**base)

  @classmethod
  def qwen2_0_5b(cls, **overrides) -> "LMConfig":
    """The sizes of Qwen2-0.5B / Qwen2.5-0.5B (494M parameters, tied embeddings)."""
    base = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                num_layers=24, num_heads=14, num_kv_heads=2, head_dim=64,
                rope_theta=1000000.0, rms_norm_eps=1e-6, tie_embeddings=True,
                max_position=32768, attention_bias=True)
    base.update(overrides)
    return cls(**base)


class KVCache(NamedTuple):
  """A fixed-size key/value cache of S slots, written left to right.

  Slot s holds the keys and values of the s-th token fed to the model (prompt
  padding included, marked invalid in `mask`).
  """
  keys: jax.Array    # [num_layers, B, S, num_kv_heads, head_dim] float32
  values: jax.Array  # [num_layers, B, S, num_kv_heads, head_dim] float32
  mask: jax.Array    # [B, S] bool: the slot holds a real (unpadded) token
  index: jax.Array   # [] int32: next slot to write


def init_cache(config: LMConfig, batch_size: int, max_length: int) -> KVCache:
  """An empty KV cache for `batch_size` sequences of up to `max_length` tokens.

  With grouped-query attention (GQA, https://arxiv.org/abs/2305.13245) it holds
  num_kv_heads heads, not num_heads: 4 · 2 · L · B · S · K · E bytes (float32).

  Args:
    config: the model's LMConfig.
    batch_size: B.
    max_length: S, total slots (prompt + generated tokens).

  Returns:
    A KVCache of zeros with `index` 0.
  """
  shape = (config.num_layers, batch_size, max_length, config.num_kv_heads, config.head_dim)
  return KVCache(keys=jnp.zeros(shape, jnp.float32), values=jnp.zeros(shape, jnp.float32),
                 mask=jnp.zeros((batch_size, max_length), bool),
                 index=jnp.zeros((), jnp.int32))


def positions_from_mask(attention_mask: jax.Array) -> jax.Array:
  """Position ids that skip left padding: cumsum(mask) - 1, clipped at 0.

  Args:
    attention_mask: [B, L], 1 (or True) for real tokens.

  Returns:
    [B, L] int32; the first real token of each row has position 0 (padding gets 0).
  """
  return jnp.maximum(jnp.cumsum(attention_mask.astype(jnp.int32), axis=1) - 1, 0)


def rotary_tables(positions: jax.Array, head_dim: int, theta: float):
  """cos and sin tables of rotary embeddings (HF layout: frequencies repeated twice).

  θ_i = theta^(-2i/E) for i < E/2; coordinates i and i + E/2 of a head rotate by
  position · θ_i. See RoFormer, Su et al. 2021 (https://arxiv.org/abs/2104.09864);
  HF pairs the two halves of a head rather than adjacent coordinates.

  Args:
    positions: [B, L] integer positions.
    head_dim: E (even).
    theta: rotary base.

  Returns:
    (cos, sin), each [B, L, 1, E] float32, to broadcast over heads.
  """
  inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
  freqs = positions.astype(jnp.float32)[:, :, None] * inv_freq[None, None, :]
  emb = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]
  return jnp.cos(emb), jnp.sin(emb)


def _apply_rotary(x, cos, sin):
  """x·cos + rotate_half(x)·sin, with rotate_half(x) = (-x₂, x₁) on the two halves."""
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
  return x * cos + rotated * sin


def _matmul_2d(x, kernel, precision):
  """x [..., In] @ kernel [In, Out] in float32, as one 2-D matmul.

  XLA:CPU computes the weight gradient of a [B, L, In] x [In, Out] product (two
  contracting dimensions) about 3x slower than that of the flattened [B·L, In] one.
  """
  y = jnp.dot(x.reshape(-1, x.shape[-1]).astype(jnp.float32), kernel.astype(jnp.float32),
              precision=precision)
  return y.reshape(x.shape[:-1] + (kernel.shape[-1],))


class Linear(nn.Module):
  """y = x W (+ b) in float32 with W [In, Out] stored in `param_dtype` (HF weight.T)."""
  features: int
  use_bias: bool
  param_dtype: jnp.dtype = jnp.float32
  precision: str = "highest"

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.normal(0.02), (x.shape[-1], self.features),
                        self.param_dtype)
    y = _matmul_2d(x, kernel, self.precision)
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
      y = y + bias.astype(jnp.float32).reshape((1,) * (y.ndim - 1) + (-1,))
    return y


def _dense(features, use_bias, config, name):
  return Linear(features, use_bias, config.dtype, config.matmul_precision, name=name)


class RMSNorm(nn.Module):
  """x / sqrt(mean(x²) + eps) ⊙ scale, in float32 (Llama's pre-norm)."""
  eps: float
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],), self.param_dtype)
    x = x.astype(jnp.float32)
    x = x * lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + self.eps)
    return x * scale.astype(jnp.float32).reshape((1,) * (x.ndim - 1) + (-1,))


def _scores(q, k, groups, precision):
  """Scaled q·k for every query head: [B, H, L, S] from q [B, L, H, E], k [B, S, K, E].

  Query head h reads key/value head h // groups (HF's `repeat_kv`). One-token queries
  (decoding) group the query heads in a 5-D einsum and leave the cache as it is;
  longer ones repeat k to all heads, which was 2.5x faster forward + backward on
  XLA:CPU than the 5-D einsum (and 10-15 % slower for decoding).
  """
  b, l, h, e = q.shape
  q = q * (e ** -0.5)
  if l == 1:
    q = q.reshape(b, l, h // groups, groups, e)
    return jnp.einsum("blkgd,bskd->bkgls", q, k, precision=precision).reshape(
        b, h, l, k.shape[1])
  return jnp.einsum("blhd,bshd->bhls", q, jnp.repeat(k, groups, axis=2), precision=precision)


def _mix(weights, v, groups, precision):
  """Attention output [B, L, H·E] from weights [B, H, L, S] and values [B, S, K, E]."""
  b, h, l, s = weights.shape
  if l == 1:
    weights = weights.reshape(b, h // groups, groups, l, s)
    out = jnp.einsum("bkgls,bskd->blkgd", weights, v, precision=precision)
  else:
    out = jnp.einsum("bhls,bshd->blhd", weights, jnp.repeat(v, groups, axis=2),
                     precision=precision)
  return out.reshape(b, l, h * v.shape[-1])


@jax.custom_vjp
def _unstack(x):
  """The slices x[0], ..., x[n-1] of a stacked array, as a tuple.

  Its backward pass stacks the slices' gradients in one array. Autodiff of the n
  slices instead adds n zero-padded copies of the stacked array (XLA:CPU fuses it,
  but reads all n for every element): at Qwen2-0.5B's body (24 layers of hidden 896),
  forward + backward of 4 x 48 tokens took 4.2 s that way, 3.6 s with this, 3.1 s
  scanned.
  """
  return tuple(x[i] for i in range(x.shape[0]))


_unstack.defvjp(lambda x: (_unstack(x), None), lambda _, grads: (jnp.stack(grads),))


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _self_attention(q, k, v, allowed, precision):
  """softmax(q kᵀ, masked) v per head, with a hand-written backward pass.

  Forward as autodiff sees it: S = q kᵀ, S_ls = -big where `allowed` is False, W =
  softmax(S) over s, out = W v. The backward pass keeps only W of the forward
  arrays of size [B, H, L, L] (autodiff of the mask and softmax keeps more) and
  computes dV = Wᵀ dO, dW = dO vᵀ, dS = W ⊙ (dW - rowsum(dW ⊙ W)) (0 in rows with
  no allowed key), dq = dS k, dk = dSᵀ q: the same gradients as autodiff. Measured
  on a 2-core CPU, forward + backward of the toy model's logits (hidden 32, 2
  layers, blocks looped) at 64 x 64 tokens: 29.5-31 ms against 33.7-34.7 ms with
  autodiff of the same forward.

  Args:
    q: [B, L, H, E] queries, already scaled by E^-1/2.
    k, v: [B, L, H, E] keys and values (grouped heads already repeated).
    allowed: [B, 1, L, L] bool, query l may attend to key s.
    precision: matmul precision.

  Returns:
    [B, L, H, E].
  """
  return _self_attention_fwd(q, k, v, allowed, precision)[0]


def _self_attention_fwd(q, k, v, allowed, precision):
  scores = jnp.einsum("blhd,bshd->bhls", q, k, precision=precision)
  weights = jax.nn.softmax(jnp.where(allowed, scores, _MASKED), axis=-1)
  out = jnp.einsum("bhls,bshd->blhd", weights, v, precision=precision)
  return out, (q, k, v, allowed, weights)


def _self_attention_bwd(precision, residuals, d_out):
  q, k, v, allowed, weights = residuals
  d_v = jnp.einsum("bhls,blhd->bshd", weights, d_out, precision=precision)
  d_weights = jnp.einsum("blhd,bshd->bhls", d_out, v, precision=precision)
  # W is exactly 0 at masked keys of rows with an allowed key; a row with none (a
  # padding query) has uniform W, and the mask makes its scores constant: dS = 0.
  row_live = jnp.any(allowed, axis=-1, keepdims=True).astype(weights.dtype)
  d_scores = (weights * row_live) * (d_weights
                                     - jnp.sum(d_weights * weights, axis=-1, keepdims=True))
  d_q = jnp.einsum("bhls,bshd->blhd", d_scores, k, precision=precision)
  d_k = jnp.einsum("bhls,blhd->bshd", d_scores, q, precision=precision)
  return d_q, d_k, d_v, None


_self_attention.defvjp(_self_attention_fwd, _self_attention_bwd)


class Attention(nn.Module):
  """Grouped-query causal self-attention with rotary embeddings and a KV cache.

  GQA: https://arxiv.org/abs/2305.13245; rotary embeddings:
  https://arxiv.org/abs/2104.09864.

  The L new tokens attend to the valid slots of the cache (all earlier) and causally
  to each other, with one softmax over both; the new keys and values are returned
  for the caller to write into the cache once, in place, for all layers.
  """
  config: LMConfig

  @nn.compact
  def __call__(self, x, cos, sin, allowed_new, layer_cache, allowed_cached):
    c = self.config
    b, l, _ = x.shape
    groups = c.num_heads // c.num_kv_heads
    q = _dense(c.num_heads * c.head_dim, c.attention_bias, c, "q")(x)
    k = _dense(c.num_kv_heads * c.head_dim, c.attention_bias, c, "k")(x)
    v = _dense(c.num_kv_heads * c.head_dim, c.attention_bias, c, "v")(x)
    q = _apply_rotary(q.reshape(b, l, c.num_heads, c.head_dim), cos, sin)
    k = _apply_rotary(k.reshape(b, l, c.num_kv_heads, c.head_dim), cos, sin)
    v = v.reshape(b, l, c.num_kv_heads, c.head_dim)
    prec = c.matmul_precision
    if layer_cache is None:
      out = _self_attention(q * (c.head_dim ** -0.5), jnp.repeat(k, groups, axis=2),
                            jnp.repeat(v, groups, axis=2), allowed_new[:, None], prec)
      return _dense(c.hidden_size, False, c, "o")(out.reshape(b, l, -1)), (k, v)
    cache_k, cache_v = layer_cache
    scores = jnp.concatenate([_scores(q, cache_k, groups, prec),
                              _scores(q, k, groups, prec)], axis=-1)
    allowed = jnp.concatenate([allowed_cached, allowed_new], axis=-1)
    scores = jnp.where(allowed[:, None, :, :], scores, _MASKED)
    weights = jax.nn.softmax(scores, axis=-1)
    slots = cache_k.shape[1]
    out = (_mix(weights[..., :slots], cache_v, groups, prec)
           + _mix(weights[..., slots:], v, groups, prec))
    return _dense(c.hidden_size, False, c, "o")(out), (k, v)


class MLP(nn.Module):
  """SwiGLU: W_down (silu(W_gate x) ⊙ W_up x)."""
  config: LMConfig

  @nn.compact
  def __call__(self, x):
    c = self.config
    gate = _dense(c.intermediate_size, False, c, "gate")(x)
    up = _dense(c.intermediate_size, False, c, "up")(x)
    return _dense(c.hidden_size, False, c, "down")(jax.nn.silu(gate) * up)


class Block(nn.Module):
  """One pre-norm transformer block; the scanned body over layers."""
  config: LMConfig

  @nn.compact
  def __call__(self, h, layer_cache, cos, sin, allowed_new, allowed_cached):
    c = self.config
    attn_out, new_kv = Attention(c, name="attn")(
        RMSNorm(c.rms_norm_eps, c.dtype, name="input_norm")(h), cos, sin, allowed_new,
        layer_cache, allowed_cached)
    h = h + attn_out
    h = h + MLP(c, name="mlp")(RMSNorm(c.rms_norm_eps, c.dtype, name="post_attention_norm")(h))
    return h, (new_kv if layer_cache is not None else None)


class CausalLM(nn.Module):
  """The decoder-only LM.

  `__call__(tokens, positions, attention_mask, cache=None, logit_index=None)`; see
  `apply` for the arguments.

  Attributes:
    config: an LMConfig.
  """
  config: LMConfig

  @nn.compact
  def __call__(self, tokens, positions, attention_mask, cache: Optional[KVCache] = None,
               logit_index=None, logits_from: int = 0):
    c = self.config
    b, l = tokens.shape
    embed = nn.Embed(c.vocab_size, c.hidden_size, dtype=jnp.float32, param_dtype=c.dtype,
                     embedding_init=nn.initializers.normal(0.02), name="embed")
    h = embed(tokens).astype(jnp.float32)
    cos, sin = rotary_tables(positions, c.head_dim, c.rope_theta)
    mask = attention_mask.astype(bool)
    causal = jnp.arange(l)[None, :] <= jnp.arange(l)[:, None]          # [L, L]
    allowed_new = causal[None, :, :] & mask[:, None, :]                # [B, L, L]
    if cache is None:
      layer_caches = allowed_cached = None
    else:
      # Every written slot precedes the new tokens; unwritten slots have mask False.
      layer_caches = (cache.keys, cache.values)
      allowed_cached = jnp.broadcast_to(cache.mask[:, None, :], (b, l, cache.mask.shape[1]))
    block = nn.remat(Block) if c.remat else Block
    if cache is None and not c.scan_layers and not self.is_initializing():
      # The same stacked parameters, one block at a time (see LMConfig.scan_layers).
      per_layer = jax.tree_util.tree_map(_unstack, self.variables["params"]["layers"])
      for i in range(c.num_layers):
        layer_params = jax.tree_util.tree_map(lambda x, i=i: x[i], per_layer,
                                              is_leaf=lambda x: isinstance(x, tuple))
        h, _ = block(c, parent=None).apply({"params": layer_params}, h, None, cos, sin,
                                           allowed_new, None)
      new_kv = None
    else:
      blocks = nn.scan(block, variable_axes={"params": 0}, split_rngs={"params": True},
                       in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast, nn.broadcast),
                       length=c.num_layers)
      h, new_kv = blocks(c, name="layers")(h, layer_caches, cos, sin, allowed_new,
                                           allowed_cached)
    if logit_index is not None:  # the output head on one position only (decoding)
      h = lax.dynamic_slice_in_dim(h, logit_index, 1, axis=1)
    elif logits_from:  # the head on positions >= logits_from only (scoring a completion)
      h = h[:, logits_from:]
    elif logits_from:  # the head on positions >= logits_from only (scoring a completion)
      h = h[:, logits_from:]
    h = RMSNorm(c.rms_norm_eps, c.dtype, name="final_norm")(h)
    if c.tie_embeddings:
      logits = _matmul_2d(h, embed.embedding.T, c.matmul_precision)
    else:
      logits = _dense(c.vocab_size, False, c, "lm_head")(h)
    new_cache = None
    if cache is not None:  # one in-place write of the L new slots of every layer
      index = cache.index
      new_cache = KVCache(
          keys=lax.dynamic_update_slice(cache.keys, new_kv[0], (0, 0, index, 0, 0)),
          values=lax.dynamic_update_slice(cache.values, new_kv[1], (0, 0, index, 0, 0)),
          mask=lax.dynamic_update_slice(cache.mask, mask, (0, index)), index=index + l)
    return logits.astype(jnp.float32), new_cache


def init_params(config: LMConfig, key: jax.Array):
  """Random parameters (normal(0.02) weights, unit norm scales, zero biases).

  The initialisation of HF's Llama/Qwen2 (`initializer_range` 0.02); model: LLaMA,
  Touvron et al. 2023 (https://arxiv.org/abs/2302.13971).

  Args:
    config: an LMConfig; parameters are stored in `config.param_dtype`.
    key: a PRNG key.

  Returns:
    The parameter pytree (the module's "params" collection; see the module
    docstring for its layout).
  """
  tokens = jnp.zeros((1, 1), jnp.int32)
  return CausalLM(config).init(key, tokens, tokens, jnp.ones((1, 1), jnp.int32))["params"]


def apply(params, config: LMConfig, tokens: jax.Array, positions: jax.Array,
          attention_mask: jax.Array, cache: Optional[KVCache] = None,
          logit_index=None, logits_from: int = 0):
  """Runs the causal LM (Llama, https://arxiv.org/abs/2302.13971, layout).

  Token t attends to the tokens s <= t (slots of the cache, when one is given) whose
  mask is 1. A padding query row attends to nothing and its logits are meaningless
  (finite, never NaN).

  Args:
    params: the pytree of `init_params` or `load_hf`.
    config: the model's LMConfig.
    tokens: [B, L] int token ids.
    positions: [B, L] int rotary positions (`positions_from_mask` for left padding;
      with a cache, continue from the prompt's last position).
    attention_mask: [B, L], 1 for real tokens, 0 for padding.
    cache: optional KVCache; the L tokens are written to slots
      [cache.index, cache.index + L) and attend to every valid earlier slot.
    logit_index: optional int scalar (may be traced): compute the output head only at
      position `logit_index` of the L inputs (what a sampler needs); logits are then
      [B, 1, V].
    logits_from: static int F: compute the output head only at positions F, ..., L - 1
      (logits [B, L - F, V]); what scoring a completion after an F-token prompt needs.
      Ignored when `logit_index` is given.

  Returns:
    (logits [B, L, V] float32, the updated KVCache or None when none was given).
  """
  return CausalLM(config).apply({"params": params}, tokens, positions, attention_mask, cache,
                                logit_index, logits_from)


def count_params(params) -> int:
  """Number of scalars in a parameter pytree.

  Args:
    params: any pytree of arrays.

  Returns:
    The total size as a Python int.
  """
  return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
