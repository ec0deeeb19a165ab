"""Verifier cost of beam search with and without prefix (KV-cache) reuse, side by side.

    OMP_NUM_THREADS=2 python benchmarks/search_cost.py [--problems 4] [--iterations 12] [--n 8] [--beam_width 2] \
        [--repeats 2] [--threads 2]

Both runs search the same real MATH-500 problems with the same seeded generator, so they see exactly the same
beams; only the verifier path differs: full re-scoring of every beam's whole prefix each iteration
(``TokenClassificationVerifier.score``) against incremental scoring of the new step only
(``PrefixCachedScorer``). Models are tiny (built from config, fp32, CPU). The generator writes short steps
(``--step_tokens``) and never emits EOS (its EOS logit is pushed to -inf), so a random tiny model does not end
solutions early: each keeps one step per iteration, up to ``--iterations`` steps. Prints the steps per final
solution, verifier tokens processed, the wall time spent scoring (generation is identical in both runs and left
out; each path runs ``--repeats`` times and the fastest counts, since the CPU may be shared), the ratios, and checks
that both runs kept identical beams and scores (to 1e-4).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

from prm.testing import build_tiny_tokenizer, tiny_qwen2_config
from prm.verifiers.prefix_cache import PrefixCachedScorer
from prm.verifiers.token_cls import TokenClassificationVerifier
from search.beam_search import beam_search
from search.config import DatasetArguments, SearchConfig
from search.generators.transformers_backend import TransformersGenerator
from search.primitives import FullScorer
from search.runner import load_problems

DATA = Path(__file__).resolve().parents[1] / "data" / "math500" / "test.jsonl"  # all of MATH-500, shipped


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--beam_width", type=int, default=2)
    parser.add_argument("--step_tokens", type=int, default=12)
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="runs per path; the fastest verifier time counts")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--data", default=str(DATA))
    return parser.parse_args()


def timed_beam_search(name: str, problems, generator, prm, tokenizer, config: SearchConfig):
    """One beam search with the named scorer: (verifier tokens, verifier wall seconds, results)."""
    verifier = TokenClassificationVerifier(prm, tokenizer, step_separator="\n")
    scorer = FullScorer(verifier) if name == "full re-scoring" else PrefixCachedScorer.from_verifier(verifier)
    timer = [0.0]
    score = scorer.score

    def timed(requests):
        start = time.perf_counter()
        out = score(requests)
        timer[0] += time.perf_counter() - start
        return out

    scorer.score = timed
    results = beam_search(problems, generator, scorer, config, seed=0)
    return scorer.tokens_processed, timer[0], results


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    lm = AutoModelForCausalLM.from_config(tiny_qwen2_config(len(tokenizer), hidden_size=64, num_layers=2)).eval()
    suppress_eos(lm, tokenizer.eos_token_id)
    prm_config = tiny_qwen2_config(len(tokenizer), hidden_size=args.hidden_size, num_layers=args.layers, num_labels=2)
    prm = AutoModelForTokenClassification.from_config(prm_config).eval()
    generator = TransformersGenerator(model=lm, tokenizer=tokenizer, device="cpu")
    problems = [p.problem for p in load_problems(DatasetArguments(dataset_name=args.data, dataset_end=args.problems))]
    config = SearchConfig(
        method="beam_search",
        n=args.n,
        beam_width=args.beam_width,
        num_iterations=args.iterations,
        max_step_tokens=args.step_tokens,
        max_tokens=args.step_tokens * args.iterations,
        system_prompt=None,
        agg_strategy="min",
    )
    runs = {}
    for name in [n for _ in range(args.repeats) for n in ("full re-scoring", "prefix reuse")]:
        run = timed_beam_search(name, problems, generator, prm, tokenizer, config)
        if name not in runs or run[1] < runs[name][1]:
            runs[name] = run
    report(args, problems, runs)


def report(args, problems, runs: dict) -> None:
    (full_tokens, full_time, full_res), (reuse_tokens, reuse_time, reuse_res) = runs.values()
    steps = [len(b.steps) for r in full_res for b in r.beams]
    same_beams = all([a.text for a in x.beams] == [b.text for b in y.beams] for x, y in zip(full_res, reuse_res))
    pairs = [(a, b) for x, y in zip(full_res, reuse_res) for a, b in zip(x.beams, y.beams)]
    max_diff = max((abs(s - t) for a, b in pairs for s, t in zip(a.scores, b.scores)), default=0.0)
    print(
        f"beam search: {len(problems)} MATH-500 problems, N={args.n}, M={args.beam_width}, {args.iterations} iterations, "
        f"{torch.get_num_threads()} CPU threads"
    )
    long = sum(s >= 10 for s in steps) / len(steps)
    print(
        f"final solutions: {min(steps)}-{max(steps)} steps (mean {sum(steps) / len(steps):.1f}, "
        f"{long:.0%} with 10+ steps)"
    )
    print(f"{'':18}{'verifier tokens':>16}{'verifier wall s':>16}  (best of {args.repeats})")
    for name, (tokens, seconds, _) in runs.items():
        print(f"{name:18}{tokens:>16}{seconds:>16.2f}")
    print(
        f"ratio reuse/full: tokens {reuse_tokens / full_tokens:.3f}, verifier wall time {reuse_time / full_time:.3f}"
    )
    print(f"identical beams: {same_beams}; max score difference {max_diff:.2e}")


def suppress_eos(lm, eos_token_id: int) -> None:
    """Give the tiny LM's output layer a bias of -inf on EOS, so it never ends a solution early."""
    head = lm.get_output_embeddings()
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        biased.bias[eos_token_id] = float("-inf")
    lm.set_output_embeddings(biased)


if __name__ == "__main__":
    main()
