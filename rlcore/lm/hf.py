"""Import of Hugging Face Llama / Qwen2 checkpoints and tokenizers from a local folder, and
export of trained parameters back into that layout (`save_hf`).

Nothing is downloaded: point `load_hf` at a directory holding `config.json` and the
weights (`model.safetensors`, or shards listed in `model.safetensors.index.json`),
as written by `save_pretrained` or `huggingface-cli download`. The weights are read
with the `safetensors` package's numpy loader, one tensor at a time (float32, float16
and bfloat16 included), so no torch or transformers is needed; `load_tokenizer` needs
the `tokenizers` package. Both are imported when called.

Damaged inputs raise ValueError (FileNotFoundError for a missing file) naming the
file, and the key or tensor where there is one: a truncated, empty or otherwise
invalid safetensors file (with the tensor whose offsets do not fit, when the header
can be read), invalid JSON, a config.json missing a key or with a non-positive size,
a missing or misshapen tensor.

Model: "LLaMA: Open and Efficient Foundation Language Models", Touvron et al. 2023
(https://arxiv.org/abs/2302.13971); Qwen2 adds q/k/v biases and ties the embeddings
of its small models.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np

from rlcore.lm.model import LMConfig, init_params

SUPPORTED_MODEL_TYPES = ("llama", "qwen2")

# HF name inside `model.layers.{i}.` -> (our path under params["layers"], is a kernel).
_LAYER_WEIGHTS = {
    "input_layernorm.weight": (("input_norm", "scale"), False),
    "post_attention_layernorm.weight": (("post_attention_norm", "scale"), False),
    "self_attn.q_proj.weight": (("attn", "q", "kernel"), True),
    "self_attn.k_proj.weight": (("attn", "k", "kernel"), True),
    "self_attn.v_proj.weight": (("attn", "v", "kernel"), True),
    "self_attn.o_proj.weight": (("attn", "o", "kernel"), True),
    "self_attn.q_proj.bias": (("attn", "q", "bias"), False),
    "self_attn.k_proj.bias": (("attn", "k", "bias"), False),
    "self_attn.v_proj.bias": (("attn", "v", "bias"), False),
    "mlp.gate_proj.weight": (("mlp", "gate", "kernel"), True),
    "mlp.up_proj.weight": (("mlp", "up", "kernel"), True),
    "mlp.down_proj.weight": (("mlp", "down", "kernel"), True),
}
_LAYER_NAME = re.compile(r"^model\.layers\.(\d+)\.(.+)$")

# Keys of config.json that must hold positive ints (no defaults exist for them).
_REQUIRED_SIZES = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                   "num_attention_heads")
# Bytes per element of the safetensors dtypes (for naming a tensor that does not fit).
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
                "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8,
                "F64": 8, "C64": 8}


def _read_json(file: str):
  """The parsed JSON of `file`; FileNotFoundError / ValueError naming the file."""
  try:
    with open(file, "rb") as f:
      return json.loads(f.read())
  except FileNotFoundError:
    raise FileNotFoundError(f"{file}: no such file") from None
  except (ValueError, UnicodeDecodeError) as e:  # json.JSONDecodeError is a ValueError
    raise ValueError(f"{file}: invalid JSON ({e})") from None


def _header_problem(file: str) -> str:
  """Why the safetensors header of `file` does not fit its data, as far as can be told
  without trusting it: reads only the 8-byte length and, if it fits the file, the
  header (never a length from the file that exceeds the file's size)."""
  try:
    size = os.path.getsize(file)
    with open(file, "rb") as f:
      head = f.read(8)
      if len(head) < 8:
        return f"the file has {size} bytes, fewer than the 8-byte header length"
      n = int.from_bytes(head, "little")
      if n > size - 8:
        return f"header length {n} exceeds the file size ({size} bytes)"
      header = json.loads(f.read(n))
  except (OSError, ValueError, UnicodeDecodeError):
    return ""
  if not isinstance(header, dict):
    return ""
  data = size - 8 - n
  for name, info in header.items():
    if name == "__metadata__" or not isinstance(info, dict):
      continue
    offsets, shape = info.get("data_offsets"), info.get("shape")
    if (not isinstance(offsets, list) or len(offsets) != 2
        or not all(isinstance(o, int) for o in offsets)):
      return f"tensor {name}: data_offsets {offsets!r} are not two ints"
    begin, end = offsets
    if not 0 <= begin <= end <= data:
      return (f"tensor {name}: data_offsets [{begin}, {end}] do not fit the {data} data "
              "bytes (truncated file?)")
    width = _DTYPE_BYTES.get(info.get("dtype"))
    if width and isinstance(shape, list) and all(isinstance(d, int) for d in shape):
      if end - begin != width * int(np.prod(shape)):
        return (f"tensor {name}: shape {shape} of {info.get('dtype')} needs "
                f"{width * int(np.prod(shape))} bytes, data_offsets give {end - begin}")
  return ""


def _safe_open(file: str):
  """`safetensors.safe_open(file, framework="numpy")` with errors that name the file."""
  from safetensors import SafetensorError, safe_open  # pylint: disable=import-outside-toplevel
  try:
    return safe_open(file, framework="numpy")
  except FileNotFoundError:
    raise FileNotFoundError(f"{file}: no such file") from None
  except (SafetensorError, OSError) as e:
    detail = _header_problem(file)
    raise ValueError(f"{file}: not a readable safetensors file ({e})"
                     + (f": {detail}" if detail else "")) from None


def _get_tensor(handle, file: str, name: str) -> np.ndarray:
  """One tensor of an open file; ValueError naming the file and the tensor."""
  from safetensors import SafetensorError  # pylint: disable=import-outside-toplevel
  try:
    return handle.get_tensor(name)
  except (SafetensorError, OSError, TypeError, ValueError, AttributeError) as e:
    # AttributeError: a dtype this numpy lacks (float8 without ml_dtypes' names).
    raise ValueError(f"{file}: tensor {name} cannot be read ({type(e).__name__}: {e})") from None


def read_safetensors(path: str) -> dict:
  """The tensors of one .safetensors file as numpy arrays (the `safetensors` package's
  numpy loader; bfloat16 comes back as ml_dtypes' bfloat16, `jnp.bfloat16`).

  Args:
    path: a .safetensors file.

  Returns:
    {name: np.ndarray}.

  Raises:
    FileNotFoundError: no such file.
    ValueError: not a readable safetensors file (truncated, empty, offsets past the
      end, ...), naming the file and, where it can be told, the tensor.
  """
  with _safe_open(path) as handle:
    return {name: _get_tensor(handle, path, name) for name in handle.keys()}


def _weight_files(path: str) -> list[str]:
  index = os.path.join(path, "model.safetensors.index.json")
  if os.path.exists(index):
    weight_map = _read_json(index)
    weight_map = weight_map.get("weight_map") if isinstance(weight_map, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str)
                                                   for v in weight_map.values()):
      raise ValueError(f"{index}: key 'weight_map' must be a JSON object of tensor name -> "
                       "file name")
    return sorted(set(weight_map.values()))
  if os.path.exists(os.path.join(path, "model.safetensors")):
    return ["model.safetensors"]
  files = sorted(n for n in os.listdir(path) if n.endswith(".safetensors"))
  if not files:
    raise FileNotFoundError(f"no *.safetensors weights in {path} (.bin checkpoints are "
                            "not supported; re-save with safe_serialization=True)")
  return files


