"""envs.text.steps: PURE's step ends at tokens whose decoded text ends with the separator."""

import numpy as np
import pytest

from rlcore.envs.text import steps


def test_step_ends_on_separator_tokens_and_the_last_token():
  toks = ["Add", " 2", "\n\n", "so", " 4", ".\n\n", "#", "4", "<eos>", "<pad>", "<pad>"]
  ends, texts = steps.steps_from_tokens(toks, length=9)
  np.testing.assert_array_equal(ends, [2, 5, 8])
  assert texts == ["Add 2\n\n", "so 4.\n\n", "#4<eos>"]
  assert "".join(texts) == "".join(toks[:9])
  assert ends.dtype == np.int32


def test_merged_newlines_separator_last_and_degenerate_cases():
  # A token "\n\n\n" ends with the separator; "\n\nx" does not (its text goes on).
  ends, texts = steps.steps_from_tokens(["a", "\n\n\n", "b", "\n\nx", "c\n\n"])
  np.testing.assert_array_equal(ends, [1, 4])
  assert texts == ["a\n\n\n", "b\n\nxc\n\n"]
  ends, texts = steps.steps_from_tokens(["one step only"])
  assert ends.tolist() == [0] and texts == ["one step only"]
  ends, texts = steps.steps_from_tokens(["x", "<pad>"], length=0)
  assert ends.tolist() == [0] and texts == [""]
  ends, _ = steps.steps_from_tokens(["a;", "b;", "c"], separator=";")
  assert ends.tolist() == [0, 1, 2]
  with pytest.raises(ValueError, match="separator"):
    steps.steps_from_tokens(["a"], separator="")
  with pytest.raises(ValueError, match=r"length.*\[0, 1\]"):
    steps.steps_from_tokens(["a"], length=2)


def test_with_a_trained_bpe_tokenizer():
  """Real tokens of a byte-level BPE trained here, whose pre-tokenizer isolates runs of
  newlines as Qwen2's does (so "\\n\\n" is one token and "\\n\\n\\n" two): the steps end
  at the "\\n\\n" tokens and at the last token, and rebuild the completion."""
  tokenizers = pytest.importorskip("tokenizers")
  pt = tokenizers.pre_tokenizers
  tok = tokenizers.Tokenizer(tokenizers.models.BPE())
  tok.pre_tokenizer = pt.Sequence([
      pt.Split(tokenizers.Regex(r"\s*[\r\n]+"), behavior="isolated"),
      pt.ByteLevel(add_prefix_space=False, use_regex=False)])
  tok.decoder = tokenizers.decoders.ByteLevel()
  corpus = ["step one: 2+3=5.\n\nstep two: 5*2=10.\n\n#### 10"] * 20
  tok.train_from_iterator(corpus, tokenizers.trainers.BpeTrainer(
      vocab_size=300, initial_alphabet=pt.ByteLevel.alphabet()))
  text = "step one: 2+3=5.\n\nstep two: 5*2=10.\n\n\n#### 10"
  ids = tok.encode(text).ids
  pieces = [tok.decode([i]) for i in ids]
  assert "".join(pieces) == text
  ends, texts = steps.steps_from_tokens(pieces)
  assert "".join(texts) == text and len(texts) == 3
  assert texts[0].endswith("\n\n") and texts[1].endswith("\n\n")
  assert texts[2] == "\n#### 10"
  assert [pieces[e] for e in ends[:2]] == ["\n\n", "\n\n"] and ends[-1] == len(ids) - 1
