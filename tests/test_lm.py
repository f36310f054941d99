"""rlcore.lm: the causal LM, token log-probabilities and the KV-cache sampler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore import lm

V = 64
CONFIG = lm.LMConfig.tiny(V, tie_embeddings=False)
B, P, N = 6, 7, 10
EOS, PAD = 1, 0


@pytest.fixture(scope="module")
def params():
  return lm.init_params(CONFIG, jax.random.key(0))


@pytest.fixture(scope="module")
def peaked(params):
  """Output head x 10: next-token entropies of 2-3 nats instead of ~log V."""
  return {**params, "lm_head": {"kernel": params["lm_head"]["kernel"] * 10.0}}


@pytest.fixture(scope="module")
def prompts():
  """[B, P] left-padded prompts (rows have 7, 4, 1, 7, 5, 2 real tokens)."""
  rng = np.random.default_rng(0)
  lengths = np.array([7, 4, 1, 7, 5, 2])
  mask = (np.arange(P)[None, :] >= P - lengths[:, None]).astype(np.int32)
  tokens = np.where(mask == 1, rng.integers(2, V, (B, P)), PAD).astype(np.int32)
  return tokens, mask


_forward = jax.jit(lambda p, t, m: lm.apply(p, CONFIG, t, lm.positions_from_mask(m), m)[0])
_token_logprobs = jax.jit(lambda p, t, m: lm.token_logprobs(p, CONFIG, t, m))


def _sample(params, tokens, mask, key=0, cache=True, **kw):
  fn = lm.sample if cache else lm.sample_without_cache
  kw = {"temperature": 1.0, "eos_id": EOS, "pad_id": PAD, **kw}
  return fn(params, CONFIG, tokens, mask, jax.random.key(key), max_new_tokens=N, **kw)


def _np_log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_shapes_dtypes_and_sizes(params):
  tokens = jnp.zeros((3, 5), jnp.int32)
  logits = _forward(params, tokens, jnp.ones((3, 5), jnp.int32))
  assert logits.shape == (3, 5, V) and logits.dtype == jnp.float32
  assert 100_000 < lm.count_params(params) - 2 * V * 128 < 300_000
  tied = jax.eval_shape(lambda: lm.init_params(lm.LMConfig.tiny(V), jax.random.key(0)))
  assert lm.count_params(tied) == lm.count_params(params) - V * 128 and "lm_head" not in tied
  assert lm.count_params(params["layers"]["attn"]["k"]) == 2 * 128 * 64  # 2 kv heads of 32
  qwen = jax.eval_shape(lambda: lm.init_params(lm.LMConfig.qwen2_0_5b(), jax.random.key(0)))
  assert lm.count_params(qwen) == 494_032_768  # Qwen2-0.5B's published size
  assert "lm_head" not in qwen and qwen["layers"]["attn"]["q"]["bias"].shape == (24, 896)
  assert params["lm_head"]["kernel"].shape == (128, V)
  with pytest.raises(ValueError, match="num_kv_heads"):
    lm.LMConfig.tiny(V, num_kv_heads=3)


def test_causal_masking(params):
  tokens = np.random.default_rng(1).integers(0, V, (2, 9)).astype(np.int32)
  mask = np.ones_like(tokens)
  changed = tokens.copy()
  changed[:, 5] = (changed[:, 5] + 1) % V
  a, b = _forward(params, tokens, mask), _forward(params, changed, mask)
  np.testing.assert_allclose(a[:, :5], b[:, :5], atol=1e-6)
  assert np.abs(np.asarray(a[:, 5:] - b[:, 5:])).max() > 1e-3


def test_left_padding_invariance(params):
  rng = np.random.default_rng(2)
  real = rng.integers(0, V, (1, 5)).astype(np.int32)
  garbage = rng.integers(0, V, (1, 4)).astype(np.int32)  # pad tokens need not be pad_id
  padded = np.concatenate([garbage, real], 1)
  pad_mask = np.concatenate([np.zeros((1, 4)), np.ones((1, 5))], 1).astype(np.int32)
  a = _forward(params, real, np.ones_like(real))
  b = _forward(params, padded, pad_mask)
  np.testing.assert_allclose(b[:, 4:], a, atol=1e-5)
  assert np.all(np.isfinite(np.asarray(b)))  # fully masked padding rows: finite


def test_token_logprobs_matches_numpy_gather(params, prompts):
  tokens, mask = prompts
  logp = _token_logprobs(params, tokens, mask)
  logits = np.asarray(_forward(params, tokens, mask))
  ref = np.zeros(tokens.shape, np.float32)
  ref_ent = np.zeros(tokens.shape, np.float32)
  for b in range(B):
    for t in range(1, P):
      if mask[b, t] and mask[b, t - 1]:  # scored: a real token with a real predecessor
        row = _np_log_softmax(logits[b, t - 1])
        ref[b, t] = row[tokens[b, t]]
        ref_ent[b, t] = -(np.exp(row) * row).sum()
  assert logp.dtype == jnp.float32 and logp.shape == (B, P)
  np.testing.assert_allclose(logp, ref, atol=1e-5)
  entropy = jax.jit(lambda p, t, m: lm.token_entropy(p, CONFIG, t, m))(params, tokens, mask)
  np.testing.assert_allclose(entropy, ref_ent,
                             atol=1e-5)


def test_token_logprobs_from_start_equals_the_slice(params, prompts):
  tokens, mask = prompts
  full = _token_logprobs(params, tokens, mask)
  for start in (1, 3, P - 1):
    part = jax.jit(lambda p, t, m, s=start: lm.token_logprobs(p, CONFIG, t, m, start=s))(
        params, tokens, mask)
    assert part.shape == (B, P - start)
    np.testing.assert_allclose(part, full[:, start:], atol=1e-6)
  # Gradients too: the head runs on fewer positions, the loss is the same.
  weights = np.random.default_rng(3).normal(size=(B, P - 3)).astype(np.float32)
  g_full = jax.jit(jax.grad(lambda p: (lm.token_logprobs(p, CONFIG, tokens, mask)[:, 3:]
                                       * weights).sum()))(params)
  g_part = jax.jit(jax.grad(lambda p: (lm.token_logprobs(p, CONFIG, tokens, mask, start=3)
                                       * weights).sum()))(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               g_part, g_full)
  with pytest.raises(ValueError, match=r"start=7; allowed: 0 <= start < tokens.shape\[1\] = 7"):
    lm.token_logprobs(params, CONFIG, tokens, mask, start=P)


def _reference_attention(q, k, v, allowed):
  """softmax(q kᵀ masked) v by autodiff-able jnp, the formula `_self_attention` derives."""
  scores = jnp.einsum("blhd,bshd->bhls", q, k, precision="highest")
  scores = jnp.where(allowed[:, None], scores, jnp.finfo(jnp.float32).min)
  return jnp.einsum("bhls,bshd->blhd", jax.nn.softmax(scores, -1), v, precision="highest")


def test_hand_written_attention_backward_equals_autodiff():
  from rlcore.lm.model import _self_attention
  rng = np.random.default_rng(4)
  b, l, h, e = 3, 6, 2, 4
  q, k, v, d_out = (jnp.asarray(rng.normal(size=(b, l, h, e)), jnp.float32) for _ in range(4))
  mask = np.ones((b, l), bool)
  mask[1, :2] = False                        # left padding: rows 0-1 attend to nothing
  allowed = np.tril(np.ones((l, l), bool))[None] & mask[:, None, :]

  def grads(fn):
    return jax.grad(lambda q, k, v: (fn(q, k, v) * d_out).sum(), argnums=(0, 1, 2))(q, k, v)

  ref_out = _reference_attention(q, k, v, allowed)
  ref = grads(lambda q, k, v: _reference_attention(q, k, v, allowed))
  mine = lambda q, k, v: _self_attention(q, k, v, allowed[:, None], "highest")
  np.testing.assert_allclose(jax.jit(mine)(q, k, v), ref_out, rtol=1e-5, atol=1e-6)
  for got, want in zip(jax.jit(lambda: grads(mine))(), ref):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert np.abs(np.asarray(want)).max() > 1e-2      # the gradient is not trivially 0
  # jit(vmap) over a leading axis: the same per-slice gradients.
  vm = jax.jit(jax.vmap(jax.grad(lambda q, k, v: (mine(q, k, v) * d_out).sum(),
                                 argnums=(0, 1, 2))))
  stacked = vm(*(jnp.stack([x, 2 * x]) for x in (q, k, v)))
  np.testing.assert_allclose(stacked[0][0], ref[0], rtol=1e-4, atol=1e-5)


def test_scanned_and_looped_layers_agree():
  base = lm.LMConfig.tiny(40, num_layers=3)
  params = lm.init_params(base, jax.random.key(0))
  tokens = jax.random.randint(jax.random.key(1), (3, 10), 0, 40)
  mask = jnp.ones((3, 10)).at[0, :4].set(0.0)
  out = []
  for scan in (True, False):
    config = base.replace(scan_layers=scan)
    fn = lambda p: lm.token_logprobs(p, config, tokens, mask).sum()
    out.append(jax.jit(jax.value_and_grad(fn))(params))
    assert (" scan[" in str(jax.make_jaxpr(fn)(params))) == scan
  np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               out[0][1], out[1][1])


def test_draw_categorical_follows_the_distribution_and_never_draws_probability_zero():
  rng = np.random.default_rng(5)
  logits = rng.normal(size=(3, 12)).astype(np.float32) * 2
  logits[0, [0, 5, 11]] = -np.inf           # first, middle and last tokens excluded
  logits[2, :] = -np.inf
  logits[2, 7] = 0.0                        # one token only
  probs = np.exp(logits - logits.max(1, keepdims=True))
  probs /= probs.sum(1, keepdims=True)
  draws = 20000
  keys = jax.random.split(jax.random.key(6), draws)
  tokens = np.asarray(jax.jit(jax.vmap(lm.sampling.draw_categorical, (0, None)))(
      keys, jnp.asarray(logits)))                                       # [draws, 3]
  assert tokens.dtype == np.int32
  for row in range(3):
    freq = np.bincount(tokens[:, row], minlength=12) / draws
    assert np.all(freq[probs[row] == 0] == 0)
    np.testing.assert_allclose(freq, probs[row], atol=4 * np.sqrt(0.25 / draws))
  assert np.all(tokens[:, 2] == 7)


def test_remat_keeps_parameters_values_and_gradients_and_checkpoints_the_blocks():
  base = lm.LMConfig.tiny(40, num_layers=3)
  tokens = jax.random.randint(jax.random.key(1), (3, 10), 0, 40)
  mask = jnp.ones((3, 10)).at[0, :4].set(0.0)
  out = {}
  for remat in (False, True):
    config = base.replace(remat=remat)
    params = lm.init_params(config, jax.random.key(0))
    fn = lambda p: lm.token_logprobs(p, config, tokens, mask).sum()
    jaxpr = str(jax.make_jaxpr(jax.grad(fn))(params))
    out[remat] = (params, *jax.jit(jax.value_and_grad(fn))(params),
                  "remat" in jaxpr or "checkpoint" in jaxpr)
  (p0, v0, g0, ck0), (p1, v1, g1, ck1) = out[False], out[True]
  jax.tree.map(np.testing.assert_array_equal, p0, p1)
  np.testing.assert_allclose(v1, v0, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), g1, g0)
  assert ck1 and not ck0


def test_bf16_params_give_float32_logprobs(params, prompts):
  tokens, mask = prompts
  config16 = CONFIG.replace(param_dtype="bfloat16")
  assert all(x.dtype == jnp.bfloat16 for x in
             jax.tree_util.tree_leaves(lm.init_params(config16, jax.random.key(0))))
  params16 = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16), params)
  logp16 = jax.jit(lambda p: lm.token_logprobs(p, config16, tokens, mask))(params16)
  logp32 = jax.jit(lambda p: lm.token_logprobs(p, CONFIG, tokens, mask))(params)
  assert logp16.dtype == jnp.float32
  np.testing.assert_allclose(logp16, logp32, atol=2e-2)
  grads = jax.jit(jax.grad(lambda p: lm.token_logprobs(p, config16, tokens, mask).sum()))(
      params16)
  assert all(g.dtype == jnp.bfloat16 for g in jax.tree_util.tree_leaves(grads))


def test_cache_prefill_in_chunks_equals_full_forward(params, prompts):
  tokens, mask = prompts
  positions = lm.positions_from_mask(mask)
  full = _forward(params, tokens, mask)
  step = jax.jit(lambda p, t, pos, m, c: lm.apply(p, CONFIG, t, pos, m, c))
  cache = lm.init_cache(CONFIG, B, P + 3)
  first, cache = step(params, tokens[:, :4], positions[:, :4], mask[:, :4], cache)
  second, cache = step(params, tokens[:, 4:], positions[:, 4:], mask[:, 4:], cache)
  real = mask == 1
  np.testing.assert_allclose(np.concatenate([first, second], 1)[real], full[real], atol=1e-5)
  assert int(cache.index) == P and cache.keys.shape == (2, B, P + 3, 2, 32)


@pytest.mark.parametrize("kw", [dict(temperature=0.0), dict(temperature=1.0),
                                dict(temperature=0.7, top_p=0.9)],
                         ids=["greedy", "t1", "t0.7-p0.9"])
def test_cache_and_no_cache_sampling_agree(peaked, prompts, kw):
  tokens, mask = prompts
  a = _sample(peaked, tokens, mask, key=3, eos_id=-1, **kw)
  b = _sample(peaked, tokens, mask, key=3, eos_id=-1, cache=False, **kw)
  np.testing.assert_array_equal(a.response, b.response)
  np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-4)
  # The sampler's logprobs are the untempered model's: recompute them by teacher forcing.
  full_mask = jnp.concatenate([jnp.asarray(mask, jnp.float32), a.response_mask], 1)
  np.testing.assert_allclose(_token_logprobs(peaked, a.tokens, full_mask)[:, P:],
                             a.logprobs, atol=1e-4)
  if kw["temperature"] > 0:
    other = _sample(peaked, tokens, mask, key=4, eos_id=-1, **kw)
    assert np.any(np.asarray(other.response != a.response))


def test_temperature_zero_is_argmax(peaked, prompts):
  tokens, mask = prompts
  out = _sample(peaked, tokens, mask, temperature=0.0, eos_id=-1)
  full_mask = np.concatenate([mask, np.ones((B, N), np.int32)], 1)
  logits = np.asarray(_forward(peaked, out.tokens, full_mask))
  np.testing.assert_array_equal(out.response, logits[:, P - 1:-1].argmax(-1))
  lp = np.take_along_axis(_np_log_softmax(logits[:, P - 1:-1]),
                          np.asarray(out.response)[..., None], -1)[..., 0]
  np.testing.assert_allclose(out.logprobs, lp, atol=1e-5)
  # A vanishing nucleus keeps only the most likely token: greedy at any temperature.
  tiny_p = _sample(peaked, tokens, mask, key=9, temperature=1.5, top_p=1e-6, eos_id=-1)
  np.testing.assert_array_equal(tiny_p.response, out.response)


def test_first_token_distribution_follows_temperature_and_top_p(peaked):
  rows = 4000
  prompt = np.tile(np.array([[5, 9, 17]], np.int32), (rows, 1))
  mask = np.ones_like(prompt)
  out = lm.sample(peaked, CONFIG, prompt, mask, jax.random.key(1), max_new_tokens=1,
                  temperature=0.5, top_p=0.8, eos_id=-1, pad_id=PAD)
  z = np.asarray(_forward(peaked, prompt[:1], mask[:1]))[0, -1] / 0.5
  probs = np.exp(_np_log_softmax(z))
  order = np.argsort(-probs)
  before = np.cumsum(probs[order]) - probs[order]
  keep = order[before < 0.8]
  expected = np.zeros(V)
  expected[keep] = probs[keep] / probs[keep].sum()
  assert 1 < len(keep) < V  # the test exercises the filter
  freq = np.bincount(np.asarray(out.response[:, 0]), minlength=V) / rows
  assert np.all(freq[expected == 0] == 0)
  np.testing.assert_allclose(freq, expected, atol=0.03)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("pad_id", [PAD, "eos"])
def test_eos_handling(peaked, prompts, temperature, pad_id):
  tokens, mask = prompts
  free = _sample(peaked, tokens, mask, key=5, temperature=temperature, eos_id=-1)
  free_response = np.asarray(free.response)
  eos = int(free_response[0, 3])  # a token row 0 emits by step 3: it becomes "EOS"
  pad = eos if pad_id == "eos" else PAD
  out = _sample(peaked, tokens, mask, key=5, temperature=temperature, eos_id=eos, pad_id=pad)
  response = np.asarray(out.response)
  for b in range(B):
    hits = np.flatnonzero(free_response[b] == eos)
    length = hits[0] + 1 if len(hits) else N
    # Same keys per step: identical up to and including the EOS, pad after it.
    np.testing.assert_array_equal(response[b, :length], free_response[b, :length])
    assert np.all(response[b, length:] == pad)
    np.testing.assert_array_equal(out.response_mask[b], np.arange(N) < length)
    assert out.lengths[b] == length and bool(out.finished[b]) == bool(len(hits))
    assert np.all(np.asarray(out.logprobs[b, length:]) == 0)
  assert out.finished[0] and out.lengths[0] <= 4
  assert out.response_mask.dtype == jnp.float32 and out.lengths.dtype == jnp.int32
  np.testing.assert_array_equal(out.tokens, np.concatenate([tokens, response], 1))
  # A tuple of EOS ids stops at the first of either.
  both = _sample(peaked, tokens, mask, key=5, temperature=temperature,
                 eos_id=(eos, int(free_response[1, 0])), pad_id=pad)
  assert both.finished[1] and both.lengths[1] == 1


def test_no_retrace_on_second_call(peaked, prompts):
  from rlcore.lm import sampling
  tokens, mask = prompts
  _sample(peaked, tokens, mask, key=0, temperature=0.9, top_p=0.95, eos_id=EOS)
  before = sampling._generate_jit._cache_size()
  for kw in [dict(temperature=0.3, top_p=0.5, eos_id=2, pad_id=3),
             dict(temperature=jnp.float32(1.0), eos_id=np.int32(4)),  # arrays, top_p omitted
             dict(temperature=0, top_p=1, eos_id=(7,))]:              # ints, a 1-tuple
    jax.block_until_ready(_sample(peaked, tokens + 1, mask, key=1, **kw))
  assert sampling._generate_jit._cache_size() == before


@pytest.mark.parametrize("shape,n,expected", [
    ((2, 32, 64), 4, (None, None, "fsdp")),   # stacked kernels: the largest axis
    ((64, 64), 4, ("fsdp",)),                 # a tie: the first
    ((8, 3), 4, ("fsdp",)),
    ((6, 3), 4, ()),                          # nothing divisible: replicated
    ((), 4, ()),
    ((64,), 1, ())])
def test_sharding_spec_splits_the_largest_divisible_axis(shape, n, expected):
  from jax.sharding import PartitionSpec
  assert lm.sharding.spec(shape, n) == PartitionSpec(*expected)