@contextlib.contextmanager
def _open_weights(path: str):
  """{tensor name: (open safetensors file holding it, its path)}; tensors are read one
  at a time (`get_tensor`), so loading holds one tensor in host memory besides the
  parameters."""
  with contextlib.ExitStack() as stack:
    where = {}
    for name in _weight_files(path):
      file = os.path.join(path, name)
      handle = stack.enter_context(_safe_open(file))
      where.update({key: (handle, file) for key in handle.keys()})
    yield where


def config_from_hf(hf_config: dict, param_dtype: str = "float32") -> LMConfig:
  """An LMConfig from the dict of a HF `config.json` (model_type llama or qwen2).

  Reads the rotary base from `rope_theta` or, in transformers >= 5 files,
  `rope_parameters["rope_theta"]`; only the default (unscaled) rotary embedding is
  supported.

  Args:
    hf_config: the parsed config.json.
    param_dtype: "float32" or "bfloat16" for the returned config.

  Returns:
    The LMConfig (Llama, https://arxiv.org/abs/2302.13971, layout).

  Raises:
    ValueError: not a JSON object, a missing or non-positive size (vocab_size,
      hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
      num_key_value_heads and head_dim when given), unsupported model_type,
      activation, rope scaling, sliding window or biases.
  """
  if not isinstance(hf_config, dict):
    raise ValueError(f"the config must be a JSON object, got {type(hf_config).__name__}")
  model_type = hf_config.get("model_type")
  if model_type not in SUPPORTED_MODEL_TYPES:
    raise ValueError(f"model_type={model_type!r} is not supported; allowed: "
                     f"{list(SUPPORTED_MODEL_TYPES)}")
  if hf_config.get("hidden_act", "silu") != "silu":
    raise ValueError(f"hidden_act={hf_config['hidden_act']!r}; only 'silu' (SwiGLU) is supported")
  rope = hf_config.get("rope_parameters") or {}
  scaling = hf_config.get("rope_scaling") or {}
  rope_type = rope.get("rope_type", scaling.get("rope_type", scaling.get("type", "default")))
  if rope_type != "default":
    raise ValueError(f"rope_type={rope_type!r} is not supported; only 'default'")
  rope_theta = rope.get("rope_theta", hf_config.get("rope_theta", 10000.0))
  if model_type == "qwen2":
    if hf_config.get("use_sliding_window", False):
      raise ValueError("Qwen2 use_sliding_window=True is not supported")
    attention_bias = True
  else:
    if hf_config.get("mlp_bias", False):
      raise ValueError("Llama mlp_bias=True is not supported")
    if hf_config.get("attention_bias", False):
      # Llama's attention_bias also adds an o_proj bias, which this layout lacks.
      raise ValueError("Llama attention_bias=True is not supported")
    attention_bias = False
  for key in _REQUIRED_SIZES:
    if key not in hf_config:
      raise ValueError(f"key {key!r} is missing (a positive int is required)")
  for key in _REQUIRED_SIZES + ("num_key_value_heads", "head_dim"):
    value = hf_config.get(key)
    if key in _REQUIRED_SIZES or value is not None:
      if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"key {key!r} must be a positive int, got {value!r}")
  heads = hf_config["num_attention_heads"]
  return LMConfig(
      vocab_size=hf_config["vocab_size"], hidden_size=hf_config["hidden_size"],
      intermediate_size=hf_config["intermediate_size"],
      num_layers=hf_config["num_hidden_layers"], num_heads=heads,
      num_kv_heads=hf_config.get("num_key_value_heads") or heads,
      head_dim=hf_config.get("head_dim") or hf_config["hidden_size"] // heads,
      rope_theta=float(rope_theta), rms_norm_eps=float(hf_config.get("rms_norm_eps", 1e-6)),
      tie_embeddings=bool(hf_config.get("tie_word_embeddings", False)),
      max_position=int(hf_config.get("max_position_embeddings", 2048)),
      attention_bias=attention_bias, param_dtype=param_dtype)


