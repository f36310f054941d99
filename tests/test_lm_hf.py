"""rlcore.lm.hf against transformers: tiny random Qwen2 / Llama models saved locally.

Nothing is downloaded: the models are built with random weights, saved with
`save_pretrained` (safetensors) into tmp_path and loaded back with `load_hf`.
"""

import json
import re

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


@pytest.mark.parametrize("kind,tie,extra", [("llama", False, {"head_dim": 32}),
                                             ("qwen2", True, {})])
def test_save_hf_without_a_source_loads_in_transformers(tmp_path, kind, tie, extra):
  """Perturbed parameters saved with a config.json written from the LMConfig: transformers
  reads the folder and gives our logits; load_hf reads back the same arrays."""
  model = _build(kind, tie, **extra)
  model.save_pretrained(tmp_path / "src", safe_serialization=True)
  config, params = lm.load_hf(str(tmp_path / "src"))
  leaves, tree = jax.tree_util.tree_flatten(params)
  rng = np.random.default_rng(1)
  params = jax.tree_util.tree_unflatten(
      tree, [x + 0.05 * rng.standard_normal(x.shape).astype(np.float32) for x in leaves])
  lm.save_hf(str(tmp_path / "out"), config, params)
  again_config, again = lm.load_hf(str(tmp_path / "out"))
  assert again_config == config
  jax.tree_util.tree_map(np.testing.assert_array_equal, again, params)
  ref = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "out")).eval()
  tokens, mask = _inputs()
  ours, _ = lm.apply(params, config, tokens, lm.positions_from_mask(mask), mask)
  real = mask == 1
  np.testing.assert_allclose(np.asarray(ours)[real], _hf_logits(ref, tokens, mask)[real],
                             atol=1e-4)
  bad = dict(params, final_norm={"scale": np.ones(3, np.float32)})
  with pytest.raises(ValueError, match=r"save_hf: .*final_norm.*scale.*has shape \(3,\)"):
    lm.save_hf(str(tmp_path / "bad"), config, bad)


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


# --- damaged checkpoints: errors that name the file (and the key or tensor) ------------------

TINY = dict(model_type="llama", vocab_size=11, hidden_size=8, intermediate_size=16,
            num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            tie_word_embeddings=False)


def _tiny_tensors():
  """HF-named float32 tensors of the TINY config (HF layout: [out, in])."""
  rng = np.random.default_rng(0)
  v, d, f, e = 11, 8, 16, 4
  shapes = {"model.embed_tokens.weight": (v, d), "model.norm.weight": (d,),
            "lm_head.weight": (v, d)}
  for i in range(2):
    p = f"model.layers.{i}."
    shapes.update({p + "input_layernorm.weight": (d,),
                   p + "post_attention_layernorm.weight": (d,),
                   p + "self_attn.q_proj.weight": (2 * e, d),
                   p + "self_attn.k_proj.weight": (e, d), p + "self_attn.v_proj.weight": (e, d),
                   p + "self_attn.o_proj.weight": (d, 2 * e),
                   p + "mlp.gate_proj.weight": (f, d), p + "mlp.up_proj.weight": (f, d),
                   p + "mlp.down_proj.weight": (d, f)})
  return {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}


def _tiny_checkpoint(path, config=None, tensors=None):
  from safetensors.numpy import save_file
  path.mkdir(parents=True, exist_ok=True)
  (path / "config.json").write_text(json.dumps(TINY if config is None else config))
  save_file(_tiny_tensors() if tensors is None else tensors, str(path / "model.safetensors"))
  return path


def _header(file):
  data = file.read_bytes()
  n = int.from_bytes(data[:8], "little")
  return json.loads(data[8:8 + n]), data[8 + n:]


def _write_with_header(file, header, body):
  raw = json.dumps(header).encode()
  file.write_bytes(len(raw).to_bytes(8, "little") + raw + body)


def test_tiny_checkpoint_loads(tmp_path):
  config, params = lm.load_hf(str(_tiny_checkpoint(tmp_path)))
  assert config.num_layers == 2 and params["layers"]["attn"]["q"]["kernel"].shape == (2, 8, 8)
  tensors = lm.read_safetensors(str(tmp_path / "model.safetensors"))
  np.testing.assert_array_equal(tensors["model.norm.weight"],
                                _tiny_tensors()["model.norm.weight"])


def _last_tensor(file):
  header, _ = _header(file)
  return max((k for k in header if k != "__metadata__"),
             key=lambda k: header[k]["data_offsets"][1])


@pytest.mark.parametrize("damage", ["empty", "four bytes", "truncated header",
                                    "truncated data", "offsets past the end",
                                    "shape does not match the offsets", "header length 2**40",
                                    "invalid JSON header", "unknown dtype"])
