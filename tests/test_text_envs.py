"""Tests for envs.text: chained arithmetic, tokenizer, verifier, programmatic PRM."""

import numpy as np
import pytest

from rlcore.envs.text import (DIFFICULTY_OPS, MAX_VERBOSITY, TASK_MAX_COMPLETION_LEN,
                       TASK_MAX_PROMPT_LEN, TASK_MAX_STEPS, CharTokenizer, ProcessRewardModel,
                       apply_op, generate, in_held_out, sft_corpus, solution, split_steps,
                       verify, verify_batch)
from rlcore.envs.text.tokenizer import CHARS


def _eval_left_to_right(prompt):
  body = prompt[:-1]
  i = 0
  while i < len(body) and body[i].isdigit():
    i += 1
  v = int(body[:i])
  while i < len(body):
    op = body[i]
    j = i + 1
    while j < len(body) and body[j].isdigit():
      j += 1
    v = apply_op(v, op, int(body[i + 1:j]))
    i = j
  return v


def _with_fillers(sol, k, filler="ok"):
  parts = sol.split(";")
  return ";".join(parts[:1] + [filler] * k + parts[1:])


# --- generation -----------------------------------------------------------------------


def test_generate_is_deterministic_and_prefix_stable():
  a = generate(7, 300)
  assert a == generate(7, 300)
  assert a[:50] == generate(7, 50)
  assert [p.prompt for p in a] != [p.prompt for p in generate(8, 300)]
  rng = np.random.default_rng(3)
  b1, b2 = generate(rng, 100), generate(rng, 100)
  assert [p.prompt for p in b1] != [p.prompt for p in b2]
  assert sft_corpus(5, 200) == sft_corpus(5, 200)


def test_problems_are_valid():
  probs = generate(0, 600)
  assert {p.difficulty for p in probs} == {0, 1, 2}
  for p in probs:
    lo, hi = DIFFICULTY_OPS[p.difficulty]
    assert lo <= p.num_ops <= hi and len(p.steps) == p.num_ops == len(p.ops)
    assert _eval_left_to_right(p.prompt) == p.answer
    assert p.prompt.endswith("=")
    assert len(p.prompt) + 1 <= TASK_MAX_PROMPT_LEN  # + BOS
    vals = [p.start] + [int(s.split("=")[1]) for s in p.steps]
    assert all(0 <= v <= 99 for v in vals)
    assert vals[-1] == p.answer
    for (op, b), s, prev in zip(p.ops, p.steps, vals):
      assert s.startswith(f"{prev}{op}{b}=")


def test_held_out_is_disjoint():
  train = {p.prompt for p in generate(1, 4000)}
  held = {p.prompt for p in generate(1, 1000, split="held_out")}
  held |= {p.prompt for p in generate(99, 1000, split="held_out")}
  assert held and not train & held
  assert all(in_held_out(q) for q in held) and not any(in_held_out(q) for q in train)
  uniq = generate(2, 200, (0,), split="held_out", unique=True)
  assert len({p.prompt for p in uniq}) == 200
  with pytest.raises(ValueError):
    generate(0, 1, (3,))


# --- solutions and verifier --------------------------------------------------------------


def test_minimal_solutions_verify_and_score_max_under_honest_prm():
  honest = ProcessRewardModel(flaws=())
  flawed = ProcessRewardModel()
  probs = generate(4, 300)
  sols = [solution(p) for p in probs]
  correct, wf = verify_batch(probs, sols)
  assert correct.all() and wf.all()
  for p, s in zip(probs, sols):
    assert s == ";".join(p.steps + [f"#{p.answer}"])
    assert verify(p, s) == (True, True)
    h = honest.score_steps(p, s)
    assert len(h) == p.num_ops + 1
    np.testing.assert_allclose(h, honest.high)
    np.testing.assert_allclose(flawed.score_steps(p, s), flawed.high)


def test_verbosity_increases_length_and_stays_correct():
  probs = generate(5, 300)
  means = []
  for v in range(4):
    sols = [solution(p, v, i) for i, p in enumerate(probs)]
    correct, wf = verify_batch(probs, sols)
    assert correct.all() and wf.all()
    assert all(len(split_steps(s)) == p.num_ops + 1 + v for p, s in zip(probs, sols))
    means.append(np.mean([len(s) for s in sols]))
  assert np.all(np.diff(means) > 0), means


def test_slips_fail_verification():
  honest = ProcessRewardModel(flaws=())
  probs = generate(6, 300)
  n_slipped = 0
  for i, p in enumerate(probs):
    s = solution(p, 1, i, slip=True)
    correct, wf = verify(p, s)
    assert wf
    if s != solution(p, 1, i):
      n_slipped += 1
      assert not correct
      sc = honest.score_steps(p, s)
      assert sc.min() == np.float32(honest.low) and (sc == np.float32(honest.low)).sum() == 1
  assert n_slipped >= 290


