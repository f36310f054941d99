"""A toy Hugging Face checkpoint and dataset for trying the HF path without a download:
a tiny random Qwen2, a byte-level BPE tokenizer trained here with a ChatML template, and
a small synthetic JSONL dataset of GSM8K-style problems, written by transformers and
tokenizers into a folder. Used by the tests, benchmarks/grpo_vs_trl.py and the Colab
notebook of `configs/grpo_dataset.py`. Needs torch, transformers and tokenizers
(imported when called; not imported by `rlcore.lm`).

    from rlcore.lm import toy
    toy.write_checkpoint("toy_ckpt"); toy.write_dataset("toy.jsonl")

Sizes: vocabulary 282 (the 256 bytes, 23 BPE merges of the corpus, <|endoftext|>,
<|im_start|>, <|im_end|>; the model's embedding has 288 rows), hidden 32, intermediate
64, 2 layers, 4 query heads, 2 key/value heads, tied embeddings: 27,936 parameters.
"""

from __future__ import annotations

import json
import os

CHATML = (   # Qwen2's ChatML layout (written here, not copied)
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
         r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WORDS = ["plus", "minus", "times", "is", "what", "so", "the", "answer"]


def problems(n: int, seed: int = 0) -> list[dict]:
  """n GSM8K-style lines: {"question": "What is 3 plus 4?", "answer": "3 plus 4 is 7\\n#### 7"}."""
  import numpy as np
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    a, b = (int(x) for x in rng.integers(1, 20, 2))
    op, value = [("plus", a + b), ("minus", a - b), ("times", a * b)][int(rng.integers(3))]
    out.append({"question": f"What is {a} {op} {b}?",
                "answer": f"{a} {op} {b} is {value}\n\n#### {value}"})
  return out


def write_dataset(path: str, n: int = 48, seed: int = 0) -> str:
  """Writes `problems(n, seed)` as JSONL to `path`."""
  with open(path, "w", encoding="utf-8") as f:
    for row in problems(n, seed):
      f.write(json.dumps(row) + "\n")
  return path


def write_checkpoint(folder: str, *, template: str | None = CHATML, seed: int = 0,
                     hidden_size: int = 32, num_layers: int = 2,
                     intermediate_size: int | None = None, num_heads: int = 4,
                     num_kv_heads: int = 2) -> str:
  """Saves the tokenizer (with `template`, or none) and a random Qwen2 into `folder`.

  The default sizes are the toy's (27,936 parameters); `intermediate_size` defaults
  to 2 x hidden_size. Qwen2-0.5B's body: hidden_size=896, intermediate_size=4864,
  num_layers=24, num_heads=14, num_kv_heads=2 (with this tokenizer's vocabulary).
  """
  import tokenizers
  import torch
  import transformers
  tok = tokenizers.Tokenizer(tokenizers.models.BPE())
  # Qwen2's pre-tokenisation: digits one by one, runs of newlines kept together (so
  # that "\n\n", PURE's step separator, can become one token), then byte-level.
  tok.pre_tokenizer = tokenizers.pre_tokenizers.Sequence([
      tokenizers.pre_tokenizers.Split(tokenizers.Regex(SPLIT), behavior="isolated"),
      tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
  tok.decoder = tokenizers.decoders.ByteLevel()
  corpus = [f"{p['question']}\n{p['answer']}" for p in problems(400, seed=1)]
  tok.train_from_iterator(corpus * 2, tokenizers.trainers.BpeTrainer(
      vocab_size=384, special_tokens=SPECIALS,
      initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
  fast = transformers.PreTrainedTokenizerFast(
      tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
  if template is not None:
    fast.chat_template = template
  fast.save_pretrained(folder)
  vocab = tok.get_vocab_size(with_added_tokens=True)
  torch.manual_seed(seed)
  config = transformers.Qwen2Config(
      vocab_size=-(-vocab // 8) * 8, hidden_size=hidden_size,
      intermediate_size=intermediate_size or 2 * hidden_size, num_hidden_layers=num_layers,
      num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
      max_position_embeddings=512, tie_word_embeddings=True,
      eos_token_id=tok.token_to_id("<|im_end|>"),
      pad_token_id=tok.token_to_id("<|endoftext|>"), bos_token_id=None)
  transformers.Qwen2ForCausalLM(config).save_pretrained(folder, safe_serialization=True)
  assert os.path.isfile(os.path.join(folder, "model.safetensors"))
  return folder
