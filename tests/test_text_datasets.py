"""envs.text.answers and envs.text.datasets: answer extraction and matching in GSM8K's
and MATH's conventions, JSONL datasets with their errors, the split, the reward hook."""

import json
import sys
import textwrap

import numpy as np
import pytest

from rlcore.envs.text import answers, datasets


@pytest.mark.parametrize("text,method,expected", [
    ("She has 3 + 4 = 7 eggs.\n#### 1,800", "gsm8k", "1800"),
    ("#### $42", "gsm8k", "42"),
    ("#### 5\nthen #### -12.5", "gsm8k", "-12.5"),
    ("no marker 17", "gsm8k", None),
    ("so \\boxed{\\frac{\\sqrt{3}}{2}} done", "boxed", "\\frac{\\sqrt{3}}{2}"),
    ("\\boxed{1} then \\fbox{2}", "boxed", "2"),
    ("\\boxed 5$ left", "boxed", "5"),
    ("\\boxed{3", "boxed", None),
    ("we get 5 then 7.", "last_number", "7"),
    ("costs $1,250.50 in all", "last_number", "1250.50"),
    ("#### 9 but \\boxed{8}", "auto", "8"),            # boxed first
    ("#### 9 and later 10", "auto", "9"),              # then ####
    ("only 3 and 4", "auto", "4"),                    # then the last number
    ("nothing here", "auto", None),
])
def test_extract_answer(text, method, expected):
  assert answers.extract_answer(text, method) == expected


def test_extract_answer_rejects_unknown_methods():
  with pytest.raises(ValueError, match="method.*gsm8k, boxed, last_number, auto"):
    answers.extract_answer("1", "regex")


@pytest.mark.parametrize("text,value", [
    ("42", 42.0), ("-3", -3.0), ("1,200", 1200.0), ("$5", 5.0), ("25%", 25.0),
    ("7.", 7.0), (".5", 0.5), ("3/4", 0.75), ("\\frac{1}{8}", 0.125),
    ("-\\frac{3}{4}", -0.75), ("\\dfrac{2}{5}", 0.4), ("1,2", None), ("12,34", None),
    ("x", None), ("1/0", None), ("\\frac{a}{2}", None), ("", None),
])
def test_parse_number(text, value):
  got = answers.parse_number(text)
  assert (got is None and value is None) or got == pytest.approx(value)


@pytest.mark.parametrize("a,b,same", [
    ("1800", "1,800", True), ("0.5", "\\frac{1}{2}", True), ("\\dfrac12", "\\frac{1}{2}", True),
    ("x=5", "5", True), ("5\\text{ cm}", "5", True), ("\\left( 1,2 \\right)", "(1,2)", True),
    ("90^\\circ", "90", True), ("\\sqrt2", "\\sqrt{2}", True), ("25\\%", "25", True),
    ("3", "4", False), ("\\frac{1}{2}", "\\frac{1}{3}", False), ("(1,2)", "(2,1)", False),
    ("1.0000001", "1", True), ("1.001", "1", False), (None, "1", False), ("1", None, False),
    ("\\text{(A)}", "(A)", True), ("y", "x", False),
])
def test_answers_match(a, b, same):
  assert answers.answers_match(a, b) is same
  assert answers.answers_match(b, a) is same


def test_format_reward():
  assert answers.format_reward("work\n#### 12", "gsm8k") == 1.0
  assert answers.format_reward("the answer is 12", "gsm8k") == 0.0
  assert answers.format_reward("\\boxed{12}", "boxed") == 1.0
  assert answers.format_reward("\\boxed{}", "boxed") == 0.0
  assert answers.format_reward("\\boxed{12", "boxed") == 0.0
  with pytest.raises(ValueError, match="style"):
    answers.format_reward("x", "json")


def _write(path, rows):
  path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
  return str(path)


def test_load_jsonl_reads_gsm8k_math_and_plain_answers(tmp_path):
  gsm = _write(tmp_path / "gsm.jsonl", [
      {"question": "2 + 3?", "answer": "2 + 3 = 5\n#### 5"},
      "",
      {"question": "Price?", "answer": "It is 1,200 dollars.\n#### 1,200", "extra": 1}])
  ex = datasets.load_jsonl(gsm)
  assert [(e.prompt, e.answer, e.line) for e in ex] == [("2 + 3?", "5", 1),
                                                        ("Price?", "1200", 3)]
  math_file = _write(tmp_path / "math.jsonl", [
      {"problem": "Half?", "solution": "It is $\\boxed{\\frac{1}{2}}$."}])
  ex = datasets.load_jsonl(math_file, prompt_field="problem", answer_field="solution",
                           answer_format="boxed")
  assert ex[0].answer == "\\frac{1}{2}"
  plain = _write(tmp_path / "plain.jsonl", [{"q": "a", "a": 7}, {"q": "b", "a": " x "}])
  ex = datasets.load_jsonl(plain, prompt_field="q", answer_field="a", answer_format="plain")
  assert [e.answer for e in ex] == ["7", "x"]