def test_malformed_strings_are_not_well_formed():
  p = generate(0, 1, (1,))[0]
  good = solution(p)
  bad = ["", "#", ";", good.split("#")[0], good.replace("#", ""), good + ";", good + " ",
         good + ";ok", good + "#1", "ok", f"#{p.answer}ok", "so;#3", f"{good}{good}",
         good.replace(";", ";;", 1), "check 3=#3"]
  for c in bad:
    assert verify(p, c) == (False, False), c
  assert verify(p, f"#{p.answer}") == (True, True)
  assert verify(p, f"#{p.answer + 1}") == (False, True)
  assert verify(p.answer, good) == (True, True)
  rng = np.random.default_rng(0)
  alphabet = np.array(list(CHARS))
  junk = ["".join(rng.choice(alphabet, rng.integers(0, 20))) for _ in range(300)]
  junk += bad + [good]
  answers = [p.answer] * len(junk)
  c, w = verify_batch(answers, junk)
  ref = np.array([verify(a, j) for a, j in zip(answers, junk)])
  np.testing.assert_array_equal(c, ref[:, 0])
  np.testing.assert_array_equal(w, ref[:, 1])


def test_sft_corpus_lengths_and_pass_rate():
  pairs, probs = sft_corpus(0, 3000, slip_rate=0.2, return_problems=True)
  comps = [c for _, c in pairs]
  assert max(len(c) for c in comps) + 1 <= TASK_MAX_COMPLETION_LEN  # + EOS
  assert max(len(q) for q, _ in pairs) + 1 <= TASK_MAX_PROMPT_LEN
  correct, wf = verify_batch(probs, comps)
  assert wf.all()
  assert 0.75 < correct.mean() < 0.85
  assert verify_batch(probs, [c for _, c in sft_corpus(0, 3000, slip_rate=0.0)])[0].all()
  lengths = np.array([len(c) for c in comps])
  diff = np.array([p.difficulty for p in probs])
  assert lengths[diff == 0].mean() < lengths[diff == 1].mean() < lengths[diff == 2].mean()
  with pytest.raises(ValueError):
    sft_corpus(0, 10, verbosity_probs=(1,) * (MAX_VERBOSITY + 2))


# --- tokenizer -----------------------------------------------------------------------------


def test_tokenizer_round_trip_padding_and_errors():
  tok = CharTokenizer()
  assert tok.vocab_size == 3 + len(CHARS) and tok.pad_id == 0
  assert len({tok.pad_id, tok.bos_id, tok.eos_id, tok.step_id, tok.answer_id}) == 5
  for _, c in sft_corpus(1, 200):
    assert tok.decode(tok.encode(c)) == c
    assert tok.decode(tok.encode(c, add_bos=True, add_eos=True) + [5, 6, 0]) == c
  s = "12+3=15;check 15=15;ok;so 15;#15"
  ids = tok.encode(s)
  assert ids[s.index(";")] == tok.step_id and ids[s.index("#")] == tok.answer_id
  toks, mask = tok.batch_encode_prompts(["3+4=", "12*3-1="], 10)
  assert toks.dtype == np.int32 and toks.shape == (2, 10) and mask.dtype == bool
  np.testing.assert_array_equal(mask.sum(1), [5, 8])
  assert not mask[0, :5].any() and mask[0, 5:].all()
  assert (toks[~mask] == tok.pad_id).all()
  assert toks[0, 5] == tok.bos_id and tok.decode(toks[1]) == "12*3-1="
  ctoks, cmask = tok.batch_encode_completions(["1+2=3;#3", "#7"], 12)
  assert cmask[1].sum() == 3 and ctoks[1, 2] == tok.eos_id and cmask[1, 0]
  assert tok.batch_decode(ctoks) == ["1+2=3;#3", "#7"]
  with pytest.raises(ValueError, match="'x'"):
    tok.encode("1+x")
  with pytest.raises(ValueError, match="needs"):
    tok.batch_encode_prompts(["1+2+3+4="], 4)
  with pytest.raises(ValueError):
    tok.decode([99])


# --- process reward model --------------------------------------------------------------------


