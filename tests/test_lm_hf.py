"""rlcore.lm.hf against transformers: tiny random Qwen2 / Llama models saved locally.

Nothing is downloaded: the models are built with random weights, saved with
`save_pretrained` (safetensors) into tmp_path and loaded back with `load_hf`.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlcore import lm  # noqa: E402

VOCAB = 97
SIZES = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
             rms_norm_eps=1e-6)


def _build(kind, tie, **extra):
  torch.manual_seed(0)
  if kind == "qwen2":
    config = transformers.Qwen2Config(tie_word_embeddings=tie, **SIZES, **extra)
    model = transformers.Qwen2ForCausalLM(config)
  else:
    config = transformers.LlamaConfig(tie_word_embeddings=tie, **SIZES, **extra)
    model = transformers.LlamaForCausalLM(config)
  with torch.no_grad():  # HF zero-inits biases and unit-inits norms: randomise them
    for name, p in model.named_parameters():
      if name.endswith("bias") or "norm" in name:
        p.add_(0.1 * torch.randn_like(p))
  return model.eval()


def _inputs(batch=3, length=12, seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, VOCAB, (batch, length))
  mask = np.ones((batch, length), np.int64)
  mask[1, :4] = 0      # left padding
  mask[2, :length - 1] = 0  # a single real token
  tokens = np.where(mask == 1, tokens, 0)
  return tokens, mask


def _hf_logits(model, tokens, mask):
  positions = np.maximum(np.cumsum(mask, 1) - 1, 0)
  with torch.no_grad():
    out = model(input_ids=torch.tensor(tokens), attention_mask=torch.tensor(mask),
                position_ids=torch.tensor(positions))
  return out.logits.float().numpy()


@pytest.mark.parametrize("kind,tie,extra", [
    ("qwen2", True, {}), ("qwen2", False, {}), ("llama", False, {}), ("llama", True, {}),
    ("llama", False, {"head_dim": 32})])  # head_dim != hidden / heads (as Qwen3, Gemma)
def test_logits_match_transformers(tmp_path, kind, tie, extra):
  model = _build(kind, tie, rope_theta=1e4 if kind == "llama" else 1e6, **extra)
  model.save_pretrained(tmp_path, safe_serialization=True)
  config, params = lm.load_hf(str(tmp_path))
  assert config.tie_embeddings == tie and config.attention_bias == (kind == "qwen2")
  assert ("lm_head" in params) == (not tie)
  assert config.rope_theta == (1e4 if kind == "llama" else 1e6)
  assert config.head_dim == extra.get("head_dim", 16)
  tokens, mask = _inputs()
  ours, _ = jax.jit(lambda p, t, m: lm.apply(p, config, t, lm.positions_from_mask(m), m))(
      params, tokens, mask)
  ref = _hf_logits(model, tokens, mask)
  real = mask == 1
  err = np.max(np.abs(np.asarray(ours)[real] - ref[real]))
  print(f"{kind} tie={tie} {extra}: max |logit diff| = {err:.2e}")
  assert err < 1e-4
  # token_logprobs agrees with torch's log-softmax gather on the real tokens.
  ref_logp = torch.log_softmax(torch.tensor(ref[:, :-1]), -1).gather(
      -1, torch.tensor(tokens[:, 1:, None])).numpy()[..., 0]
  ours_logp = np.asarray(lm.token_logprobs(params, config, tokens, mask))
  scored = real[:, 1:] & real[:, :-1]
  np.testing.assert_allclose(ours_logp[:, 1:][scored], ref_logp[scored], atol=1e-4)


def test_sharded_and_bf16_checkpoints(tmp_path):
  model = _build("qwen2", True)
  model.save_pretrained(tmp_path / "sharded", max_shard_size="40KB")
  assert (tmp_path / "sharded" / "model.safetensors.index.json").exists()
  _, params = lm.load_hf(str(tmp_path / "sharded"))
  model.save_pretrained(tmp_path / "single")
  config, ref_params = lm.load_hf(str(tmp_path / "single"))
  jax.tree_util.tree_map(np.testing.assert_array_equal, params, ref_params)

  model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
  config16, params16 = lm.load_hf(str(tmp_path / "bf16"), param_dtype="bfloat16")
  assert config16.param_dtype == "bfloat16"
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree_util.tree_leaves(params16))
  tokens, mask = _inputs()
  logp16 = lm.token_logprobs(params16, config16, tokens, mask)
  logp32 = lm.token_logprobs(ref_params, config, tokens, mask)
  assert logp16.dtype == jnp.float32
  np.testing.assert_allclose(logp16, logp32, atol=0.05)
  # bf16 on disk loaded as float32 equals the bf16 weights exactly.
  _, up = lm.load_hf(str(tmp_path / "bf16"), param_dtype="float32")
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(a, b.astype(jnp.float32)),
                         up, params16)


def test_greedy_sampling_matches_transformers_generate(tmp_path):
  model = _build("qwen2", True)
  model.save_pretrained(tmp_path)
  config, params = lm.load_hf(str(tmp_path))
  tokens, mask = _inputs(batch=3, length=6, seed=1)
  out = lm.sample(params, config, tokens, mask, jax.random.key(0), max_new_tokens=8,
                  temperature=0.0, eos_id=-1, pad_id=0)
  with torch.no_grad():
    ref = model.generate(input_ids=torch.tensor(tokens), attention_mask=torch.tensor(mask),
                         max_new_tokens=8, do_sample=False, pad_token_id=0,
                         eos_token_id=None)
  np.testing.assert_array_equal(np.asarray(out.tokens), ref.numpy())


def test_unsupported_model_type_names_it(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
  with pytest.raises(ValueError, match=r"'gpt2'.*llama.*qwen2"):
    lm.load_hf(str(tmp_path))


def test_load_tokenizer_round_trip_and_eos_ids(tmp_path):
  tokenizers = pytest.importorskip("tokenizers")
  tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="<unk>"))
  tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
  trainer = tokenizers.trainers.BpeTrainer(
      vocab_size=60, special_tokens=["<pad>", "<eos>", "<unk>"])
  texts = ["2 + 3 = 5", "12 + 30 = 42", "step one; step two", "the answer is 7"] * 4
  tok.train_from_iterator(texts, trainer)
  tok.save(str(tmp_path / "tokenizer.json"))
  (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2",
                                                    "eos_token_id": 1}))
  (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [1, 0]}))

  loaded = lm.load_tokenizer(str(tmp_path))
  for text in ["12 + 3 = 15", "the answer is 42"]:
    ids = loaded.encode(text).ids
    assert ids == tok.encode(text).ids
    assert loaded.decode(ids).replace(" ", "") == text.replace(" ", "")
  assert loaded.token_to_id("<eos>") == 1
  assert lm.load_eos_ids(str(tmp_path)) == (1, 0)
  (tmp_path / "generation_config.json").unlink()
  assert lm.load_eos_ids(str(tmp_path)) == (1,)
  assert lm.load_tokenizer(str(tmp_path / "tokenizer.json")).get_vocab_size() == \
      tok.get_vocab_size()
