"""The arithmetic world's policy: a character-level tokenizer and a tiny Qwen2 causal LM trained from scratch.

The tokenizer is built with the ``tokenizers`` library and saved as a normal Hugging Face tokenizer directory,
with a chat template that renders a problem as ``<bos>{problem}\\n`` so any generator that calls
``apply_chat_template`` produces the same prompt the policy was trained on. Digits are single tokens, which is
what lets a model this small learn carries at all.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass, field
from pathlib import Path

import torch

from prm.data import split_steps

from .world import DIFFICULTIES, SEPARATOR, ArithProblem, extract_answer, make_problems

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]
WORD_TOKENS = ["Start with", "Add", "Subtract", "Multiply by", "\\boxed"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)


def build_tokenizer():
    """Character-level fast tokenizer: every printable ASCII character is one token, plus the problem's words.

    Characters are stored in their byte-level form (space as ``Ġ``, newline as ``Ċ``) with a byte-level decoder:
    transformers 5 reloads a tokenizer saved next to a Qwen2 ``config.json`` as ``Qwen2Tokenizer`` (byte-level
    pre-tokenization), and this layout gives the same ids through that class as through the plain one.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_char = bytes_to_unicode()
    chars = [byte_char[ord(c)] for c in string.printable if c not in "\r\x0b\x0c"]
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + chars)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex("."), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    # The problem's words are single tokens: shorter prompts, and digits stay one token each.
    tok.add_tokens([AddedToken(word, normalized=False) for word in WORD_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def prompt_text(problem: str) -> str:
    """What follows ``<bos>``: the problem on its own line (the chat template renders the same)."""
    return problem + SEPARATOR


@dataclass
class PolicyTrainingConfig:
    """Training settings of the policy recipe (``recipes/arith/policy.yaml``)."""

    difficulty: str = field(default="medium", metadata={"help": f"One of {sorted(DIFFICULTIES)}."})
    hidden_size: int = field(default=64, metadata={"help": "Width of the Qwen2 model."})
    num_attention_heads: int = field(
        default=2,
        metadata={
            "help": "Attention heads, as many key/value heads (head_dim = hidden_size / heads; vLLM's CPU attention "
            "kernels need head_dim >= 32)."
        },
    )
    num_layers: int = field(default=4, metadata={"help": "Number of transformer layers."})
    num_problems: int = field(default=40_000, metadata={"help": "Synthetic gold solutions to train on."})
    num_epochs: float = field(default=1.0, metadata={"help": "Passes over the synthetic solutions."})
    batch_size: int = field(default=64, metadata={"help": "Sequences per optimizer step."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak learning rate (cosine decay, warmup 3%%)."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many steps (-1: use num_epochs)."})
    seed: int = field(default=0, metadata={"help": "Seed of the problems, the initialization and the data order."})
    heldout_seed: int = field(default=10_000, metadata={"help": "Seed of the held-out problems kept out of training."})
    num_heldout: int = field(default=500, metadata={"help": "How many held-out problems are excluded."})
    init_from: str | None = field(
        default=None,
        metadata={"help": "Continue training this saved policy (a second curriculum stage) instead of a new one."},
    )

    def __post_init__(self):
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {self.difficulty!r}")
        if self.num_attention_heads < 1 or self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads ({self.num_attention_heads})"
            )


def build_policy_model(
    vocab_size: int, hidden_size: int, num_layers: int, tokenizer, seed: int, num_attention_heads: int = 2
):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_attention_heads,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return Qwen2ForCausalLM(config)


def sft_examples(problems: list[ArithProblem], tokenizer) -> list[dict[str, list[int]]]:
    """``<bos> problem \\n steps <eos>`` with the loss on the solution only."""
    prompts = tokenizer([prompt_text(p.text) for p in problems], add_special_tokens=False)["input_ids"]
    answers = tokenizer([SEPARATOR.join(p.gold_steps()) for p in problems], add_special_tokens=False)["input_ids"]
    out = []
    for prompt_ids, answer_ids in zip(prompts, answers):
        ids = [tokenizer.bos_token_id, *prompt_ids, *answer_ids, tokenizer.eos_token_id]
        labels = [-100] * (1 + len(prompt_ids)) + answer_ids + [tokenizer.eos_token_id]
        out.append({"input_ids": ids, "labels": labels})
    return out


def heldout_problems(config: PolicyTrainingConfig) -> list[ArithProblem]:
    return make_problems(config.num_heldout, config.heldout_seed, DIFFICULTIES[config.difficulty])


def train_policy(config: PolicyTrainingConfig, output_dir: str | Path, report_to: str = "none"):
    """Train the policy with the plain ``transformers.Trainer`` and save model + tokenizer to ``output_dir``."""
    import datasets
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    tokenizer = build_tokenizer()
    difficulty = DIFFICULTIES[config.difficulty]
    exclude = {p.text for p in heldout_problems(config)}
    problems = make_problems(config.num_problems, config.seed, difficulty, exclude=exclude)
    train = datasets.Dataset.from_list(sft_examples(problems, tokenizer))
    if config.init_from:
        model, _ = load_policy(config.init_from)
        model.train()
    else:
        model = build_policy_model(
            len(tokenizer), config.hidden_size, config.num_layers, tokenizer, config.seed, config.num_attention_heads
        )
    logger.info("policy: %.2fM parameters, %d training solutions", model.num_parameters() / 1e6, len(train))
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.batch_size,
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.03,
        weight_decay=0.01,
        adam_beta2=0.98,
        max_grad_norm=1.0,
        logging_steps=50,
        save_strategy="no",
        report_to=report_to,
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
    trainer.train()
    save_policy(model, tokenizer, output_dir)
    return model, tokenizer


def save_policy(model, tokenizer, output_dir: str | Path) -> None:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)