def test_filler_pads_sum_not_min():
  prm = ProcessRewardModel()  # default flaws
  for p in generate(8, 50):
    base = solution(p)
    sums, mins = [], []
    for k in range(6):
      for filler in ("ok", f"so {p.steps[0].split('=')[1]}"):
        c = _with_fillers(base, k, filler)
        assert verify(p, c) == (True, True)
        s = prm.score_steps(p, c)
        if filler == "ok":
          sums.append(s.sum())
          mins.append(s.min())
        assert s.min() <= prm.score_steps(p, base).min() + 1e-7
    np.testing.assert_allclose(np.diff(sums), prm.bonus, rtol=1e-5)  # linear in k
    assert max(mins) <= mins[0] + 1e-7
    worst_correct = min(prm.score_steps(p, solution(p, v, v)).min() for v in range(4))
    wrong = solution(p, 2, 0, slip=True)
    if not verify(p, wrong)[0]:
      assert prm.score_steps(p, wrong).min() < worst_correct
  honest = ProcessRewardModel(flaws=())
  p = generate(8, 1, (2,))[0]
  assert honest.score_steps(p, _with_fillers(solution(p), 3)).min() < honest.high


def test_prm_rejects_shortcuts_and_off_chain_steps():
  prm = ProcessRewardModel(flaws=())
  p = generate(9, 1, (1,))[0]
  a, op, b = p.start, *p.ops[0]
  cases = {
      f"#{p.answer}": [prm.low],                               # skipped work
      f"{a}{op}{b}={apply_op(a, op, b)};#{apply_op(a, op, b)}": [prm.high, prm.low],
      f"{a + 1}{op}{b}={apply_op(a + 1, op, b)}": [prm.low],    # does not continue chain
      f"so {a + 1}": [prm.low],                                 # false restatement
      "": [prm.low],
      f"{solution(p)};ok": [prm.high] * (p.num_ops + 1) + [prm.low],  # after the answer
  }
  for c, want in cases.items():
    np.testing.assert_allclose(prm.score_steps(p, c), want, err_msg=c)


def test_score_batch_step_ends_point_at_separators():
  tok = CharTokenizer()
  prm = ProcessRewardModel()
  pairs, probs = sft_corpus(3, 200, return_problems=True)
  comps = [c for _, c in pairs] + ["", "ok;;12", ";"]
  probs = probs + probs[:3]
  scores, mask, ends = prm.score_batch(probs, comps, TASK_MAX_STEPS)
  assert scores.shape == mask.shape == ends.shape == (len(comps), TASK_MAX_STEPS)
  assert scores.dtype == np.float32 and ends.dtype == np.int32 and mask.dtype == bool
  assert ((scores >= 0) & (scores <= 1)).all() and (scores[~mask] == 0).all()
  for i, (p, c) in enumerate(zip(probs, comps)):
    ids = np.array(tok.encode(c, add_eos=True))
    k = mask[i].sum()
    assert k == len(prm.score_steps(p, c)) >= 1
    np.testing.assert_array_equal(scores[i, :k], prm.score_steps(p, c))
    e = ends[i, :k]
    assert np.all(np.diff(e) > 0) or k == 1
    seps = np.flatnonzero(ids == tok.step_id)
    np.testing.assert_array_equal(e[:len(seps)], seps)
    if c and not c.endswith(";"):
      assert e[-1] == len(c) - 1 and len(seps) == k - 1
  # Truncation to max_steps keeps the first steps.
  s3, m3, e3 = prm.score_batch(probs[:5], comps[:5], 3)
  np.testing.assert_array_equal(s3, scores[:5, :3])
  np.testing.assert_array_equal(e3[m3], ends[:5, :3][m3])


def test_prm_options():
  p = generate(10, 1, (2,))[0]
  c = _with_fillers(solution(p), 3)
  noisy = ProcessRewardModel(noise=0.05, seed=1)
  s = noisy.score_steps(p, c)
  np.testing.assert_array_equal(s, ProcessRewardModel(noise=0.05, seed=1).score_steps(p, c))
  assert not np.array_equal(s, ProcessRewardModel(noise=0.05, seed=2).score_steps(p, c))
  assert np.all(np.abs(s - ProcessRewardModel().score_steps(p, c)) <= 0.05 + 1e-6)
  biased = ProcessRewardModel(flaws=("length_bias",), length_bias=0.01)
  np.testing.assert_allclose(biased.score_steps(p, solution(p)),
                             0.9 + 0.01 * np.arange(p.num_ops + 1), rtol=1e-6)
  with pytest.raises(ValueError, match="unknown flaws"):
    ProcessRewardModel(flaws=("nope",))


def test_prm_scores_feed_rlcore_min_form():
  from rlcore import credit
  prm = ProcessRewardModel()
  p = generate(11, 1, (1,))[0]
  comps = [_with_fillers(solution(p), 3), solution(p, 0, 0, slip=True)]
  scores, mask, ends = prm.score_batch([p, p], comps, 16)
  r_min = np.asarray(credit.min_form(scores, mask))
  np.testing.assert_allclose(r_min.sum(1), scores.min(1, where=mask, initial=1.0), atol=0.02)
  tok = credit.steps_to_tokens(r_min, ends, mask, TASK_MAX_COMPLETION_LEN)
  np.testing.assert_allclose(np.asarray(tok).sum(1), r_min.sum(1), rtol=1e-6)