def load_hf(path: str, param_dtype: str = "float32") -> Tuple[LMConfig, dict]:
  """Loads a local HF Llama or Qwen2 causal LM as (LMConfig, params).

  Weight names map as `model.embed_tokens.weight` -> embed/embedding,
  `model.layers.{i}.self_attn.q_proj.weight` -> layers/attn/q/kernel[i] (transposed),
  ..., `model.norm.weight` -> final_norm/scale, `lm_head.weight` -> lm_head/kernel
  (transposed; ignored when `tie_word_embeddings`). Layers are stacked on a leading
  axis. Unknown tensors (e.g. rotary buffers) are ignored; missing or misshapen ones
  raise. Model: Llama (https://arxiv.org/abs/2302.13971).

  Args:
    path: directory with config.json and model.safetensors (or sharded
      model-0000x-of-0000y.safetensors with model.safetensors.index.json).
    param_dtype: "float32" or "bfloat16", the dtype the parameters are cast to.

  Returns:
    (config, params) for `apply`, `token_logprobs` and `sample`.

  Raises:
    FileNotFoundError: no config.json or no weights, naming the path.
    ValueError: invalid JSON, an unsupported or incomplete config, an unreadable
      safetensors file, a missing or misshapen tensor; the message names the file
      and the key or tensor.
  """
  config = load_config(path, param_dtype)
  with _open_weights(path) as tensors:
    params = _gather(path, config, tensors)
  _check_shapes(params, config, path)
  return config, jax.tree_util.tree_map(jnp.asarray, params)


