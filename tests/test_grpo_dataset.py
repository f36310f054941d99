"""GRPO on a local Hugging Face checkpoint and a JSONL dataset (`rlcore.agents.grpo.tasks`).

A tiny random Qwen2 and a byte-level BPE tokenizer with a ChatML template, saved by
transformers, and a synthetic GSM8K-style dataset (`rlcore.lm.toy`): the prompts
render and tokenise as transformers does, the verifier and the hooks score what they
should, a trivial reward rises within a few updates, a run resumes bit for bit, and bad
input fails naming the file and the field.
"""

import json
import os
import shutil
import sys

import jax
import numpy as np
import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlcore import experiment  # noqa: E402
from rlcore.agents import grpo  # noqa: E402
from rlcore.lm import toy  # noqa: E402

REWARDS_MODULE = "rlcore_test_dataset_rewards"
REWARDS = '''
def digits(prompts, completions, answers):
  """The fraction of a completion's characters that are digits."""
  return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]

def too_few(prompts, completions, answers):
  return [0.0]

def step_lengths(prompts, steps, answers):
  """Each step scored by its length (capped at 1), to check the plumbing."""
  return [[min(len(s) / 10, 1.0) for s in texts] for texts in steps]

def nan_scores(prompts, completions, answers):
  return [float("nan")] * len(completions)
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  root = tmp_path_factory.mktemp("hf")
  ckpt = toy.write_checkpoint(str(root / "ckpt"))
  data = toy.write_dataset(str(root / "data.jsonl"))
  (root / f"{REWARDS_MODULE}.py").write_text(REWARDS)
  sys.path.insert(0, str(root))
  yield {"root": root, "ckpt": ckpt, "data": data}
  sys.path.remove(str(root))


def _config(files, **overrides):
  c = grpo.default_config()
  c.task, c.model.hf_path, c.dataset.path = "dataset", files["ckpt"], files["data"]
  c.prompts_per_step, c.group_size, c.max_completion_len = 4, 4, 16
  c.eval_problems, c.num_updates = 4, 1000
  return experiment.override(c, overrides)


def test_prompts_render_and_tokenise_as_transformers(files):
  tok = transformers.AutoTokenizer.from_pretrained(files["ckpt"])
  task = grpo.make_agent(_config(files, **{"dataset.system_prompt": "Be brief.",
                                           "dataset.prompt_suffix": " Answer after ####."})).task
  problems = task.train[:3]
  for p in problems:
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": p.question + " Answer after ####."}]
    assert p.prompt == tok.apply_chat_template(messages, tokenize=False,
                                               add_generation_prompt=True)
  ids, mask = task.encode_prompts(problems)
  assert ids.shape == mask.shape == (3, task.prompt_len) and task.prompt_len % 8 == 0
  for row, m, p in zip(ids, mask, problems):
    expected = tok(p.prompt, add_special_tokens=False)["input_ids"]
    assert row[m].tolist() == expected
    assert not m[:task.prompt_len - len(expected)].any()     # left padding
  # Completions decode up to the first EOS, special tokens skipped, as transformers does.
  eos = tok.convert_tokens_to_ids("<|im_end|>")
  body = tok(" 3 plus 4 is 7\n\n#### 7", add_special_tokens=False)["input_ids"]
  row = np.array([body + [eos] + body[:2], body + [0] * 3], np.int32)
  assert task.eos_id == (eos,) and task.pad_id == tok.pad_token_id
  assert task.decode(row) == [tok.decode(body, skip_special_tokens=True)] * 2


def test_split_verifier_and_reward_hook(files):
  task = grpo.make_agent(_config(files, **{"dataset.held_out": 12.0})).task
  assert len(task.held_out) == 12 and len(task.train) == 36
  assert not {p.line for p in task.train} & {p.line for p in task.held_out}
  again = grpo.make_agent(_config(files, **{"dataset.held_out": 12.0})).task
  assert [p.line for p in again.held_out] == [p.line for p in task.held_out]
  p = task.train[0]
  right, wrong = p.answer, str(int(p.answer) + 1)
  texts = [f"so it is\n\n#### {right}", f"#### {wrong}", "no idea", f"the answer is {right}"]
  correct, well_formed = task.verify([p] * 4, texts)
  # "auto" reads a #### answer, else the last number (verl's flexible GSM8K mode).
  assert correct.tolist() == [True, False, False, True]
  assert well_formed.tolist() == [True, True, False, True]
  np.testing.assert_array_equal(task.verifier_scores([p] * 4, texts, correct, well_formed),
                                [1.0, -0.5, -1.0, 1.0])
  hooked = grpo.make_agent(_config(files, **{
      "dataset.reward_fn": f"{REWARDS_MODULE}:digits"})).task
  np.testing.assert_allclose(hooked.verifier_scores([p] * 2, ["a1", "12"], None, None),
                             [0.5, 1.0])


@pytest.mark.slow
def test_a_trivial_reward_rises_within_a_small_budget(files):
  """The user's reward pays digits; 12 updates of 8 x 8 completions (about 10 s)."""
  agent = grpo.make_agent(_config(files, **{
      "dataset.reward_fn": f"{REWARDS_MODULE}:digits", "prompts_per_step": 8,
      "group_size": 8, "lr": 3e-3, "kl_coef": 0.0}))
  _, m = agent.run_chunk(agent.init(jax.random.key(0), seed=0), 12)
  r = m["verifier_reward"]
  assert r[-3:].mean() > 2.0 * r[:3].mean() + 0.05, r.round(3)
  assert np.isfinite(m["loss"]).all() and "format_rate" in m and "length_d0" not in m


# LASER-D over candidate targets 4, 8, 12, 16, monitored every 2 updates on 4 prompts.
LASER_D = dict(chain="laser_d", laser_lower=4, laser_upper=16, laser_interval=4,
               monitor_every=2, monitor_prompts=4)


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_parameters_and_the_export_loads(tmp_path,
                                                                              files):
  """`experiments/main.py` on the dataset config with LASER-D (stateful shaping: its
  monitor pass updates the targets every 2 updates), SIGKILLed after its third
  checkpoint and run again: the same parameters, LASER-D state and metrics as an
  uninterrupted run; then the run's policy exported with --export_hf as a Hugging Face
  checkpoint."""
  import subprocess
  from rlcore import io as rio
  from tests.helpers import kill_after_checkpoint, quick_compile_env
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  main = os.path.join(root, "experiments", "main.py")
  flags = ["--config=configs/grpo_dataset.py", f"--config.model.hf_path={files['ckpt']}",
           f"--config.dataset.path={files['data']}", "--config.num_updates=12",
           "--config.chunk_updates=1", "--config.prompts_per_step=4",
           "--config.group_size=4", "--config.max_completion_len=16",
           "--config.eval_every=4", "--config.eval_problems=4", "--config.lr=1e-3",
           *(f"--config.shaping.{k}={v}" for k, v in LASER_D.items()),
           "--progress=false"]
  env = quick_compile_env(dict(os.environ, JAX_PLATFORMS="cpu",
                               PYTHONPATH=str(files["root"]) + os.pathsep + root))
  run = lambda workdir, *extra: subprocess.run(
      [sys.executable, main, f"--workdir={workdir}", *flags, *extra], env=env, cwd=root,
      capture_output=True, text=True, timeout=300, check=True)
  killed, full = tmp_path / "killed", tmp_path / "full"
  proc = subprocess.Popen([sys.executable, main, f"--workdir={killed}", *flags], env=env,
                          cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  kill_after_checkpoint(proc, killed / "checkpoints", 3)
  assert not (killed / "summary.json").exists(), "the run finished before the kill"
  assert "resuming after update" in run(killed).stdout
  run(full, f"--export_hf={tmp_path / 'hf'}")
  config = experiment.load_config(os.path.join(root, "configs", "grpo_dataset.py"))
  config = experiment.override(config, {
      "model.hf_path": files["ckpt"], "dataset.path": files["data"], "num_updates": 12,
      "chunk_updates": 1, "prompts_per_step": 4, "group_size": 4,
      "max_completion_len": 16, "eval_every": 4, "eval_problems": 4, "lr": 1e-3,
      **{f"shaping.{k}": v for k, v in LASER_D.items()}})
  a, _, meta = experiment.load(config, str(killed))
  b, _, _ = experiment.load(config, str(full))
  assert meta["updates"] == 12 and int(a[0].step) == 12
  # LASER-D ran: its per-difficulty targets are logged (16: the untrained policy is
  # rarely correct, so the longest candidate; -1: a difficulty the data lacks).
  targets = [[v for k, v in r.items() if k.startswith("target_length_")]
             for r in rio.read_jsonl(full / "metrics.jsonl")]
  assert all(16.0 in t for t in targets), targets
  for x, y in zip(jax.tree.leaves((a[0].params, a[0].shaping_state)),
                  jax.tree.leaves((b[0].params, b[0].shaping_state))):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  keep = lambda rs: [{k: v for k, v in r.items()
                      if not k.startswith(("time_", "wall", "steps_per"))} for r in rs]
  ra, rb = (rio.read_jsonl(w / "metrics.jsonl") for w in (killed, full))
  assert [r["update"] for r in ra] == list(range(1, 13)) and keep(ra) == keep(rb)
  _check_export(b[0].params, tmp_path / "hf", files)


def _check_export(params, out, files):
  """The trained policy, exported, reloads bit for bit and in transformers gives our
  logits (which differ from the untrained checkpoint's)."""
  import torch
  from rlcore import lm
  lm_config, loaded = lm.load_hf(str(out))
  for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert (out / "chat_template.jinja").is_file() and (out / "tokenizer.json").is_file()
  tokens = np.random.default_rng(0).integers(0, 280, (2, 12))
  mask = np.ones_like(tokens)
  ours = np.asarray(lm.apply(params, lm_config, tokens, lm.positions_from_mask(mask), mask)[0])
  logits = {}
  for name, folder in (("trained", out), ("source", files["ckpt"])):
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    with torch.no_grad():
      logits[name] = model(input_ids=torch.tensor(tokens)).logits.float().numpy()
  np.testing.assert_allclose(logits["trained"], ours, atol=1e-4, rtol=1e-4)
  assert np.abs(logits["source"] - ours).max() > 1e-3


def test_process_reward_steps_split_at_the_separator(files):
  agent = grpo.make_agent(_config(files, reward="process", **{
      "dataset.step_scorer": f"{REWARDS_MODULE}:step_lengths"}))
  task = agent.task
  tok = transformers.AutoTokenizer.from_pretrained(files["ckpt"])
  ids = tok("3 plus 4\n\nis 7\n\n#### 7", add_special_tokens=False)["input_ids"]
  eos = task.eos_id[0]
  response = np.array([ids + [eos, 0, 0]], np.int32)
  texts = task.decode(response)
  (scores, mask, ends), separators = task.process_scores(
      task.train[:1], texts, response, np.array([len(ids) + 1]))
  pieces = [tok.decode([i]) for i in ids + [eos]]
  expected_ends = [i for i, t in enumerate(pieces[:-1]) if t.endswith("\n\n")] + [len(ids)]
  assert len(expected_ends) == 3
  assert ends[0, mask[0]].tolist() == expected_ends
  assert np.flatnonzero(separators[0]).tolist() == expected_ends[:-1]
  steps = ["3 plus 4\n\n", "is 7\n\n", "#### 7<|im_end|>"]
  np.testing.assert_allclose(scores[0, :3], [min(len(s) / 10, 1.0) for s in steps])
  # One update through the PURE path.
  _, m = agent.run_chunk(agent.init(jax.random.key(0), seed=0), 1)
  assert np.isfinite(m["loss"]).all() and np.isfinite(m["prm_sum"]).all()


def _raises(match, files, **overrides):
  with pytest.raises(ValueError, match=match):
    grpo.make_agent(_config(files, **overrides))


def test_bad_input_names_the_file_and_the_field(files, tmp_path):
  _raises(r"config.task='dataset' needs dataset.path", files, **{"dataset.path": ""})
  _raises(r"config.task is 'arithmetic'.*set config.task='dataset'", files,
          task="arithmetic")
  _raises(r"config.task: 'gsm8k' is not allowed; choose one of arithmetic, dataset", files,
          task="gsm8k")
  _raises(r"dataset.answer_format.*'csv' is not allowed", files,
          **{"dataset.answer_format": "csv"})
  _raises(r"dataset.reward_fn must be 'module:function'", files,
          **{"dataset.reward_fn": "no_colon"})
  _raises(r"reward='process' on a dataset needs config.dataset.step_scorer", files,
          reward="process")
  # A line without the answer field, and an answer that does not parse.
  bad = tmp_path / "bad.jsonl"
  bad.write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n"
                 + json.dumps({"question": "2+2?"}) + "\n")
  _raises(rf"{bad}.*line 2.*'answer'", files, **{"dataset.path": str(bad)})
  bad.write_text(json.dumps({"question": "1+1?", "answer": "two"}) + "\n")
  _raises(rf"{bad}.*line 1.*cannot parse the answer", files, **{"dataset.path": str(bad)})
  # An architecture rlcore does not implement.
  gpt2 = tmp_path / "gpt2"
  shutil.copytree(files["ckpt"], gpt2)
  cfg = json.loads((gpt2 / "config.json").read_text())
  (gpt2 / "config.json").write_text(json.dumps(dict(cfg, model_type="gpt2")))
  _raises(rf"{gpt2 / 'config.json'}.*gpt2", files, **{"model.hf_path": str(gpt2)})
  # A tokenizer without a chat template (unless templates are off).
  plain = tmp_path / "plain"
  shutil.copytree(files["ckpt"], plain)
  os.remove(plain / "chat_template.jinja")
  _raises(r"no chat template.*chat_template.jinja.*'chat_template' of tokenizer_config.json",
          files, **{"model.hf_path": str(plain)})
  task = grpo.make_agent(_config(files, **{"model.hf_path": str(plain),
                                           "dataset.chat_template": False})).task
  assert task.train[0].prompt == task.train[0].question
  os.remove(plain / "tokenizer.json")
  _raises(r"has no tokenizer.json", files, **{"model.hf_path": str(plain)})
  # Hooks that return the wrong number of scores, or non-finite ones.
  for hook, match in (("too_few", r"returned 1 results for 2 completions"),
                      ("nan_scores", r"completion 0 is nan")):
    task = grpo.make_agent(_config(files, **{
        "dataset.reward_fn": f"{REWARDS_MODULE}:{hook}"})).task
    with pytest.raises(ValueError, match=match):
      task.verifier_scores(task.train[:2], ["1", "2"], None, None)


def test_bfloat16_parameters_train_through_a_float32_master_copy(files):
  """bf16 policy, float32 Adam state and master; a step too small for bf16's resolution
  is kept in the master copy (and lost without one)."""
  agent = grpo.make_agent(_config(files, **{"model.param_dtype": "bfloat16", "lr": 1e-6,
                                            "kl_coef": 0.0,
                                            "dataset.reward_fn": f"{REWARDS_MODULE}:digits"}))
  state = agent.init(jax.random.key(0), seed=0)
  master, adam = state.opt_state
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {np.dtype("bfloat16")}
  assert {x.dtype for x in jax.tree.leaves((master, adam)) if x.ndim} == {np.dtype("float32")}
  new, m = agent.run_chunk(state, 1)
  assert np.isfinite(m["loss"]).all()
  assert not agent.lm_config.remat and grpo.make_agent(_config(files, **{
      "model.remat": True})).lm_config.remat      # tests/test_lm.py checks what remat does
  moved_master = moved_params = 0
  for p0, p1, m1, m0 in zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params),
                            jax.tree.leaves(new.opt_state[0]), jax.tree.leaves(master)):
    np.testing.assert_array_equal(np.asarray(p1), np.asarray(m1.astype(p1.dtype)))
    moved_master += int((np.asarray(m1) != np.asarray(m0)).sum())
    moved_params += int((np.asarray(p1) != np.asarray(p0)).sum())
  # Adam's first step is about lr = 1e-6 per weight: below bf16's resolution for weights
  # of size ~0.02 (2^-8 * 0.02 ≈ 8e-5), so the master moves and the policy only where a
  # weight is near 0 (the zero-initialised biases; measured: 1,077 of 27,932).
  assert moved_master > 20_000 and moved_params < moved_master / 10, (moved_master,
                                                                      moved_params)


SHARD_SCRIPT = r"""
import json, sys, jax, numpy as np
sys.path.insert(0, sys.argv[3])
from rlcore import experiment
from rlcore.agents import grpo
out = {"devices": jax.device_count()}
for shard in (False, True):
  c = grpo.default_config()
  c.task, c.model.hf_path, c.dataset.path = "dataset", sys.argv[1], sys.argv[2]
  c.prompts_per_step, c.group_size, c.max_completion_len, c.eval_problems = 4, 4, 16, 4
  c.lr, c.model.shard_params = 1e-3, shard
  c.dataset.reward_fn = "rlcore_test_dataset_rewards:digits"
  agent = grpo.make_agent(c)
  state, m = agent.run_chunk(agent.init(jax.random.key(0), seed=0), 2)
  leaves = jax.tree.leaves((state.params, state.opt_state))
  out[str(shard)] = {
      "loss": m["loss"].tolist(), "reward": m["verifier_reward"].tolist(),
      "params": [np.asarray(x, np.float64).ravel()[:50].tolist()
                 for x in jax.tree.leaves(state.params)],
      "split": sum(len(x.sharding.device_set) == 4 and not x.sharding.is_fully_replicated
                   for x in leaves),
      "arrays": len(leaves)}
print("RESULT", json.dumps(out))
"""


@pytest.mark.slow
def test_parameters_and_optimiser_state_sharded_over_four_devices_train_as_on_one(files):
  """Two updates with `model.shard_params` on 4 simulated CPU devices: the same losses
  and parameters as unsharded, with the arrays split over the devices."""
  import subprocess
  from tests.helpers import quick_compile_env
  env = quick_compile_env(dict(os.environ, JAX_PLATFORMS="cpu",
                               XLA_FLAGS="--xla_force_host_platform_device_count=4"))
  proc = subprocess.run([sys.executable, "-c", SHARD_SCRIPT, files["ckpt"], files["data"],
                         str(files["root"])], env=env, capture_output=True, text=True,
                        timeout=600, cwd=os.path.dirname(os.path.dirname(__file__)))
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads([l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1][7:])
  one, four = out["False"], out["True"]
  assert out["devices"] == 4 and one["split"] == 0
  # Every array is split but Adam's step count (a scalar): each of this model's arrays
  # has an axis divisible by 4.
  assert four["split"] == four["arrays"] - 1, (four["split"], four["arrays"])
  assert one["reward"] == four["reward"]          # the same samples
  np.testing.assert_allclose(four["loss"], one["loss"], rtol=1e-5, atol=1e-6)
  for a, b in zip(one["params"], four["params"]):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_without_reference_diagnostics_the_same_update_skips_two_forward_passes(files):
  """At β = 0, no occupancy penalty and one on-policy step per batch, turning the
  reference diagnostics off skips the old and reference log-probs: the same update (the
  ratio is 1 either way), kl and occupancy_* not measured (NaN), kl no longer checked."""
  runs = {}
  for diagnostics in (True, False):
    agent = grpo.make_agent(_config(files, **{
        "kl_coef": 0.0, "inner_epochs": 1, "num_minibatches": 1, "lr": 1e-3,
        "reference_diagnostics": diagnostics,
        "dataset.reward_fn": f"{REWARDS_MODULE}:digits"}))
    state, m = agent.run_chunk(agent.init(jax.random.key(0), seed=0), 1)
    runs[diagnostics] = (agent, state, m)
  (a_on, s_on, m_on), (a_off, s_off, m_off) = runs[True], runs[False]
  assert "kl" in a_on.finite_metrics and "kl" not in a_off.finite_metrics
  assert np.isfinite(m_on["kl"]).all() and np.isnan(m_off["kl"]).all()
  assert np.isfinite(m_on["occupancy_chi2"]).all() and np.isnan(m_off["occupancy_chi2"]).all()
  np.testing.assert_allclose(m_off["loss"], m_on["loss"], rtol=1e-5, atol=1e-7)
  assert m_on["loss"][0] != 0.0
  # Adam's first step moves each parameter by lr · |g| / (|g| + ε) = up to 1e-3 here; a
  # different update would differ by that much. Where |g| is near ε the two programs'
  # float rounding moves it by about 1e-6 (1.2e-6 seen once), hence atol 1e-5.
  for x, y in zip(jax.tree.leaves(s_on.params), jax.tree.leaves(s_off.params)):
    np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-5)


def test_pref_grpo_judges_the_reward_functions_scores(files):
  """reward = "pointwise_rm" on a dataset: the reward function is the reward model whose
  scores Pref-GRPO's judge compares; the verifier's scores stay the verifier's."""
  _raises(r"reward='pointwise_rm' on a dataset reads .* config.dataset.reward_fn", files,
          reward="pointwise_rm")
  agent = grpo.make_agent(_config(files, reward="pointwise_rm", **{
      "pref.enabled": True, "dataset.reward_fn": f"{REWARDS_MODULE}:digits"}))
  task = agent.task
  p = task.train[:2]
  texts = [f"x{int(p[0].answer) + 1}", f"#### {p[1].answer}"]   # wrong, right
  share = lambda t: sum(ch.isdigit() for ch in t) / len(t)
  np.testing.assert_allclose(task.pointwise_scores(p, texts, None, None),
                             [share(t) for t in texts])
  correct, well_formed = task.verify(p, texts)
  np.testing.assert_array_equal(task.verifier_scores(p, texts, correct, well_formed),
                                [-0.5, 1.0])
  _, m = agent.run_chunk(agent.init(jax.random.key(0), seed=0), 1)
  assert np.isfinite(m["loss"]).all()
