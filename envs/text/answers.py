"""Final answers of math word problems: extraction, normalisation, matching, format reward.

For datasets in GSM8K's and MATH's conventions (and model completions that follow
them), host-side Python, between jitted calls:

* GSM8K (Cobbe et al. 2021, https://arxiv.org/abs/2110.14168): the reference solution
  ends with a line `#### <answer>`, the answer a number that may carry thousands
  separators (`#### 1,200`).
* MATH (Hendrycks et al. 2021, https://arxiv.org/abs/2103.03874): the answer is the
  last `\\boxed{...}` (or `\\fbox{...}`) of the solution, LaTeX with nested braces.

`extract_answer(text, method)` takes the answer out of a completion or a reference
solution; `answers_match(predicted, reference)` compares two extracted answers:
numerically when both parse as numbers (`parse_number`: integers, decimals, thousands
separators, a leading `$`, a trailing `%` or `.`, `a/b`, `\\frac{a}{b}`, `-\\frac{a}{b}`;
relative tolerance 1e-6), otherwise as strings after `normalize_math_answer` (a
documented subset of the normalisation common to MATH graders: spaces, `\\left` /
`\\right`, `\\!`, `\\dfrac` / `\\tfrac` → `\\frac`, `\\frac12` → `\\frac{1}{2}`, `\\sqrt2` →
`\\sqrt{2}`, `^\\circ`, `\\$`, `\\text{...}` units, a short `x =` prefix, a leading `0` of
`.5`). A comma inside a last number is read as a thousands separator (`1,2` → 12), as
verl's flexible mode does.

The extraction modes mirror the two modes of verl's GSM8K reward (strict `####`,
flexible last number) and its MATH reward's last-boxed answer; the normalisation is
this module's own subset, not checked line by line against any grader's code. The
tests hold every rule to hand-written cases.
"""

from __future__ import annotations

import math
import re
from typing import Optional

METHODS = ("gsm8k", "boxed", "last_number", "auto")

_NUMBER = re.compile(r"-?[\d,]*\.?\d+")
_GSM8K = re.compile(r"####\s*(\$?\s*-?[\d,]*\.?\d+)")


def last_boxed(text: str) -> Optional[str]:
  """The content of the last `\\boxed{...}` / `\\fbox{...}` (nested braces kept), or
  of a last `\\boxed x` without braces (up to the next `$` or whitespace); None if
  there is none or its braces never close.

  Args:
    text: a completion or a MATH solution.
  """
  start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
  if start < 0:
    return None
  i = start + (len("\\boxed") if text.startswith("\\boxed", start) else len("\\fbox"))
  if text.startswith(" ", i):                       # "\boxed 5": no braces
    rest = text[i + 1:]
    m = re.match(r"[^\s$]+", rest)
    return m.group(0) if m else None
  if not text.startswith("{", i):
    return None
  depth = 0
  for j in range(i, len(text)):
    if text[j] == "{":
      depth += 1
    elif text[j] == "}":
      depth -= 1
      if depth == 0:
        return text[i + 1:j]
  return None


def extract_answer(text: str, method: str = "auto") -> Optional[str]:
  """The final answer in `text`, or None if it has none.

  Args:
    text: a model completion or a dataset's reference solution.
    method: "gsm8k" (the number after the last `####`, commas and `$` removed),
      "boxed" (the last `\\boxed{}`), "last_number" (the last number in the text, as
      verl's flexible GSM8K mode), or "auto" (boxed, else `####`, else the last number).

  Returns:
    The answer string (not yet normalised), or None.
  """
  if method not in METHODS:
    raise ValueError(f"extract_answer: `method` must be one of {', '.join(METHODS)}, "
                     f"got {method!r}.")
  if method in ("boxed", "auto"):
    boxed = last_boxed(text)
    if boxed is not None or method == "boxed":
      return boxed
  if method in ("gsm8k", "auto"):
    found = _GSM8K.findall(text)
    if found:
      return found[-1].replace(",", "").replace("$", "").strip()
    if method == "gsm8k":
      return None
  numbers = [n for n in _NUMBER.findall(text) if n.strip(",")]
  return numbers[-1].replace(",", "") if numbers else None


_FRAC = re.compile(r"^(-?)\\frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}$")