def load_config(path: str, param_dtype: str = "float32") -> LMConfig:
  """The LMConfig of the checkpoint folder `path` (its config.json, `config_from_hf`).

  Raises:
    FileNotFoundError: no config.json; ValueError: invalid JSON or an unsupported or
      incomplete config, the message starting with the file's path.
  """
  config_file = os.path.join(path, "config.json")
  try:
    return config_from_hf(_read_json(config_file), param_dtype)
  except ValueError as e:
    if str(e).startswith(config_file):
      raise
    raise ValueError(f"{config_file}: {e}") from None


def _check_shapes(params, config: LMConfig, where: str) -> None:
  """ValueError naming `where` and the first array of `params` that is missing, extra or
  not of the shape `config` needs."""
  expected = jax.tree_util.tree_flatten_with_path(
      jax.eval_shape(lambda: init_params(config, jax.random.key(0))))[0]
  flat = dict(jax.tree_util.tree_flatten_with_path(params)[0])
  if len(flat) != len(expected):
    raise ValueError(f"{where}: {len(flat)} parameter arrays, expected {len(expected)}")
  for key_path, spec in expected:
    got = flat.get(key_path)
    if got is None or tuple(got.shape) != tuple(spec.shape):
      raise ValueError(f"{where}: {jax.tree_util.keystr(key_path)} has shape "
                       f"{None if got is None else tuple(got.shape)}, expected "
                       f"{tuple(spec.shape)}")


def _gather(path, config: LMConfig, tensors) -> dict:
  """Our parameter tree (numpy, `config.dtype`) from {HF name: open file}."""
  dtype = np.dtype(config.dtype)

  def get(name, transpose=False):
    if name not in tensors:
      raise ValueError(f"{path}: weight {name} is missing (in no *.safetensors file)")
    handle, file = tensors[name]
    array = _get_tensor(handle, file, name)
    return (array.T if transpose else array).astype(dtype)

  def stack(suffix, transpose):
    arrays = [get(f"model.layers.{i}.{suffix}", transpose) for i in range(config.num_layers)]
    for i, a in enumerate(arrays):
      if a.shape != arrays[0].shape:
        name = f"model.layers.{i}.{suffix}"
        raise ValueError(f"{tensors[name][1]}: tensor {name} has shape "
                         f"{a.T.shape if transpose else a.shape}, layer 0's has "
                         f"{arrays[0].T.shape if transpose else arrays[0].shape}")
    return np.stack(arrays)

  params = {"embed": {"embedding": get("model.embed_tokens.weight")},
            "final_norm": {"scale": get("model.norm.weight")}}
  if not config.tie_embeddings:
    params["lm_head"] = {"kernel": get("lm_head.weight", transpose=True)}
  layers = {}
  for suffix, (where, transpose) in _LAYER_WEIGHTS.items():
    if where[-1] == "bias" and not config.attention_bias:
      continue
    stacked = stack(suffix, transpose)
    node = layers
    for key in where[:-1]:
      node = node.setdefault(key, {})
    node[where[-1]] = stacked
  params["layers"] = layers
  for name in tensors:
    match = _LAYER_NAME.match(name)
    if match and int(match.group(1)) >= config.num_layers:
      raise ValueError(f"{path}: weight {name} beyond num_hidden_layers={config.num_layers}")
  return params


def load_tokenizer(path: str):
  """The `tokenizers.Tokenizer` of `path/tokenizer.json` (or of a tokenizer.json file).

  The end-of-sequence ids are not in tokenizer.json in a dependable form; read them
  with `load_eos_ids(path)` (generation_config.json's `eos_token_id`, else
  config.json's), or `tokenizer.token_to_id("<|endoftext|>")` for a known name.
  Needs the `tokenizers` package (imported here, not by `import rlcore`).

  Args:
    path: a model directory holding tokenizer.json, or the tokenizer.json file.

  Returns:
    A tokenizers.Tokenizer: `encode(text).ids`, `decode(ids)`, `token_to_id(str)`.
  """
  from tokenizers import Tokenizer  # pylint: disable=import-outside-toplevel
  file = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
  return Tokenizer.from_file(file)


def load_eos_ids(path: str) -> Tuple[int, ...]:
  """End-of-sequence token ids of a local HF model directory.

  Looks in generation_config.json first (what `generate` stops on; Qwen2-Instruct
  lists both <|im_end|> and <|endoftext|> there), then config.json. Either may hold
  an int or a list.

  Args:
    path: the model directory.

  Returns:
    A tuple of ints, possibly empty; pass it as `sample(..., eos_id=...)`.
  """
  for name in ("generation_config.json", "config.json"):
    file = os.path.join(path, name)
    if not os.path.exists(file):
      continue
    content = _read_json(file)
    eos = content.get("eos_token_id") if isinstance(content, dict) else None
    if eos is not None:
      return tuple(int(e) for e in np.atleast_1d(eos))
  return ()



