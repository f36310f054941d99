"""rlcore.lm.chat_template: templates of local tokenizer folders render exactly as
transformers' `apply_chat_template` renders them; missing or broken templates are
clear errors naming the folder, file and field."""

import json

import pytest

from rlcore.lm import chat_template as ct

# A Qwen2-style template (written for this test): system default, tools as JSON,
# loop variables, namespace, whitespace control, bos/eos variables, raise_exception.
QWEN_LIKE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n<tools>' }}{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}"
    "{%- endfor %}{{- '\\n</tools><|im_end|>\\n' }}"
    "{%- else %}{%- if messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}{%- endif %}\n"
    "{%- set ns = namespace(turns=0) %}\n"
    "{%- for message in messages %}\n"
    "  {%- if message.role not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role ' + message.role) }}{%- endif %}\n"
    "  {%- if message.role == 'system' and loop.first %}{% continue %}{% endif %}\n"
    "  {%- set ns.turns = ns.turns + 1 %}\n"
    "  {{- '<|im_start|>' + message.role + '\\n' + message.content | trim + '<|im_end|>' }}\n"
    "  {%- if not loop.last %}\n{% endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n<|im_start|>assistant\n{% endif %}")
LLAMA_LIKE = (      # indented block tags: trim_blocks and lstrip_blocks matter here
    "{{ bos_token }}{% for m in messages %}\n"
    "    {% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "{{ raise_exception('roles must alternate user/assistant') }}\n"
    "    {% endif %}\n"
    "[{{ m['role'] | upper }}] {{ m['content'] }}{% if m['role'] == 'assistant' %}"
    "{{ eos_token }}{% endif %}\n"
    "{% endfor %}\n"
    "    {% if add_generation_prompt %}[ASSISTANT] {% endif %}")

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 3?"}],
    [{"role": "system", "content": "Answer with #### and a number."},
     {"role": "user", "content": "  12 × 3?  "},
     {"role": "assistant", "content": "12 × 3 = 36\n#### 36"},
     {"role": "user", "content": "And \"quoted\" <html> é?"}],
]


def _tokenizer(tmp_path, template, *, legacy=False):
  """A BPE tokenizer trained here, saved by transformers with `template`."""
  tokenizers = pytest.importorskip("tokenizers")
  transformers = pytest.importorskip("transformers")
  tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="<unk>"))
  tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
  tok.train_from_iterator(["what is 2 + 3", "answer 12 times 3"] * 4,
                          tokenizers.trainers.BpeTrainer(
                              vocab_size=60, special_tokens=["<s>", "</s>", "<unk>"]))
  fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>",
                                              eos_token="</s>", unk_token="<unk>")
  fast.chat_template = template
  folder = tmp_path / "tok"
  fast.save_pretrained(str(folder))
  if legacy:   # the older layout: the template inside tokenizer_config.json
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
  return transformers.AutoTokenizer.from_pretrained(str(folder)), str(folder)


@pytest.mark.parametrize("template", [QWEN_LIKE, LLAMA_LIKE], ids=["qwen_like", "llama_like"])
@pytest.mark.parametrize("legacy", [False, True], ids=["jinja_file", "config_field"])
def test_renders_as_transformers(tmp_path, template, legacy):
  hf, folder = _tokenizer(tmp_path, template, legacy=legacy)
  ours = ct.load_chat_template(folder)
  assert ours.source == template
  assert ours.special_tokens["bos_token"] == "<s>" and ours.special_tokens["eos_token"] == "</s>"
  tools = [{"name": "calc", "description": "évalue <expr>", "parameters": {"x": 1}}]
  for messages in CONVERSATIONS:
    if template is LLAMA_LIKE and messages[0]["role"] == "system":
      messages = messages[1:]
    for gen in (True, False):
      for extra in ({}, {"tools": tools}):
        want = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen,
                                      **extra)
        got = ct.render(ours, messages, add_generation_prompt=gen, **extra)
        assert got == want, (gen, extra)
  if template is QWEN_LIKE:
    assert "<|im_start|>assistant\n" in ct.render(ours, CONVERSATIONS[0])


def test_named_templates_and_the_list_form(tmp_path):
  folder = tmp_path / "m"
  (folder / "additional_chat_templates").mkdir(parents=True)
  (folder / "chat_template.jinja").write_text("A{{ messages[0].content }}")
  (folder / "additional_chat_templates" / "tool_use.jinja").write_text("B")
  assert ct.render(ct.load_chat_template(str(folder)), [{"role": "user",
                                                          "content": "x"}]) == "Ax"
  assert ct.load_chat_template(str(folder), "tool_use").source == "B"
  other = tmp_path / "n"
  other.mkdir()
  (other / "tokenizer_config.json").write_text(json.dumps({
      "eos_token": {"content": "<e>", "special": True},
      "chat_template": [{"name": "default", "template": "D{{ eos_token }}"},
                        {"name": "rag", "template": "R"}]}))
  t = ct.load_chat_template(str(other))
  assert ct.render(t, []) == "D<e>" and ct.load_chat_template(str(other), "rag").source == "R"


def test_errors_name_the_folder_file_and_field(tmp_path):
  with pytest.raises(ValueError, match="no tokenizer folder"):
    ct.load_chat_template(str(tmp_path / "absent"))
  (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
  with pytest.raises(ValueError, match=r"no chat template 'default': looked in "
                     r"chat_template.jinja, additional_chat_templates/default.jinja and in "
                     r"the field 'chat_template' of tokenizer_config.json"):
    ct.load_chat_template(str(tmp_path))
  (tmp_path / "tokenizer_config.json").write_text("{broken")
  with pytest.raises(ValueError, match="tokenizer_config.json: not valid JSON"):
    ct.load_chat_template(str(tmp_path))
  (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{% if %}"}))
  with pytest.raises(ValueError, match=r"field 'chat_template'\): not a valid jinja2"):
    ct.render(ct.load_chat_template(str(tmp_path)), [])
  with pytest.raises(ValueError, match="rendering failed: unknown role tool"):
    ct.render(QWEN_LIKE, [{"role": "tool", "content": "1"}])
  with pytest.raises(ValueError, match="generation"):
    ct.render("{% generation %}x{% endgeneration %}", [])


def test_the_sandbox_refuses_python_internals():
  with pytest.raises(ValueError, match="rendering failed"):
    ct.render("{{ messages.__class__.__mro__[1].__subclasses__() }}", [])