@pytest.mark.parametrize("rows,kwargs,match", [
    ([{"question": "a", "answer": "#### 1"}, {"question": "b"}], {},
     r"line 2: missing field 'answer' \(fields present: 'question'\)"),
    (["{not json"], {}, "line 1: not valid JSON"),
    ([[1, 2]], {}, "line 1: a JSON object"),
    ([{"question": "", "answer": "#### 1"}], {}, "line 1: field 'question' must be a non-empty"),
    ([{"question": "a", "answer": "the answer is five"}], {},
     r"line 1, field 'answer': cannot parse the answer: a final '#### <number>' line"),
    ([{"question": "a", "answer": "\\boxed{5"}], {"answer_format": "boxed"},
     r"field 'answer': cannot parse the answer: a closed \\boxed"),
    ([{"question": "a", "answer": None}], {}, "the answer must be a string or a number"),
    ([{"question": "a", "answer": "#### 1"}], {"answer_format": "csv"},
     "answer_format.*gsm8k, boxed, plain"),
])
def test_load_jsonl_errors_name_the_file_line_and_field(tmp_path, rows, kwargs, match):
  path = _write(tmp_path / "bad.jsonl", rows)
  with pytest.raises(ValueError, match=match) as err:
    datasets.load_jsonl(path, **kwargs)
  if "answer_format" not in kwargs or kwargs["answer_format"] in datasets.ANSWER_FORMATS:
    assert "bad.jsonl" in str(err.value)


def test_load_jsonl_rejects_missing_and_empty_files(tmp_path):
  with pytest.raises(ValueError, match="no dataset file"):
    datasets.load_jsonl(str(tmp_path / "absent.jsonl"))
  (tmp_path / "empty.jsonl").write_text("\n\n")
  with pytest.raises(ValueError, match="holds no examples"):
    datasets.load_jsonl(str(tmp_path / "empty.jsonl"))


def test_split_is_seeded_disjoint_and_complete():
  ex = [datasets.Example(f"p{i}", str(i), i + 1) for i in range(50)]
  train, held = datasets.split(ex, 0.2, seed=3)
  assert len(held) == 10 and len(train) == 40
  assert sorted(train + held, key=lambda e: e.line) == ex
  assert [e.line for e in train] == sorted(e.line for e in train)     # file order kept
  assert datasets.split(ex, 0.2, seed=3) == (train, held)
  assert datasets.split(ex, 0.2, seed=4)[1] != held
  assert len(datasets.split(ex, 7)[1]) == 7
  for bad in (0.0, 1.0, 0, 50, True, "0.1"):
    with pytest.raises(ValueError, match="held_out"):
      datasets.split(ex, bad)


def test_reward_hook_loads_a_user_function_and_names_what_is_wrong(tmp_path, monkeypatch):
  (tmp_path / "my_rewards.py").write_text(textwrap.dedent("""
      def first_word(prompts, completions, answers):
        return [float(c.split()[0] == a) for c, a in zip(completions, answers)]
      NOT_CALLABLE = 3
  """))
  monkeypatch.syspath_prepend(str(tmp_path))
  fn = datasets.load_reward_fn("my_rewards:first_word")
  assert fn(["p", "p"], ["5 apples", "6 pears"], ["5", "5"]) == [1.0, 0.0]
  for spec, match in (("my_rewards", "expected 'module:function'"),
                      ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
                      ("my_rewards:missing", "no callable 'missing'"),
                      ("my_rewards:NOT_CALLABLE", "no callable 'NOT_CALLABLE'")):
    with pytest.raises(ValueError, match=match):
      datasets.load_reward_fn(spec)
  sys.modules.pop("my_rewards", None)


def test_correctness_rewards():
  got = datasets.correctness_rewards(
      ["so #### 1,200", "\\boxed{\\dfrac12}", "it is 7", "no answer", "#### 3"],
      ["1200", "0.5", "7", "1", "4"])
  np.testing.assert_array_equal(got, np.array([1, 1, 1, 0, 0], np.float32))
  assert got.dtype == np.float32
  with pytest.raises(ValueError, match="2 completions but 1 references"):
    datasets.correctness_rewards(["a", "b"], ["1"])