# Files of a checkpoint folder that `save_hf` copies from its source (the tokenizer,
# its chat templates and the generation settings); the weights and config.json it writes.
_COPIED_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "chat_template.jinja", "generation_config.json", "vocab.json",
                 "merges.txt", "added_tokens.json")


def _hf_config(config: LMConfig) -> dict:
  """A config.json for `config` when there is no source checkpoint to start from."""
  qwen2 = config.attention_bias
  return {"architectures": ["Qwen2ForCausalLM" if qwen2 else "LlamaForCausalLM"],
          "model_type": "qwen2" if qwen2 else "llama", "vocab_size": config.vocab_size,
          "hidden_size": config.hidden_size, "intermediate_size": config.intermediate_size,
          "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
          "num_key_value_heads": config.num_kv_heads, "head_dim": config.head_dim,
          "rope_theta": config.rope_theta, "rms_norm_eps": config.rms_norm_eps,
          "tie_word_embeddings": config.tie_embeddings, "hidden_act": "silu",
          "max_position_embeddings": config.max_position}


def save_hf(folder: str, config: LMConfig, params, *, source: str | None = None) -> str:
  """Writes `params` as a Hugging Face checkpoint folder that `load_hf` and transformers'
  `AutoModelForCausalLM.from_pretrained` read: the inverse of `load_hf`'s name mapping.

  The weights go to `model.safetensors` as float32 (numpy, which the safetensors
  package writes from, has no bfloat16; float32 holds bfloat16 values exactly), with
  the `{"format": "pt"}` metadata transformers expects. With `source` (the checkpoint
  the parameters came from) its config.json is kept (dtype set to float32) and its
  tokenizer, chat template and generation files are copied; without it a config.json
  is written from `config`. Model: Llama (https://arxiv.org/abs/2302.13971).

  Args:
    folder: the output folder (created; existing files of the same names replaced).
    config: the parameters' LMConfig.
    params: the parameter tree (`load_hf`'s layout: layers stacked on a leading axis).
    source: the source checkpoint folder, or None.

  Returns:
    `folder`.

  Raises:
    ValueError: when `params` do not have `config`'s shapes, naming the first that
      differs, or `source` has no config.json.
  """
  import shutil
  from safetensors.numpy import save_file
  _check_shapes(params, config, "save_hf")
  f32 = lambda x: np.ascontiguousarray(np.asarray(x, np.float32))
  tensors = {"model.embed_tokens.weight": f32(params["embed"]["embedding"]),
             "model.norm.weight": f32(params["final_norm"]["scale"])}
  if not config.tie_embeddings:
    tensors["lm_head.weight"] = f32(np.asarray(params["lm_head"]["kernel"], np.float32).T)
  for suffix, (where, transpose) in _LAYER_WEIGHTS.items():
    if where[-1] == "bias" and not config.attention_bias:
      continue
    node = params["layers"]
    for key in where:
      node = node[key]
    stacked = np.asarray(node, np.float32)
    for i in range(config.num_layers):
      tensors[f"model.layers.{i}.{suffix}"] = f32(stacked[i].T if transpose else stacked[i])
  os.makedirs(folder, exist_ok=True)
  if source is not None:
    source_config = os.path.join(source, "config.json")
    if not os.path.isfile(source_config):
      raise ValueError(f"save_hf: the source {source!r} has no config.json.")
    hf_config = dict(_read_json(source_config), torch_dtype="float32")
    for name in _COPIED_FILES:
      if os.path.isfile(os.path.join(source, name)):
        shutil.copyfile(os.path.join(source, name), os.path.join(folder, name))
    extra = os.path.join(source, "additional_chat_templates")
    if os.path.isdir(extra):
      shutil.copytree(extra, os.path.join(folder, "additional_chat_templates"),
                      dirs_exist_ok=True)
  else:
    hf_config = dict(_hf_config(config), torch_dtype="float32")
  weights = os.path.join(folder, "model.safetensors")
  save_file(tensors, weights + ".tmp", metadata={"format": "pt"})
  os.replace(weights + ".tmp", weights)
  with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
    json.dump(hf_config, f, indent=2)
  return folder
