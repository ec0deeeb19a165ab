"""Where the demo's models run (transformers or vLLM), and each model's engine built once per demo.

The demo samples the policy, evaluates each seed's PRM and runs six searches per seed with the same three models
(policy, larger policy, PRM). One engine pair per search run, as ``recipes/run_search.py`` builds, would start 12
engines per seed: about 55 s each as spawned vLLM engine processes on a busy 2-core machine (11 minutes per seed,
more than the seed's whole search stage), 2-17 s each in process. So :class:`Engines` builds each generator and
verifier on first use and hands the same object to every later stage.

In-process vLLM engines share process-wide parallel state: an engine closed while another one still runs tears
that state down under it (``AssertionError: pipeline model parallel group is not initialized``). So engines are
only closed all together, at the end (:meth:`Engines.close`).
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from prm.step_likelihood import read_step_likelihood_weight

if TYPE_CHECKING:
    from prm.verifiers import Verifier
    from search.generators import Generator, GeneratorArguments

logger = logging.getLogger(__name__)

DemoBackend = Literal["auto", "transformers", "vllm"]
EngineBackend = Literal["transformers", "vllm"]

# The demo's models are tiny (KV cache of 2-4 KiB per token) and up to five engines live at once: a fixed 512 MiB
# KV cache each instead of the CPU default (10% of host memory per engine).
VLLM_ENGINE_KWARGS = {"kv_cache_memory_bytes": 512 * 2**20}


def vllm_available() -> bool:
    """Whether ``import vllm`` works (the venv of ``make env-vllm``, or the ``vllm`` extra)."""
    try:
        import vllm  # noqa: F401
    except Exception as error:  # a broken install (e.g. torchvision built for another torch) is not an engine
        if not isinstance(error, ImportError):
            logger.warning("vLLM is installed but does not import (%s): using transformers", error)
        return False
    return True


def resolve_backend(backend: DemoBackend) -> EngineBackend:
    """``auto``: vLLM where it imports, else transformers."""
    if backend == "auto":
        return "vllm" if vllm_available() else "transformers"
    if backend not in ("transformers", "vllm"):
        raise ValueError(f"backend must be auto, transformers or vllm, got {backend!r}")
    return backend


class Engines:
    """The demo's generators and verifiers, built on first use and reused by every later stage."""

    def __init__(self, backend: EngineBackend):
        self.backend = backend
        self._built: dict[tuple[str, str], object] = {}

    @property
    def vllm_kwargs(self) -> dict | None:
        """Engine arguments of the demo's vLLM engines (None with transformers)."""
        return dict(VLLM_ENGINE_KWARGS) if self.backend == "vllm" else None

    def generator(self, args: GeneratorArguments) -> Generator:
        """The generator of ``args``' model, built from ``args`` the first time it is asked for."""
        from search.generators import load_generator_from_args

        if args.generator_backend != self.backend:
            raise ValueError(f"generator_backend {args.generator_backend!r} differs from the demo's {self.backend!r}")
        return self._get("generator", str(args.generator_model_name_or_path), lambda: load_generator_from_args(args))

    def verifier(self, path: str, build: Callable[[], Verifier]) -> Verifier:
        """The verifier of the PRM at ``path``; ``build`` makes it the first time (with the settings of the
        stage that first needs it)."""
        return self._get("verifier", str(path), build)

    def _get(self, kind: str, path: str, build: Callable[[], object]):
        key = (kind, path)
        if key not in self._built:
            logger.info("Building the %s of %s", kind, path)
            self._built[key] = build()
        return self._built[key]

    def close(self) -> None:
        """Drop every engine at once (see the module docstring for why not one by one)."""
        self._built.clear()
        gc.collect()


def policy_arguments(policy_path: str, engines: Engines) -> GeneratorArguments:
    """Generator settings of a policy, as the search configs (``recipes/arith/*.yaml``) give them."""
    from search.generators import GeneratorArguments

    return GeneratorArguments(
        generator_backend=engines.backend,
        generator_model_name_or_path=policy_path,
        generator_device="cpu",
        generator_max_batch_size=1024,
        generator_vllm_kwargs=engines.vllm_kwargs,
    )


def verifier_backend(engines: Engines, prm_path) -> EngineBackend:
    """The demo's engine, except for a PRM that adds its step likelihood (``step_likelihood_weight``): vLLM's
    token-classification pooling returns the classifier's logits only, so such a PRM is scored with transformers."""
    if engines.backend == "vllm" and read_step_likelihood_weight(prm_path) is not None:
        return "transformers"
    return engines.backend


def backend_overrides(engines: Engines, prm_path, generator: bool) -> dict[str, Any]:
    """Command-line style overrides that put a recipe's PRM (and generator) on the demo's engines."""
    overrides: dict[str, Any] = {"verifier_backend": verifier_backend(engines, prm_path)}
    if engines.vllm_kwargs and overrides["verifier_backend"] == "vllm":
        overrides["verifier_vllm_kwargs"] = json.dumps(engines.vllm_kwargs)
    if generator:
        overrides["generator_backend"] = engines.backend
        if engines.vllm_kwargs:
            overrides["generator_vllm_kwargs"] = json.dumps(engines.vllm_kwargs)
    return overrides