def load_policy(path: str | Path, device: str = "cpu"):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True).to(device).eval()
    return model, tokenizer


@torch.no_grad()
def sample_solutions(
    model,
    tokenizer,
    problems: list[str],
    n: int = 1,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 512,
    max_new_tokens: int = 80,
) -> list[list[str]]:
    """``n`` full solutions per problem (text after the prompt, up to EOS), sampled in left-padded batches."""
    torch.manual_seed(seed)
    flat = [p for p in problems for _ in range(n)]
    texts: list[str] = []
    tokenizer.padding_side = "left"
    for start in range(0, len(flat), batch_size):
        chunk = [tokenizer.bos_token + prompt_text(p) for p in flat[start : start + batch_size]]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        out = model.generate(
            **enc,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        texts.extend(tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True))
    return [texts[i * n : (i + 1) * n] for i in range(len(problems))]


@dataclass
class PolicyAccuracy:
    """Accuracy figures of a policy on held-out problems (one sample or ``n`` samples per problem)."""

    single: float
    step_accuracy: float
    majority: float
    pass_at_n: float
    n: int


def evaluate_policy(
    model, tokenizer, problems: list[ArithProblem], n: int = 8, temperature: float = 1.0, seed: int = 0
):
    """Single-sample accuracy, step accuracy, majority vote and pass@n over ``n`` samples per problem."""
    from collections import Counter

    from .world import step_validity

    samples = sample_solutions(model, tokenizer, [p.text for p in problems], n=n, temperature=temperature, seed=seed)
    single = correct_steps = total_steps = maj = passed = 0
    for problem, sols in zip(problems, samples):
        oks = [extract_answer(s) == problem.answer for s in sols]
        single += sum(oks) / n
        passed += any(oks)
        answers = [a for a in (extract_answer(s) for s in sols) if a is not None]
        maj += bool(answers) and Counter(answers).most_common(1)[0][0] == problem.answer
        for s in sols:
            validity = step_validity(problem, split_steps(s, SEPARATOR))
            correct_steps += sum(validity)
            total_steps += len(validity)
    count = len(problems)
    return PolicyAccuracy(
        single=single / count,
        step_accuracy=correct_steps / max(total_steps, 1),
        majority=maj / count,
        pass_at_n=passed / count,
        n=n,
    ), samples
