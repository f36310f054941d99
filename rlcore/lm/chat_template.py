"""Chat templates of Hugging Face tokenizer folders, rendered with jinja2 as transformers
renders them, without transformers.

A local tokenizer folder carries its template either in `chat_template.jinja` (the
current layout; named extra templates in `additional_chat_templates/<name>.jinja`) or
in `tokenizer_config.json`'s `chat_template` field (a string, or a list of
`{"name", "template"}`); a `.jinja` file takes priority, as in transformers.
`render` evaluates it in a sandboxed jinja2 environment with the settings transformers
uses for chat templates: `trim_blocks` and `lstrip_blocks`, the `loopcontrols`
extension, a `tojson` filter that does not escape HTML (`ensure_ascii=False`, with
`indent`, `separators`, `sort_keys`), and the globals `raise_exception(message)` and
`strftime_now(format)`; the tokenizer's special tokens (`bos_token`, `eos_token`,
`pad_token`, `unk_token`, their `content` when stored as dicts) are template variables.
The `{% generation %}` tag (assistant-mask tracking) is not supported: a template that
uses it is refused with an error that says so.

    template = load_chat_template("path/to/checkpoint")
    text = render(template, [{"role": "user", "content": "2+2?"}])
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, NamedTuple, Optional, Sequence

SPECIAL_TOKENS = ("bos_token", "eos_token", "pad_token", "unk_token")


class ChatTemplate(NamedTuple):
  """A template's source, where it was read from, and the tokenizer's special tokens."""
  source: str
  path: str
  special_tokens: dict


def _token_text(value) -> Optional[str]:
  if isinstance(value, dict):
    value = value.get("content")
  return value if isinstance(value, str) else None


def load_chat_template(folder: str, name: str = "default") -> ChatTemplate:
  """The chat template `name` of the tokenizer in `folder`.

  Args:
    folder: a local Hugging Face checkpoint or tokenizer folder.
    name: "default", or the name of an extra template.

  Raises:
    ValueError: naming the folder and the files and field looked in, when there is no
      such template, or when `tokenizer_config.json` is not valid JSON.
  """
  if not os.path.isdir(folder):
    raise ValueError(f"load_chat_template: no tokenizer folder {folder!r}.")
  config_path = os.path.join(folder, "tokenizer_config.json")
  config: dict = {}
  if os.path.isfile(config_path):
    try:
      with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{config_path}: not valid JSON ({e.msg}, line {e.lineno}).") from None
  special = {k: t for k in SPECIAL_TOKENS if (t := _token_text(config.get(k))) is not None}
  files = ([os.path.join(folder, "chat_template.jinja")] if name == "default" else []) + [
      os.path.join(folder, "additional_chat_templates", f"{name}.jinja")]
  for path in files:
    if os.path.isfile(path):
      with open(path, encoding="utf-8") as f:
        return ChatTemplate(f.read(), path, special)
  field = config.get("chat_template")
  if isinstance(field, str) and name == "default":
    return ChatTemplate(field, f"{config_path} (field 'chat_template')", special)
  if isinstance(field, list):
    for entry in field:
      if isinstance(entry, dict) and entry.get("name") == name and isinstance(
          entry.get("template"), str):
        return ChatTemplate(entry["template"],
                            f"{config_path} (field 'chat_template', name {name!r})", special)
  looked = ", ".join(os.path.relpath(p, folder) for p in files)
  raise ValueError(f"load_chat_template: {folder!r} has no chat template {name!r}: looked "
                   f"in {looked} and in the field 'chat_template' of tokenizer_config.json"
                   f"{'' if os.path.isfile(config_path) else ' (no such file)'}.")


def _environment():
  import jinja2
  from jinja2.sandbox import ImmutableSandboxedEnvironment

  def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

  def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)

  env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                      extensions=["jinja2.ext.loopcontrols"])
  env.filters["tojson"] = tojson
  env.globals["raise_exception"] = raise_exception
  env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
  return env


def render(template: ChatTemplate | str, messages: Sequence[dict], *,
           add_generation_prompt: bool = True, **variables: Any) -> str:
  """The conversation `messages` as the model's prompt text.

  Args:
    template: a `ChatTemplate` (its special tokens become variables) or a template
      string.
    messages: [{"role": ..., "content": ...}, ...].
    add_generation_prompt: end with the header of an assistant turn.
    **variables: further template variables (e.g. `tools`, `enable_thinking`); they
      override the special tokens.

  Raises:
    ValueError: for a template that does not parse, uses `{% generation %}`, or calls
      `raise_exception` (with the template's message).
  """
  import jinja2
  source, where, special = ((template.source, template.path, template.special_tokens)
                            if isinstance(template, ChatTemplate) else
                            (template, "the chat template", {}))
  if "{% generation" in source or "{%- generation" in source:
    raise ValueError(f"{where}: the {{% generation %}} tag (assistant masks) is not "
                     "supported by rlcore.lm.chat_template.")
  try:
    compiled = _environment().from_string(source)
  except jinja2.exceptions.TemplateSyntaxError as e:
    raise ValueError(f"{where}: not a valid jinja2 template ({e.message}, line "
                     f"{e.lineno}).") from None
  context = dict(special, messages=list(messages),
                 add_generation_prompt=bool(add_generation_prompt), **variables)
  try:
    return compiled.render(**context)
  except jinja2.exceptions.TemplateError as e:
    raise ValueError(f"{where}: rendering failed: {e}") from None
