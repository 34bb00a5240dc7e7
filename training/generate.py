"""Batched greedy generation from chat prompts: left padding, stop at the end of the assistant's turn."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

# End-of-turn markers of common chat templates (Gemma, ChatML/SmolLM2, Llama 3).
END_OF_TURN_TOKENS = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>")


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The end-of-sequence id plus every end-of-turn marker the vocabulary knows."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in END_OF_TURN_TOKENS if token in vocab)
    return sorted(ids)


def generate(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[list[dict[str, str]]],
    *,
    batch_size: int = 16,
    max_new_tokens: int = 128,
) -> list[str]:
    """Answer each conversation (a list of chat messages ending with the user's turn); order is preserved.

    Prompts are sorted by length before batching so that each batch carries little padding.
    """
    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    prompts = [
        tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        for messages in conversations
    ]
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i], reverse=True)
    answers: list[str] = [""] * len(prompts)
    stops = stop_token_ids(tokenizer)
    device = next(model.parameters()).device
    model.eval()
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batch = tokenizer(
            [prompts[i] for i in index], return_tensors="pt", padding=True, add_special_tokens=False
        )
        batch = batch.to(device)
        with torch.inference_mode():
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=stops,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        for row, i in enumerate(index):
            answers[i] = tokenizer.decode(new_tokens[row], skip_special_tokens=True).strip()
        log.info("generated %d/%d", min(start + batch_size, len(order)), len(order))
    return answers
