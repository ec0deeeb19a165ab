"""The vLLM verifier backend (``verifier_backend: vllm``) against the transformers verifiers, on tiny checkpoints of
every PRM shape: the same step scores (fp32, within 1e-4) and the same ProcessBench predictions.

Runs in the vLLM venv (``make env-vllm``); skipped where vLLM is not installed.
"""

from __future__ import annotations

import gc

import pytest
import torch

pytest.importorskip("vllm")

from eval.processbench import SPLITS, load_processbench_split, predict_first_error  # noqa: E402
from prm.verifiers import load_verifier  # noqa: E402
from tests import vllm_models  # noqa: E402

pytestmark = pytest.mark.vllm

PROBLEMS = ["What is 2+3?", "Compute 7*6 and add 1.", "x=4; x^2?", "Long one"]
SOLUTIONS = [
    ["2+3=5", "The answer is 5."],
    ["7*6=42", "42+1=43", "So 43.", "Done"],
    ["x^2=16"],
    [f"step {i}: " + "a" * 40 for i in range(12)],
]
# Small KV caches: several engines live in one test process.
ENGINE = {"kv_cache_memory_bytes": 256 * 2**20}


def _both(path: str, verifier_type: str, **kwargs):
    reference = load_verifier(path, verifier_type, device="cpu", dtype=torch.float32, **kwargs)
    served = load_verifier(path, verifier_type, backend="vllm", engine_kwargs=ENGINE, **kwargs)
    return reference, served


def _assert_same_scores(reference, served, problems=PROBLEMS, solutions=SOLUTIONS) -> None:
    before = reference.tokens_processed, served.tokens_processed
    expected = reference.score_with_info(problems, solutions)
    got = served.score_with_info(problems, solutions)
    for e, g in zip(expected, got):
        assert len(g.scores) == len(e.scores) and g.num_steps == e.num_steps
        assert g.scores == pytest.approx(e.scores, abs=1e-4)
        assert g.margins == pytest.approx(e.margins, abs=1e-4)
    # The same tokens went through both models.
    assert served.tokens_processed - before[1] == reference.tokens_processed - before[0] > 0


def _release(*verifiers) -> None:
    for v in verifiers:
        if hasattr(v, "llm"):
            del v.llm
    gc.collect()


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_token_classification_prm(tmp_path, kind):
    path = vllm_models.save_token_cls(tmp_path / "prm", kind)
    reference, served = _both(path, "auto")
    assert served.step_separator == "\n\n" == reference.step_separator  # read from the saved config
    _assert_same_scores(reference, served)
    _release(served)


def test_token_classification_context_overflow(tmp_path):
    path = vllm_models.save_token_cls(tmp_path / "prm")
    reference, served = _both(path, "token-cls", max_length=200)
    info = served.score_with_info(PROBLEMS, SOLUTIONS)
    assert info[3].truncated and 0 < len(info[3].scores) < 12
    _assert_same_scores(reference, served)
    _release(served)


def test_qwen_prm_layout_step_pooling(tmp_path):
    path = vllm_models.save_qwen_prm(tmp_path / "qwen_prm")
    reference, served = _both(path, "auto")
    assert served.style == "qwen-prm"
    _assert_same_scores(reference, served)
    _release(served)


def test_step_tag_prm(tmp_path):
    path = vllm_models.save_causal_lm(tmp_path / "math-shepherd-tiny", "mistral")
    reference, served = _both(path, "auto")  # the name settles the style, as for the published checkpoint
    assert served.style == "step-tag"
    _assert_same_scores(reference, served)
    _release(served)


def test_chat_plus_minus_prm(tmp_path):
    path = vllm_models.save_chat_lm(tmp_path / "chat_prm")
    reference, served = _both(path, "chat-plus-minus")
    _assert_same_scores(reference, served)
    _release(served)


def test_unservable_prm_gets_a_clear_error(tmp_path):
    path = vllm_models.save_qwen_prm(tmp_path / "qwen_prm")
    config = tmp_path / "qwen_prm" / "config.json"
    config.write_text(config.read_text().replace("Qwen2ForProcessRewardModel", "NoSuchPRMModel"))
    with pytest.raises(RuntimeError, match="use verifier_backend transformers"):
        load_verifier(path, "qwen-prm", backend="vllm", engine_kwargs=ENGINE)


def test_processbench_predictions_agree_on_every_split(tmp_path, real_data, deepseek_tokenizer):
    """A slice of each split in CI; benchmarks/vllm_verifier.py runs all 3,400 solutions."""
    path = vllm_models.save_token_cls(tmp_path / "prm", "llama", separator="\n", tokenizer=deepseek_tokenizer)
    reference, served = _both(path, "token-cls")
    for split in SPLITS:
        rows = load_processbench_split(split, data_dir=str(real_data / "processbench"), limit=25)
        problems, steps = [r["problem"] for r in rows], [r["steps"] for r in rows]
        expected = reference.score_with_info(problems, steps)
        got = served.score_with_info(problems, steps)
        for e, g in zip(expected, got):
            assert g.scores == pytest.approx(e.scores, abs=1e-4)
            for threshold in (None, 0.5):
                assert predict_first_error(g.margins, g.scores, threshold) == predict_first_error(
                    e.margins, e.scores, threshold
                )
    _release(served)
