"""The demo's engine-bound stages on the transformers and the vLLM backends (CPU), side by side in one run.

For each backend, with the demo's own functions and configs (``arith_demo``, ``recipes/arith/*.yaml``): build the
engines (policy generator, PRM verifier), sample the policy as the demo's data stage does, evaluate the PRM as the
demo does (ProcessBench layout on its held-out split, plus the same-prefix line pairs), and run the demo's search
stage (Best-of-N at N, beam search and DVTS at each tree N, the larger policy's N samples) on the held-out problems.
Prints wall and CPU seconds of each stage and the ratio transformers/vLLM, and checks that the results are sane:
the same problems, the same ProcessBench predictions, and accuracies within sampling noise (sampled text differs
between engines, so exact equality is not expected). Last, the public ProcessBench comparison of
``benchmarks/vllm_verifier.py`` (a DeepSeek-tokenizer PRM built from config) runs in the same process.

    .venv-vllm/bin/python benchmarks/demo_search_backends.py [--prm DIR] [--processbench_limit 100] \\
        [--output figures.json]

``--prm``: a demo PRM (e.g. ``demo_output/seed_0/prm``); without it, the shipped larger policy's weights (where the
demo's PRM starts) with an untrained 2-class head (its scores are not meaningful: the accuracies then compare the
engines, not the PRM). Engines run in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, as in the demo), so CPU
time counts them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("transformers", "vllm")


def untrained_prm(folder: Path, policy: str) -> str:
    """A policy's weights with a fresh 2-class token-classification head (seed 0), as the demo's PRM starts."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from prm.data import save_separator

    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(policy, num_labels=2, use_safetensors=True)
    save_separator(model.config, "\n")
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(policy).save_pretrained(folder)
    return str(folder)