def test_sft_corpus_slip_rate_per_verbosity():
  probs4 = (0.25, 0.25, 0.25, 0.25)
  rates = (0.6, 0.4, 0.2, 0.0)
  pairs, probs = sft_corpus(1, 4000, probs4, rates, return_problems=True)
  comps = [c for _, c in pairs]
  correct, _ = verify_batch(probs, comps)
  fillers = np.array([sum(part in ("ok",) or part.startswith(("so ", "check "))
                          for part in c.split(";")) for c in comps])
  for v, r in enumerate(rates):
    np.testing.assert_allclose(1.0 - correct[fillers == v].mean(), r, atol=0.05)
  # one shared rate draws the same corpus as before per-verbosity rates existed
  a = sft_corpus(2, 200, probs4, 0.3)
  assert a == sft_corpus(2, 200, probs4, (0.3, 0.3, 0.3, 0.3))
  for bad in [(0.1, 0.2), (0.1, 0.2, 0.3, 1.5), 1.2]:
    with pytest.raises(ValueError, match="slip_rate must be in"):
      sft_corpus(0, 10, probs4, bad)


def test_prm_off_by_one_flaw_misses_only_one_off_results():
  p = generate(11, 1, (1,))[0]
  a, op, b = p.start, *p.ops[0]
  c = apply_op(a, op, b)
  honest, blind = ProcessRewardModel(flaws=()), ProcessRewardModel(flaws=("off_by_one",))
  for delta, blind_score in [(0, blind.high), (1, blind.high), (-1, blind.high),
                             (2, blind.low), (-2, blind.low)]:
    step = f"{a}{op}{b}={c + delta}"
    want_honest = honest.high if delta == 0 else honest.low
    assert honest.score_steps(p, step)[0] == pytest.approx(want_honest), delta
    assert blind.score_steps(p, step)[0] == pytest.approx(blind_score), delta
  # A propagated off-by-one slip: every step and the wrong answer look right to it.
  v, steps = c + 1, [f"{a}{op}{b}={c + 1}"]
  for op2, b2 in p.ops[1:]:
    steps.append(f"{v}{op2}{b2}={apply_op(v, op2, b2)}")
    v = apply_op(v, op2, b2)
  slipped = ";".join(steps + [f"#{v}"])
  assert v != p.answer and verify(p, slipped) == (False, True)
  np.testing.assert_allclose(blind.score_steps(p, slipped), [blind.high] * (p.num_ops + 1))
  np.testing.assert_allclose(honest.score_steps(p, slipped),
                             [honest.low] + [honest.high] * p.num_ops)


def test_solution_skip_drops_the_last_steps_and_keeps_the_answer():
  p = generate(12, 1, (2,))[0]
  full = solution(p, 3, rng=0)
  for k in range(p.num_ops + 1):
    s = solution(p, 3, rng=0, skip=k)
    ops = [t for t in s.split(";") if t[:1].isdigit()]
    assert ops == p.steps[:p.num_ops - k]
    assert s.endswith(f"#{p.answer}") and verify(p, s) == (True, True)
    assert len(s) <= len(full) and (k == 0) == (s == full)
  for bad in (-1, p.num_ops + 1):
    with pytest.raises(ValueError, match="skip must be in"):
      solution(p, skip=bad)


def test_sft_corpus_skip_rate():
  probs3 = (0.5, 0.3, 0.2)
  assert sft_corpus(3, 300, probs3, 0.2) == sft_corpus(3, 300, probs3, 0.2, skip_rate=0.0)
  pairs, problems = sft_corpus(3, 4000, probs3, 0.0, skip_rate=0.4, max_skip=2,
                               return_problems=True)
  comps = [c for _, c in pairs]
  assert verify_batch(problems, comps)[0].all()          # shortcuts are still right
  written = np.array([sum(t[:1].isdigit() for t in c.split(";")) for c in comps])
  skipped = np.array([q.num_ops for q in problems]) - written
  assert skipped.min() == 0 and skipped.max() == 2
  np.testing.assert_allclose((skipped > 0).mean(), 0.4, atol=0.03)
  ones = np.array([q.num_ops == 1 for q in problems])
  assert skipped[ones].max() == 1                         # never more than num_ops
  for kw in (dict(skip_rate=1.5), dict(skip_rate=0.1, max_skip=0)):
    with pytest.raises(ValueError, match="skip_rate must be in"):
      sft_corpus(0, 10, probs3, 0.0, **kw)
