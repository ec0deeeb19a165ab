"""Generation with a transformers causal LM (CPU or GPU): batched, left padded, exact stop strings, seeded.

Sampling is done by our own decode loop rather than ``model.generate`` so that every sample draws from its own
``torch.Generator`` (see :func:`search.generators.stopping.sample_seeds`): results do not depend on which other
prompts share a batch (up to floating-point differences of padded batches) and the same call always returns the same
text.
"""

from __future__ import annotations

import logging

import torch
from tqdm.auto import tqdm

from prm.data.tokenizer import DEFAULT_DATE_STRING
from prm.verifiers.models import cache_argument

from .base import Completion, Generator, SamplingConfig
from .chat import encode_prompt, format_chat_prompt, read_chat_template
from .stopping import sample_seeds, truncate_at_stop

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero the tail of each row outside the smallest set whose mass reaches ``top_p`` (the top token is kept)."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)
    return torch.zeros_like(probs).scatter(-1, order, sorted_probs)


class TransformersGenerator(Generator):
    """``generate`` expands every prompt ``n`` times and decodes up to ``max_batch_size`` sequences together.

    Finish reasons: ``stop`` when a stop string appears in the generated text (the text ends right after it, the
    stop string kept), ``eos`` when the model emits an end-of-sequence token (not part of the text), ``length`` at
    ``max_new_tokens``. ``num_generated_tokens`` counts every sampled token, including an EOS token and the rest of a
    token that carried a stop string. A prompt is encoded without special tokens, then the tokenizer's BOS token is
    prepended unless the text already starts with it (the behaviour of vLLM and ``vllm serve``).
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        model=None,
        tokenizer=None,
        tokenizer_name_or_path: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        chat_template_path: str | None = None,
        date_string: str = DEFAULT_DATE_STRING,
        max_batch_size: int = 32,
        show_progress: bool = False,
    ):
        from transformers import AutoModelForCausalLM

        from prm.data import load_tokenizer

        if model is None and model_name_or_path is None:
            raise ValueError("TransformersGenerator needs model_name_or_path or a model")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if tokenizer is None:
            tokenizer = load_tokenizer(
                tokenizer_name_or_path or model_name_or_path, trust_remote_code=trust_remote_code
            )
        if model is None:
            if dtype == "auto":
                torch_dtype = "auto" if self.device.type == "cuda" else torch.float32
            elif dtype in _DTYPES:
                torch_dtype = _DTYPES[dtype]
            else:
                raise ValueError(f"dtype must be one of auto, {', '.join(_DTYPES)}; got {dtype!r}")
            model = AutoModelForCausalLM.from_pretrained(
                model_name_or_path, dtype=torch_dtype, trust_remote_code=trust_remote_code, use_safetensors=True
            )
        self.model = model.to(self.device).eval()
        self._cache_arg = cache_argument(self.model)
        self.tokenizer = tokenizer
        self.chat_template = read_chat_template(chat_template_path) if chat_template_path else None
        self.date_string = date_string
        self.max_batch_size = max_batch_size
        self.show_progress = show_progress
        eos = getattr(model.generation_config, "eos_token_id", None) if hasattr(model, "generation_config") else None
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self.eos_token_ids = sorted(eos_ids)
        # Padding is masked out, so any id works when the tokenizer has neither a pad nor an EOS token.
        fallback_pad = self.eos_token_ids[0] if self.eos_token_ids else 0
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else fallback_pad

    def format_prompt(self, problem: str, system_prompt: str | None = None) -> str:
        return format_chat_prompt(self.tokenizer, problem, system_prompt, self.chat_template, self.date_string)

    def encode_prompt(self, prompt: str) -> list[int]:
        return encode_prompt(self.tokenizer, prompt)

    def generate(self, prompts: list[str], config: SamplingConfig) -> list[list[Completion]]:
        if config.n < 1:
            raise ValueError(f"SamplingConfig.n must be >= 1, got {config.n}")
        seeds = sample_seeds(prompts, config.n, config.seed)
        encoded = [self.encode_prompt(p) for p in prompts]
        # (prompt index, sample index), longest prompts first so batches hold similar lengths.
        jobs = [(i, j) for i in range(len(prompts)) for j in range(config.n)]
        jobs.sort(key=lambda ij: -len(encoded[ij[0]]))
        results: list[list[Completion | None]] = [[None] * config.n for _ in prompts]
        batches = [jobs[k : k + self.max_batch_size] for k in range(0, len(jobs), self.max_batch_size)]
        for batch in tqdm(batches, desc="generate", disable=not self.show_progress):
            outs = self._decode_batch([encoded[i] for i, _ in batch], [seeds[i][j] for i, j in batch], config)
            for (i, j), out in zip(batch, outs):
                results[i][j] = out
        return results  # type: ignore[return-value]

    @torch.no_grad()
    def _decode_batch(self, prompt_ids: list[list[int]], seeds: list[int], config: SamplingConfig) -> list[Completion]:
        """Decode one left-padded batch with a KV cache until every row hits EOS, a stop string or the limit."""
        input_ids, attention = self._left_pad(prompt_ids)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        gens = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]
        stops = [s for s in (config.stop or []) if s]
        generated: list[list[int]] = [[] for _ in prompt_ids]
        reasons: list[str | None] = [None] * len(prompt_ids)
        active = list(range(len(prompt_ids)))  # original row of each row of the running batch
        past = None
        step_ids, step_pos = input_ids, positions
        for _ in range(config.max_new_tokens):
            out = self.model(
                input_ids=step_ids,
                attention_mask=attention,
                position_ids=step_pos,
                use_cache=True,
                **{self._cache_arg: past},
            )
            past = out[self._cache_arg]
            next_ids = _sample_next(out.logits[:, -1, :].float(), config, [gens[r] for r in active])
            self._record_tokens(next_ids, active, generated, reasons, stops)
            running = [k for k, r in enumerate(active) if reasons[r] is None]
            if not running:
                break
            attention = torch.cat(
                [attention, torch.ones((len(active), 1), dtype=attention.dtype, device=self.device)], -1
            )
            step_ids, step_pos = next_ids[:, None], step_pos[:, -1:] + 1
            if 2 * len(running) <= len(active) and hasattr(past, "batch_select_indices"):
                # Once half the rows are done, drop them from the batch and the KV cache.
                keep = torch.tensor(running, device=self.device)
                past.batch_select_indices(keep)
                attention, step_ids, step_pos = attention[keep], step_ids[keep], step_pos[keep]
                active = [active[k] for k in running]
            else:
                # Finished rows not yet dropped decode padding; their tokens are ignored.
                done = torch.tensor([reasons[r] is not None for r in active], device=self.device)
                step_ids = step_ids.masked_fill(done[:, None], self.pad_token_id)
        return [
            self._completion(ids, reason, len(prompt), stops)
            for ids, reason, prompt in zip(generated, reasons, prompt_ids)
        ]

    def _left_pad(self, prompt_ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Input ids and attention mask of the prompts, padded on the left to the longest one."""
        bsz, width = len(prompt_ids), max(len(p) for p in prompt_ids)
        input_ids = torch.full((bsz, width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((bsz, width), dtype=torch.long)
        for r, ids in enumerate(prompt_ids):
            input_ids[r, width - len(ids) :] = torch.tensor(ids)
            attention[r, width - len(ids) :] = 1
        return input_ids.to(self.device), attention.to(self.device)

    def _record_tokens(
        self,
        next_ids: torch.Tensor,
        active: list[int],
        generated: list[list[int]],
        reasons: list[str | None],
        stops: list[str],
    ) -> None:
        """Append each running row's new token and mark the rows that just ended (EOS or a stop string)."""
        is_eos = torch.isin(next_ids, torch.tensor(self.eos_token_ids, device=self.device)).tolist()
        # Enough trailing tokens to contain any stop string (a token decodes to >= 1 char, except partial bytes).
        window = max((len(s) for s in stops), default=0) + 8
        for k, (r, token) in enumerate(zip(active, next_ids.tolist())):
            if reasons[r] is not None:
                continue
            generated[r].append(token)
            if is_eos[k]:
                reasons[r] = "eos"
            elif stops:
                tail = self.tokenizer.decode(generated[r][-window:], skip_special_tokens=True)
                if any(s in tail for s in stops):
                    reasons[r] = "stop"

    def _completion(self, generated: list[int], reason: str | None, num_prompt_tokens: int, stops: list[str]):
        """The text (cut right after the first stop string, EOS token left out) and why it ended."""
        ids = generated[:-1] if reason == "eos" else generated
        text, matched = truncate_at_stop(self.tokenizer.decode(ids, skip_special_tokens=True), stops)
        return Completion(
            text=text,
            finish_reason="stop" if matched is not None else (reason if reason == "eos" else "length"),
            num_prompt_tokens=num_prompt_tokens,
            num_generated_tokens=len(generated),
        )


def _sample_next(logits: torch.Tensor, config: SamplingConfig, generators: list[torch.Generator]) -> torch.Tensor:
    """The next token of each row: greedy at temperature 0, else sampled with the row's own generator."""
    if config.temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / config.temperature, dim=-1)
    if config.top_p < 1.0:
        probs = _top_p_filter(probs, config.top_p)
    return torch.stack([torch.multinomial(probs[k], 1, generator=g)[0] for k, g in enumerate(generators)])