def test_damaged_safetensors_name_the_file_and_tensor(tmp_path, damage):
  path = _tiny_checkpoint(tmp_path)
  file = tmp_path / "model.safetensors"
  data = file.read_bytes()
  header, body = _header(file)
  n = int.from_bytes(data[:8], "little")
  tensor = None
  if damage == "empty":
    file.write_bytes(b"")
  elif damage == "four bytes":
    file.write_bytes(data[:4])
  elif damage == "truncated header":
    file.write_bytes(data[:8 + n // 2])
  elif damage == "truncated data":
    tensor = _last_tensor(file)
    file.write_bytes(data[:-7])
  elif damage == "offsets past the end":
    tensor = "model.norm.weight"
    begin = header[tensor]["data_offsets"][0]
    header[tensor]["data_offsets"] = [begin, begin + 10_000_000]
    _write_with_header(file, header, body)
  elif damage == "shape does not match the offsets":
    tensor = "model.norm.weight"
    header[tensor]["shape"] = [9]
    _write_with_header(file, header, body)
  elif damage == "header length 2**40":
    file.write_bytes((2 ** 40).to_bytes(8, "little") + data[8:])
  elif damage == "invalid JSON header":
    file.write_bytes(len(b"{oops").to_bytes(8, "little") + b"{oops" + body)
  else:
    header["model.norm.weight"]["dtype"] = "X9"
    _write_with_header(file, header, body)
  for load in (lambda: lm.load_hf(str(path)), lambda: lm.read_safetensors(str(file))):
    with pytest.raises(ValueError, match=re.escape(str(file))) as info:
      load()
    if tensor is not None:
      assert f"tensor {tensor}" in str(info.value), str(info.value)
    if damage == "header length 2**40":
      assert "header length 1099511627776 exceeds the file size" in str(info.value)


@pytest.mark.parametrize("damage, match", [
    ("invalid JSON", "invalid JSON"),
    ("not an object", "JSON object"),
    ("missing hidden_size", "'hidden_size' is missing"),
    ("missing num_hidden_layers", "'num_hidden_layers' is missing"),
    ("zero heads", "'num_attention_heads' must be a positive int, got 0"),
    ("zero heads with head_dim", "'num_attention_heads' must be a positive int, got 0"),
    ("zero kv heads", "'num_key_value_heads' must be a positive int, got 0"),
    ("null kv heads and head_dim", None),
    ("string vocab", "'vocab_size' must be a positive int, got '11'"),
    ("kv heads not dividing heads", "num_heads=2 is not a multiple of num_kv_heads=3"),
])
def test_bad_config_names_the_file_and_key(tmp_path, damage, match):
  config = dict(TINY)
  text = None
  if damage == "invalid JSON":
    text = '{"model_type": "llama",'
  elif damage == "not an object":
    text = "[1, 2]"
  elif damage.startswith("missing"):
    del config[damage.split()[1]]
  elif damage == "zero heads":
    config["num_attention_heads"] = 0
  elif damage == "zero heads with head_dim":
    config.update(num_attention_heads=0, head_dim=4)
  elif damage == "zero kv heads":
    config["num_key_value_heads"] = 0
  elif damage == "null kv heads and head_dim":
    config.update(num_key_value_heads=None, head_dim=None)  # null: as HF, the defaults
  elif damage == "string vocab":
    config["vocab_size"] = "11"
  else:
    config["num_key_value_heads"] = 3
  path = _tiny_checkpoint(tmp_path)
  file = tmp_path / "config.json"
  file.write_text(json.dumps(config) if text is None else text)
  if match is None:
    got = lm.config_from_hf(config)
    assert (got.num_kv_heads, got.head_dim) == (2, 4)
    return
  with pytest.raises(ValueError, match=re.escape(str(file)) + ".*" + re.escape(match)):
    lm.load_hf(str(path))


def test_missing_files_and_tensors_are_named(tmp_path):
  path = _tiny_checkpoint(tmp_path / "a")
  (path / "config.json").unlink()
  with pytest.raises(FileNotFoundError, match=re.escape(str(path / "config.json"))):
    lm.load_hf(str(path))
  # a missing tensor
  tensors = _tiny_tensors()
  del tensors["model.layers.1.mlp.up_proj.weight"]
  path = _tiny_checkpoint(tmp_path / "b", tensors=tensors)
  with pytest.raises(ValueError, match=re.escape(str(path)) +
                     ".*model.layers.1.mlp.up_proj.weight is missing"):
    lm.load_hf(str(path))
  # a layer tensor of another shape than layer 0's
  tensors = _tiny_tensors()
  tensors["model.layers.1.self_attn.k_proj.weight"] = np.zeros((5, 8), np.float32)
  path = _tiny_checkpoint(tmp_path / "c", tensors=tensors)
  with pytest.raises(ValueError, match=re.escape(str(path / "model.safetensors")) +
                     r": tensor model.layers.1.self_attn.k_proj.weight has shape \(5, 8\)"):
    lm.load_hf(str(path))
  # sharded: a broken index, an index without weight_map, a shard it names that is missing
  path = _tiny_checkpoint(tmp_path / "d")
  index = path / "model.safetensors.index.json"
  for text, match in [("{", "invalid JSON"), ('{"metadata": {}}', "'weight_map'"),
                      ('{"weight_map": {"x": 3}}', "'weight_map'")]:
    index.write_text(text)
    with pytest.raises(ValueError, match=re.escape(str(index)) + ".*" + match):
      lm.load_hf(str(path))
  index.write_text(json.dumps({"weight_map": {"model.norm.weight": "shard-1.safetensors"}}))
  with pytest.raises(FileNotFoundError, match=re.escape(str(path / "shard-1.safetensors"))):
    lm.load_hf(str(path))
  with pytest.raises(FileNotFoundError, match=re.escape(str(path / "nope.safetensors"))):
    lm.read_safetensors(str(path / "nope.safetensors"))
