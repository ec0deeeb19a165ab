"""Public PRMs' real tokenizers, from PyPI packages, through our verifiers.

Math-Shepherd (peiyi9979/math-shepherd-mistral-7b-prm) uses Mistral-7B v0.1's sentencepiece tokenizer, which
mistral-common ships as ``mistral_common/data/tokenizer.model.v1``. A tiny Math-Shepherd-format checkpoint (a
``MistralForCausalLM`` built from config, with that tokenizer) is scored by our step-tag verifier, and its input
ids, score positions and candidate ids are checked against the model card's reference usage:

    candidate_tokens = tokenizer.encode(f"{good_token} {bad_token}")[1:]  # [648, 387]
    step_tag_id = tokenizer.encode(f"{step_tag}")[-1]  # 12902
    input_id = tokenizer.encode(f"{question} {output}")  # steps joined as "step ки\\n"
    scores = model(input_id).logits[:, :, candidate_tokens].softmax(-1)[:, :, 0][input_id == step_tag_id]

mistral-common pins numpy<2.4, so it is not in the dev extra (it would downgrade the main venv's numpy); vLLM
depends on it, so these tests run in the vLLM venv (``make test-vllm``) and are skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil

import pytest
import torch

mistral_common = pytest.importorskip("mistral_common")
pytest.importorskip("sentencepiece")

from transformers import AutoModelForCausalLM, LlamaTokenizer, MistralConfig  # noqa: E402

from prm.verifiers import StepTagVerifier, load_verifier  # noqa: E402

pytestmark = pytest.mark.vllm

QUESTION = (
    "Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
    "How much in dollars does she make every day at the farmers' market?"
)
STEPS = [
    "Step 1: Janet's ducks lay 16 eggs per day.",
    "Step 2: She eats 3 for breakfast and bakes 4 into muffins, 3 + 4 = <<3+4=7>>7 eggs.",
    "Step 3: She sells 16 - 7 = <<16-7=9>>9 eggs a day.",
    "Step 4: She makes 9 * $2 = $<<9*2=18>>18 every day. The answer is: 18",
]


@pytest.fixture(scope="module")
def mistral_tokenizer_dir(tmp_path_factory):
    """Mistral-7B v0.1's tokenizer as its hub checkpoint configures it (BOS added, no EOS)."""
    source = os.path.join(os.path.dirname(mistral_common.__file__), "data", "tokenizer.model.v1")
    folder = tmp_path_factory.mktemp("mistral_v01_tokenizer")
    shutil.copy(source, folder / "tokenizer.model")
    tokenizer = LlamaTokenizer.from_pretrained(folder, add_bos_token=True, add_eos_token=False)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def math_shepherd_dir(tmp_path_factory, mistral_tokenizer_dir):
    """A tiny checkpoint in Math-Shepherd's format; the name marks it as such for verifier_type auto."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(mistral_tokenizer_dir)
    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
    )
    folder = tmp_path_factory.mktemp("ckpt") / "math-shepherd-mistral-tiny-prm"
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_the_tokenizer_is_mistral_v01(mistral_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(mistral_tokenizer_dir)
    assert len(tokenizer) == 32000 and tokenizer.bos_token_id == 1
    # The ids the model card writes next to its reference code.
    assert tokenizer.encode("+ -")[1:] == [648, 387]
    assert tokenizer.encode("ки")[-1] == 12902


def test_step_tag_verifier_reads_the_model_card_inputs(math_shepherd_dir):
    verifier = load_verifier(math_shepherd_dir, device="cpu", dtype=torch.float32)
    assert isinstance(verifier, StepTagVerifier)
    tokenizer, model = verifier.tokenizer, verifier.model
    assert (verifier.good_id, verifier.bad_id) == (648, 387)

    # The card's reference usage, verbatim in substance.
    candidate_tokens = tokenizer.encode("+ -")[1:]
    step_tag_id = tokenizer.encode("ки")[-1]
    output = "\n".join(f"{step} ки" for step in STEPS)
    input_id = torch.tensor([tokenizer.encode(f"{QUESTION} {output}")])
    with torch.no_grad():
        logits = model(input_id).logits[:, :, candidate_tokens]
    reference = logits.softmax(dim=-1)[:, :, 0][input_id == step_tag_id].tolist()

    [encoded] = verifier.encode([QUESTION], [STEPS])
    assert encoded.input_ids == input_id[0].tolist()
    assert encoded.positions == (input_id[0] == step_tag_id).nonzero().flatten().tolist()
    assert len(encoded.positions) == len(STEPS)
    [scores] = verifier.score([QUESTION], [STEPS])
    assert scores == pytest.approx(reference, abs=1e-5)


def test_vllm_backend_on_the_real_tokenizer(math_shepherd_dir):
    pytest.importorskip("vllm")
    reference = load_verifier(math_shepherd_dir, device="cpu", dtype=torch.float32)
    served = load_verifier(math_shepherd_dir, backend="vllm", engine_kwargs={"kv_cache_memory_bytes": 256 * 2**20})
    problems = [QUESTION, "What is 1+1?"]
    solutions = [STEPS, ["Step 1: 1 + 1 = 2. The answer is: 2"]]
    for e, g in zip(reference.score(problems, solutions), served.score(problems, solutions)):
        assert g == pytest.approx(e, abs=1e-4)
    del served.llm