def write_heldout(config, folder: Path) -> None:
    """The demo's held-out split in ProcessBench layout (seed 0), sampled once with transformers for both runs."""
    from arith_demo.demo import SPLIT
    from arith_demo.engines import Engines, policy_arguments
    from arith_demo.labeling import balanced_heldout, processbench_records, sample_labeled_solutions
    from arith_demo.world import DIFFICULTIES, make_problems

    engines = Engines("transformers")
    generator = engines.generator(policy_arguments(config.policy_path, engines))
    heldout = make_problems(500, config.heldout_seed, DIFFICULTIES[config.difficulty])
    samples = sample_labeled_solutions(generator, heldout[300:], 4, config.temperature, seed=1000)
    picked = balanced_heldout(samples, 0, config.num_eval_solutions // 2)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{SPLIT}.json").write_text(json.dumps(processbench_records(picked, SPLIT)))
    engines.close()


class Clock:
    """Wall and CPU seconds of named stages."""

    def __init__(self):
        self.times: dict[str, tuple[float, float]] = {}

    def __call__(self, name, fn, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn(*args, **kwargs)
        self.times[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        print(f"  {name}: {self.times[name][0]:.1f} s wall, {self.times[name][1]:.1f} s CPU", flush=True)
        return result


def run_backend(backend: str, config, prm: str, heldout: Path, out: Path) -> dict:
    """Every engine-bound stage of one demo seed (seed 0) on ``backend``."""
    from arith_demo.demo import StageTimer, evaluate_prm, search_problems_file, search_stages
    from arith_demo.engines import Engines, policy_arguments
    from arith_demo.labeling import sample_labeled_solutions
    from arith_demo.world import DIFFICULTIES, make_problems
    from prm.verifiers import load_verifier

    print(f"== {backend}", flush=True)
    engines = Engines(backend)
    clock = Clock()
    try:
        generator = clock(
            "engines: policy generator", engines.generator, policy_arguments(config.policy_path, engines)
        )
        clock(
            "engines: PRM verifier",
            engines.verifier,
            prm,
            lambda: load_verifier(prm, "token-cls", device="cpu", backend=backend, engine_kwargs=engines.vllm_kwargs),
        )
        problems = make_problems(config.train_problems, 20_000, DIFFICULTIES[config.difficulty])
        samples = clock(
            "sample policy solutions",
            sample_labeled_solutions,
            generator,
            problems,
            config.samples_per_problem,
            config.temperature,
            seed=0,
        )
        (out / "heldout").mkdir(parents=True, exist_ok=True)
        (out / "heldout" / "arith.json").write_text((heldout / "arith.json").read_text())
        evaluation = clock(
            "evaluate PRM (ProcessBench layout, line pairs)", evaluate_prm, config, 0, Path(prm), out, engines
        )
        search_problems_file(config, 0, out)
        timer = StageTimer()
        searched = clock("search stage (all methods)", search_stages, config, 0, Path(prm), out, timer, engines)
    finally:
        engines.close()
    predictions = [json.loads(line)["prediction"] for line in (out / "eval" / "processbench" / "arith.jsonl").open()]
    return {
        "times": {**clock.times, **{f"  {k}": v for k, v in timer.times.items()}},  # the search stage's parts
        "sample_accuracy": sum(s.correct for s in samples) / len(samples),
        "eval": evaluation,
        "predictions": predictions,
        "search": searched["search"],
        "larger_policy": {k: v for k, v in searched.get("larger_policy", {}).items() if k != "per_problem"},
        "problems": [json.loads(line)["index"] for line in (out / "best_of_n" / "results.jsonl").open()],
    }


def accuracies(result: dict, config) -> dict[str, float]:
    """Accuracy (%) of each search run: weighted Best-of-N and majority at N, tree searches at each N."""
    search = result["search"]
    table = {
        f"best_of_n weighted@{config.n}": search["best_of_n"]["weighted"][config.n],
        f"best_of_n maj@{config.n}": search["best_of_n"]["maj"][config.n],
    }
    for method in ("beam_search", "dvts"):
        for n in config.tree_ns:
            table[f"{method} weighted@{n}"] = search[method][n]["weighted"][n]
    if result["larger_policy"]:
        table[f"larger policy maj@{config.n}"] = result["larger_policy"]["majority"]
    return table


def within_noise(a: float, b: float, count: int) -> bool:
    """Two accuracies (%) on ``count`` problems each, differing by at most 3 standard deviations of the difference
    of two independent samples."""
    p = (a + b) / 200
    spread = math.sqrt(2 * max(p * (1 - p), 0.01) / count) * 100
    return abs(a - b) <= 3 * spread


def report(results: dict, config) -> bool:
    """Print the side-by-side table; True if every sanity check passes."""
    t, v = results["transformers"], results["vllm"]
    print(
        f"\n{'stage':<50} {'transformers wall / CPU s':>26} {'vLLM wall / CPU s':>19}   transformers/vLLM wall (CPU)"
    )
    for name in t["times"]:
        (tw, tc), (vw, vc) = t["times"][name], v["times"].get(name, (math.nan, math.nan))
        ratio = f"{tw / vw:>5.2f}x ({tc / max(vc, 1e-9):.2f}x)"
        print(f"{name:<50} {tw:>16.1f} / {tc:>7.1f} {vw:>9.1f} / {vc:>7.1f}   {ratio}")
    ok = t["problems"] == v["problems"]
    print(f"\nsame search problems: {ok} ({len(t['problems'])})")
    agree = sum(a == b for a, b in zip(t["predictions"], v["predictions"]))
    print(
        f"ProcessBench-layout predictions agree: {agree}/{len(t['predictions'])}; F1 {t['eval']['f1']:.1f} vs "
        f"{v['eval']['f1']:.1f}; line pairs {t['eval']['line']['pair_accuracy']:.3f} vs "
        f"{v['eval']['line']['pair_accuracy']:.3f}"
    )
    ok &= agree == len(t["predictions"])
    count = len(t["problems"])
    samples = config.train_problems * config.samples_per_problem
    rows = [("policy samples", 100 * t["sample_accuracy"], 100 * v["sample_accuracy"], samples)]
    rows += [(name, a, accuracies(v, config)[name], count) for name, a in accuracies(t, config).items()]
    print("\naccuracy (%)                       transformers    vLLM   within noise")
    for name, a, b, n in rows:
        sane = within_noise(a, b, n)
        ok &= sane
        print(f"{name:<34} {a:>10.1f} {b:>7.1f}   {sane}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prm", default=None, help="A demo PRM; default: the policy with an untrained head.")
    parser.add_argument("--heldout", default=None, help="A demo held-out folder (arith.json); default: sampled.")
    parser.add_argument("--problems", type=int, default=60, help="Held-out problems searched (the demo's 60).")
    parser.add_argument(
        "--sample_problems", type=int, default=200, help="Problems sampled 4 times each (the demo's 200)."
    )
    parser.add_argument(
        "--processbench_limit", type=int, default=100, help="Solutions per ProcessBench split; 0: all 3,400."
    )
    parser.add_argument("--output", default=None, help="Also write the figures to this JSON file.")
    args = parser.parse_args()

    from arith_demo.demo import DemoConfig

    config = DemoConfig(num_search_problems=args.problems, train_problems=args.sample_problems)
    sizes = ("n", "tree_ns", "num_search_problems", "train_problems", "samples_per_problem", "num_eval_solutions")
    print("demo sizes:", json.dumps({k: v for k, v in asdict(config).items() if k in sizes}))
    with tempfile.TemporaryDirectory(prefix="prmkit-demo-backends-") as tmp:
        tmp = Path(tmp)
        prm = args.prm or untrained_prm(tmp / "prm", config.large_policy_path)
        print(f"PRM: {prm}" + ("" if args.prm else " (the larger policy's weights, untrained head)"), flush=True)
        heldout = Path(args.heldout) if args.heldout else tmp / "heldout"
        if not args.heldout:
            write_heldout(config, heldout)
        results = {b: run_backend(b, config, prm, heldout, tmp / b) for b in BACKENDS}
    sane = report(results, config)

    import vllm_verifier  # noqa: E402  (this script's own folder is on sys.path)

    limit = args.processbench_limit or None
    print(f"\n== ProcessBench with both verifier backends ({limit or 'all'} per split): benchmarks/vllm_verifier.py")
    processbench = vllm_verifier.compare_backends(str(vllm_verifier.default_data_dir()), limit)
    if args.output:
        figures = {b: {k: v for k, v in r.items() if k != "predictions"} for b, r in results.items()}
        Path(args.output).write_text(
            json.dumps({"demo": figures, "processbench": processbench}, indent=2, default=str)
        )
    if not sane:
        raise SystemExit("The backends' results differ beyond sampling noise (see above)")


if __name__ == "__main__":
    # In-process engines, as in the demo (recipes/demo.py): CPU time counts them, and they start in seconds.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