def parse_number(answer: str) -> Optional[float]:
  """`answer` as a float, or None if it is not a plain number.

  Accepts integers and decimals with thousands separators (`1,200`), a leading `$`, a
  trailing `%` (kept as the number: GSM8K's `25%` is 25) or `.`, `a/b` and
  `\\frac{a}{b}` / `\\dfrac{a}{b}` with numeric a, b (and a leading `-`).

  Args:
    answer: an extracted answer.
  """
  s = answer.strip().replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
  s = s.replace("\\$", "").replace("$", "").replace("\\%", "").rstrip("%").strip()
  s = s.rstrip(".") if re.fullmatch(r"-?[\d,]*\.?\d+\.", s) else s
  if re.fullmatch(r"-?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?|-?\.\d+", s):
    return float(s.replace(",", ""))
  m = re.fullmatch(r"(-?\d+)\s*/\s*(-?\d+)", s) or _FRAC.match(s)
  if m is None:
    return None
  groups = m.groups()
  sign = -1.0 if len(groups) == 3 and groups[0] == "-" else 1.0
  num, den = float(groups[-2]), float(groups[-1])
  return None if den == 0 else sign * num / den


def _fix_fracs(s: str) -> str:
  r"""`\frac12` -> `\frac{1}{2}`, `\frac1{2}` -> `\frac{1}{2}`, `\frac{1}2` -> `\frac{1}{2}`."""
  out, i = [], 0
  while True:
    j = s.find("\\frac", i)
    if j < 0:
      out.append(s[i:])
      return "".join(out)
    out.append(s[i:j + 5])
    k = j + 5
    for _ in range(2):                       # numerator, denominator
      if k < len(s) and s[k] == "{":
        depth, start = 0, k
        while k < len(s):
          depth += {"{": 1, "}": -1}.get(s[k], 0)
          k += 1
          if depth == 0:
            break
        out.append(s[start:k])
      elif k < len(s):
        out.append("{" + s[k] + "}")
        k += 1
    i = k


def normalize_math_answer(answer: str) -> str:
  r"""A canonical string for comparing LaTeX answers.

  Removes spaces, `\left` / `\right`, `\!`, `\,`, `\;`, `^\circ` / `^{\circ}`, `\$`,
  `$`, a trailing `.`, `\text{...}` around units at the end (`5\text{ cm}` -> `5`),
  and a short variable prefix (`x=5` -> `5`); maps `\dfrac` / `\tfrac` to `\frac`,
  `\frac12` to `\frac{1}{2}`, `\sqrt2` to `\sqrt{2}`, `.5` to `0.5`, `\%` to nothing.

  Args:
    answer: an extracted answer.
  """
  s = answer.strip()
  s = re.sub(r"\\text\{\s*[a-zA-Z ]*\}$", "", s) if not s.startswith("\\text") else s
  s = re.sub(r"\\text\{(.*?)\}", r"\1", s)
  for old, new in (("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\,", ""), ("\\;", ""),
                   ("^{\\circ}", ""), ("^\\circ", ""), ("\\$", ""), ("$", ""),
                   ("\\%", ""), ("%", ""), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac")):
    s = s.replace(old, new)
  s = s.replace(" ", "")
  s = s.rstrip(".")
  m = re.fullmatch(r"[a-zA-Z]\w{0,1}=(.+)", s)
  if m:
    s = m.group(1)
  s = re.sub(r"(^|[^\d])\.(\d)", r"\g<1>0.\2", s)
  s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
  return _fix_fracs(s)


def answers_match(predicted: Optional[str], reference: Optional[str],
                  rel_tol: float = 1e-6) -> bool:
  """Whether two extracted answers agree (False if either is None).

  Numerically (relative tolerance `rel_tol`, absolute 1e-9) when both parse as numbers,
  else as strings after `normalize_math_answer`.

  Args:
    predicted: the completion's answer.
    reference: the dataset's answer.
    rel_tol: relative tolerance of the numeric comparison.
  """
  if predicted is None or reference is None:
    return False
  a, b = parse_number(predicted), parse_number(reference)
  if a is not None and b is not None:
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-9)
  a_s, b_s = normalize_math_answer(predicted), normalize_math_answer(reference)
  if a_s == b_s:
    return True
  a, b = parse_number(a_s), parse_number(b_s)
  return a is not None and b is not None and math.isclose(a, b, rel_tol=rel_tol,
                                                           abs_tol=1e-9)


FORMATS = ("gsm8k", "boxed")


def format_reward(completion: str, style: str) -> float:
  """1.0 if the completion states its answer in the expected form, else 0.0.

  Args:
    completion: decoded completion.
    style: "gsm8k" (a `#### <number>` line is present) or "boxed" (a closed `\\boxed{}`).
  """
  if style not in FORMATS:
    raise ValueError(f"format_reward: `style` must be one of {', '.join(FORMATS)}, got "
                     f"{style!r}.")
  found = extract_answer(completion, style)
  return float(found is not None and found != "")
