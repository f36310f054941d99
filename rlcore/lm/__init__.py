"""rlcore.lm: a causal LM in the Llama/Qwen2 layout, its log-probabilities, a KV-cache
sampler and the import of Hugging Face checkpoints, for LLM policies (GRPO and friends).

    import jax, jax.numpy as jnp
    from rlcore import lm

    config = lm.LMConfig.tiny(vocab_size=64)
    params = lm.init_params(config, jax.random.key(0))
    out = lm.sample(params, config, prompts, prompt_mask, jax.random.key(1),
                    max_new_tokens=64, temperature=1.0, eos_id=1, pad_id=0)
    mask = jnp.concatenate([prompt_mask, out.response_mask], axis=1)
    logp = lm.token_logprobs(params, config, out.tokens, mask, start=prompts.shape[1])

Conventions: prompts are LEFT-padded [B, P] with a mask; token quantities are [B, L]
with a float mask; logprobs are float32 whatever the parameters' dtype. Not imported by
`import rlcore` (it needs flax); `load_tokenizer` needs the `tokenizers` package.
`lm.save_hf(folder, config, params, source=checkpoint)` writes trained parameters back as
a checkpoint folder that transformers loads. A checkpoint's chat template:
`lm.load_chat_template(folder)` and `lm.render_chat(template, messages)` (jinja2,
rendered as transformers renders it). `lm.sharding` splits parameters and optimiser
state over devices; `rlcore.lm.toy` writes a toy checkpoint (needs torch).
"""

from rlcore.lm import sharding
from rlcore.lm.chat_template import ChatTemplate, load_chat_template
from rlcore.lm.chat_template import render as render_chat
from rlcore.lm.hf import (
    config_from_hf, load_config, load_eos_ids, load_hf, load_tokenizer, read_safetensors,
    save_hf)
from rlcore.lm.logprobs import (
    entropy_from_logits, logprobs_from_logits, token_entropy, token_logprobs)
from rlcore.lm.model import (
    CausalLM, KVCache, LMConfig, apply, count_params, init_cache, init_params,
    positions_from_mask, rotary_tables)
from rlcore.lm.sampling import (
    SampleOutput, draw_categorical, sample, sample_without_cache, top_p_filter)

__all__ = [
    "CausalLM", "ChatTemplate", "KVCache", "LMConfig", "SampleOutput", "apply",
    "config_from_hf", "count_params", "draw_categorical", "entropy_from_logits",
    "init_cache", "init_params", "load_config", "load_eos_ids", "load_chat_template",
    "load_hf", "load_tokenizer", "logprobs_from_logits", "positions_from_mask",
    "read_safetensors", "render_chat", "rotary_tables", "sample", "sample_without_cache",
    "save_hf", "sharding", "token_entropy", "token_logprobs", "top_p_filter",
]
