"""Generators: the transformers backend on a tiny Qwen2 saved to disk, and the OpenAI backend against a real HTTP
server on loopback."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from transformers import Qwen2ForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast

from prm.testing import build_tiny_tokenizer, tiny_qwen2_config
from search.config import SearchConfig
from search.dvts import dvts
from search.generators import (
    Completion,
    GeneratorArguments,
    OpenAIGenerator,
    SamplingConfig,
    TransformersGenerator,
    load_generator,
    load_generator_from_args,
    truncate_at_stop,
)
from search.generators.base import GenerationCountError
from search.primitives import FullScorer
from tests.search_doubles import ValueVerifier

STOPS = ["a", "e", "o", "\n"]  # frequent enough that a random tiny model hits them within a few dozen tokens


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    """A random tiny Qwen2 causal LM and the tiny tokenizer, saved together like a hub checkpoint."""
    tok = build_tiny_tokenizer()
    torch.manual_seed(0)
    config = tiny_qwen2_config(
        len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model_dir = tmp_path_factory.mktemp("tiny_lm")
    Qwen2ForCausalLM(config).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    return str(model_dir)


@pytest.fixture(scope="module")
def generator(tiny_lm_dir):
    return load_generator("transformers", tiny_lm_dir, device="cpu", max_batch_size=5)


def _check_stop_semantics(c: Completion, stops: list[str], max_new_tokens: int) -> None:
    earlier = c.text[:-1]
    if c.finish_reason == "stop":
        assert any(c.text.endswith(s) for s in stops), c
        assert not any(s in earlier for s in stops), c  # cut at the first stop string, not a later one
    else:
        assert not any(s in c.text for s in stops), c
    if c.finish_reason == "length":
        assert c.num_generated_tokens == max_new_tokens
    assert 1 <= c.num_generated_tokens <= max_new_tokens


def test_transformers_n_samples_stops_and_reproducible_seeds(generator):
    prompts = ["What is 2+2?\n\n", "Compute 3*5.\n\n", "What is 2+2?\n\n"]
    cfg = SamplingConfig(n=3, temperature=1.0, max_new_tokens=30, stop=STOPS, seed=7)
    out = generator.generate(prompts, cfg)
    assert [len(row) for row in out] == [3, 3, 3]
    reasons = {c.finish_reason for row in out for c in row}
    assert "stop" in reasons
    for prompt, row in zip(prompts, out):
        for c in row:
            _check_stop_semantics(c, STOPS, 30)
            assert c.num_prompt_tokens == len(prompt) + 1  # one token per character, plus BOS

    again = generator.generate(prompts, cfg)
    assert again == out  # same call, same seed: same samples
    # A prompt's samples do not depend on the other prompts of the call (batch composition, order, padding).
    alone = generator.generate(["Compute 3*5.\n\n"], cfg)
    assert [c.text for c in alone[0]] == [c.text for c in out[1]]
    # One sequence at a time (no padding, no dropping of finished rows from the batch) gives the same samples.
    one_by_one = TransformersGenerator(model=generator.model, tokenizer=generator.tokenizer, max_batch_size=1)
    assert one_by_one.generate(prompts, cfg) == out
    # The n samples differ, and so do the two copies of the repeated prompt (independent beams).
    assert len({c.text for c in out[0]}) > 1
    assert [c.text for c in out[0]] != [c.text for c in out[2]]
    other_seed = generator.generate(
        prompts, SamplingConfig(n=3, temperature=1.0, max_new_tokens=30, stop=STOPS, seed=8)
    )
    assert other_seed != out


def test_transformers_length_and_greedy(generator):
    out = generator.generate(["xyz"], SamplingConfig(n=2, temperature=0.0, max_new_tokens=6, stop=None, seed=1))
    # Greedy: both samples identical; without stop strings a random model runs to the token limit or EOS.
    assert out[0][0] == out[0][1]
    for c in out[0]:
        assert c.finish_reason in ("length", "eos")
        if c.finish_reason == "length":
            assert c.num_generated_tokens == 6
    top_p = generator.generate(["xyz"], SamplingConfig(n=4, temperature=1.0, top_p=1e-6, max_new_tokens=6, seed=3))
    assert len({c.text for c in top_p[0]}) == 1  # top_p this small keeps only the most likely token


class ScriptedLM(torch.nn.Module):
    """Emits a fixed token sequence (same for every row), to test stop handling on known text."""

    def __init__(self, token_ids: list[int], vocab_size: int):
        super().__init__()
        self.token_ids, self.vocab_size = token_ids, vocab_size
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=True, cache=None, **kw):
        step = 0 if cache is None else cache
        logits = torch.full((input_ids.shape[0], input_ids.shape[1], self.vocab_size), -1e4)
        logits[:, -1, self.token_ids[min(step, len(self.token_ids) - 1)]] = 1e4
        return CausalLMOutputWithPast(logits=logits, cache=step + 1)


def _scripted(text: str, eos: bool = False) -> TransformersGenerator:
    tok = build_tiny_tokenizer()
    ids = tok(text, add_special_tokens=False)["input_ids"] + ([tok.eos_token_id] if eos else [])
    return TransformersGenerator(model=ScriptedLM(ids, len(tok)), tokenizer=tok, device="cpu")


def test_multichar_stop_is_cut_exactly_where_it_completes():
    gen = _scripted("x\ny\n\nz\n\nw")
    [[c]] = gen.generate(["p\n"], SamplingConfig(n=1, temperature=1.0, max_new_tokens=20, stop=["\n\n"], seed=0))
    # The prompt's trailing newline plus the first generated "\n" does not count: only generated text is searched.
    assert c == Completion("x\ny\n\n", "stop", 3, 5)

    [[c]] = _scripted("ab<extra_0>cd").generate(["q"], SamplingConfig(n=1, max_new_tokens=20, stop=["xt"], seed=0))
    assert c.text == "ab<ext" and c.finish_reason == "stop" and c.num_generated_tokens == 3  # inside one token

    [[c]] = _scripted("done", eos=True).generate(["q"], SamplingConfig(n=1, max_new_tokens=20, stop=["\n\n"], seed=0))
    assert c == Completion("done", "eos", 2, 5)  # EOS is counted but not part of the text

    [[c]] = _scripted("abcdefgh").generate(["q"], SamplingConfig(n=1, max_new_tokens=4, stop=["\n\n"], seed=0))
    assert c == Completion("abcd", "length", 2, 4)


def test_truncate_at_stop_takes_the_earliest_completed_stop():
    assert truncate_at_stop("a\n\nb", ["\n\n", "\n"]) == ("a\n", "\n")
    assert truncate_at_stop("abcabc", ["ca", "bc"]) == ("abc", "bc")
    assert truncate_at_stop("abc", ["x"]) == ("abc", None)
    assert truncate_at_stop("abc", None) == ("abc", None)


def test_chat_template_own_file_and_plain_fallback(tiny_lm_dir, tmp_path):
    model_dir = tok_dir = tiny_lm_dir
    plain = load_generator("transformers", model_dir, device="cpu")
    assert plain.format_prompt("2+2?", "Be brief.") == "Be brief.\n\n2+2?\n\n"
    template = tmp_path / "chat.jinja"
    template.write_text(
        "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    args = GeneratorArguments(
        generator_model_name_or_path=model_dir,
        generator_tokenizer_name_or_path=tok_dir,
        chat_template_path=str(template),
        generator_device="cpu",
    )
    templated = load_generator_from_args(args)
    assert templated.format_prompt("2+2?", "Be brief.") == "[system]Be brief.\n[user]2+2?\n[assistant]"
    # The tokenizer's own template is used when no file is given.
    own = build_tiny_tokenizer()
    own.chat_template = "{% for m in messages %}<{{ m['content'] }}>{% endfor %}"
    own_dir = tmp_path / "own_tok"
    own.save_pretrained(own_dir)
    gen = load_generator("transformers", model_dir, tokenizer_name_or_path=str(own_dir), device="cpu")
    assert gen.format_prompt("2+2?") == "<2+2?>"
    with pytest.raises(FileNotFoundError, match="chat_template_path"):
        load_generator("transformers", model_dir, tokenizer_name_or_path=tok_dir, chat_template_path="/nope.jinja")


def test_generator_arguments_validate_and_unknown_backend():
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        GeneratorArguments(generator_gpu_memory_utilization=1.5)
    with pytest.raises(ValueError, match="Unknown generator backend"):
        load_generator("tgi", "m")  # type: ignore[arg-type]


# ---- OpenAI-compatible server on loopback ------------------------------------------------------------------


class FakeCompletionsServer:
    """A small /v1/completions server. Each choice's text is a function of (prompt, seed, index); stop strings are
    applied like vLLM (cut before the stop string; ``stop_reason`` says which) or, with ``plain=True``, like the
    OpenAI API (no extra fields). Prompts containing "EOS" end without a stop string; ``fail_next`` requests get 503."""

    def __init__(self, plain: bool = False):
        self.requests: list[dict] = []
        self.fail_next = 0
        self.plain = plain
        self.max_choices: int | None = None  # return at most this many choices (a server cutting n short)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with threading.Lock():
                    server.requests.append(body)
                    fail = server.fail_next > 0
                    server.fail_next -= fail
                if self.path != "/v1/completions":
                    self._send(404, {"error": {"message": "not found"}})
                elif fail:
                    self._send(503, {"error": {"message": "overloaded"}})
                else:
                    self._send(200, server.respond(body))

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def respond(self, body: dict) -> dict:
        choices, total = [], 0
        for j in range(min(body.get("n", 1), self.max_choices or body.get("n", 1))):
            full = f"s{body['seed'] % 97}c{j}" + ("" if "EOS" in body["prompt"] else "\n\nnext step")
            text, reason, matched = full, "stop", None
            for s in body.get("stop") or []:
                if s in text:
                    text, matched = text[: text.index(s)], s
            if len(text) > body["max_tokens"]:
                text, reason, matched = text[: body["max_tokens"]], "length", None
            total += len(text) + (len(matched) if matched else 0)
            choice = {"index": j, "text": text, "finish_reason": reason, "logprobs": None}
            if not self.plain:
                choice["stop_reason"] = matched
            choices.append(choice)
        usage = {"prompt_tokens": len(body["prompt"]), "completion_tokens": total, "total_tokens": 0}
        return {
            "id": "c",
            "object": "text_completion",
            "created": 0,
            "model": body["model"],
            "choices": choices,
            "usage": usage,
        }

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_openai_backend_sends_parameters_and_parses_choices():
    with FakeCompletionsServer() as server:
        gen = load_generator("openai", "served-model", base_url=server.url, api_key="k", max_concurrency=4)
        prompts = ["P1", "P2 EOS", "P1", "P3"]
        cfg = SamplingConfig(n=3, temperature=0.7, top_p=0.9, max_new_tokens=50, stop=["\n\n"], seed=11)
        out = gen.generate(prompts, cfg)
        assert len(server.requests) == 4
        sent = {r["prompt"] for r in server.requests}
        assert sent == {"P1", "P2 EOS", "P3"}
        for r in server.requests:
            assert (r["model"], r["n"], r["temperature"], r["top_p"], r["max_tokens"], r["stop"]) == (
                "served-model",
                3,
                0.7,
                0.9,
                50,
                ["\n\n"],
            )
        assert [len(row) for row in out] == [3, 3, 3, 3]
        # vLLM-style stop: the server drops the stop string, the generator restores it.
        assert all(c.text.endswith(f"c{j}\n\n") and c.finish_reason == "stop" for j, c in enumerate(out[0]))
        assert all(c.finish_reason == "eos" and "\n" not in c.text for c in out[1])  # stop_reason None: EOS
        assert out[0][0].text != out[2][0].text  # repeated prompt, different per-request seeds
        assert [c.num_prompt_tokens for c in out[0]] == [2, 2, 2]
        assert sum(c.num_generated_tokens for c in out[0]) == sum(len(c.text) for c in out[0])
        assert gen.completion_tokens == sum(c.num_generated_tokens for row in out for c in row)

        # The same call again gives the same samples (seeds derive from the call's seed and the prompt).
        assert gen.generate(prompts, cfg) == out

        short = gen.generate(["P1"], SamplingConfig(n=1, max_new_tokens=2, stop=["\n\n"], seed=1))
        assert short[0][0].finish_reason == "length" and len(short[0][0].text) == 2


def test_openai_backend_fails_when_the_server_returns_fewer_choices():
    with FakeCompletionsServer() as server:
        server.max_choices = 2
        gen = OpenAIGenerator("m", base_url=server.url, api_key="k")
        with pytest.raises(GenerationCountError, match="returned 2 choices for a request with n=3"):
            gen.generate(["P1", "P2"], SamplingConfig(n=3, max_new_tokens=50, stop=["\n\n"], seed=0))
        # The search's DVTS on this server stops with the same error instead of pairing subtrees with wrong scores.
        gen.format_prompt = lambda problem, system_prompt=None: f"Q: {problem}\nA:"
        config = SearchConfig(method="dvts", n=6, beam_width=3, num_iterations=2, system_prompt=None)
        with pytest.raises(GenerationCountError):
            dvts(["p0", "p1"], gen, FullScorer(ValueVerifier()), config, seed=0)


def test_openai_extra_body_from_arguments_reaches_the_server():
    with FakeCompletionsServer() as server:
        args = GeneratorArguments(
            generator_backend="openai",
            generator_model_name_or_path="m",
            generator_base_url=server.url,
            generator_api_key="k",
            generator_extra_body='{"add_special_tokens": false}',
        )
        load_generator_from_args(args).generate(["P"], SamplingConfig(n=2, max_new_tokens=50, seed=0))
        assert server.requests[0]["add_special_tokens"] is False and server.requests[0]["n"] == 2
    with pytest.raises(ValueError, match="JSON object"):
        GeneratorArguments(generator_extra_body="[1]")


def test_openai_backend_retries_transient_errors_and_plain_servers():
    with FakeCompletionsServer(plain=True) as server:
        gen = OpenAIGenerator("m", base_url=server.url, api_key="k", max_retries=3, retry_backoff_s=0.01)
        server.fail_next = 2
        [[c]] = gen.generate(["P1"], SamplingConfig(n=1, max_new_tokens=50, stop=["\n\n"], seed=5))
        assert len(server.requests) == 3  # two 503s, then success
        # A server without stop_reason: finish "stop" with stop strings requested is taken as a stop-string match.
        assert c.finish_reason == "stop" and c.text.endswith("\n\n")

        server.fail_next = 10
        gen_no_retry = OpenAIGenerator("m", base_url=server.url, api_key="k", max_retries=1, retry_backoff_s=0.01)
        import openai

        with pytest.raises(openai.InternalServerError):
            gen_no_retry.generate(["P1"], SamplingConfig(n=1, max_new_tokens=50, seed=5))


def test_openai_format_prompt_uses_the_tokenizer_or_template(tiny_lm_dir, tmp_path):
    tok_dir = tiny_lm_dir
    gen = OpenAIGenerator("served", base_url="http://127.0.0.1:9/v1", api_key="k", tokenizer_name_or_path=tok_dir)
    assert gen.format_prompt("2+2?") == "2+2?\n\n"
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}<<{{ m['content'] }}>>{% endfor %}")
    gen = OpenAIGenerator(
        "served",
        base_url="http://127.0.0.1:9/v1",
        api_key="k",
        tokenizer_name_or_path=tok_dir,
        chat_template_path=str(template),
    )
    assert gen.format_prompt("2+2?") == "<<2+2?>>"


# A template that prints a date the way Llama 3.2/3.3 templates do: ``date_string`` if defined, else today's date.
DATED_TEMPLATE = (
    "{%- if not date_string is defined %}{%- set date_string = strftime_now('%d %b %Y') %}{%- endif %}"
    "[system]Today Date: {{ date_string }}\n{{ messages[0]['content'] }}\n"
    "{%- for m in messages[1:] %}[{{ m['role'] }}]{{ m['content'] }}\n{%- endfor %}"
    "{%- if add_generation_prompt %}[assistant]{% endif %}"
)


def freeze_clock(monkeypatch, year: int, month: int, day: int) -> None:
    """Make the ``strftime_now`` of chat templates see the given day."""
    import datetime

    import transformers.utils.chat_template_utils as chat_utils

    class Clock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(year, month, day)

    monkeypatch.setattr(chat_utils, "datetime", Clock)


def test_chat_prompts_do_not_depend_on_the_clock(tiny_lm_dir, tmp_path, monkeypatch):
    template = tmp_path / "dated.jinja"
    template.write_text(DATED_TEMPLATE)
    args = GeneratorArguments(
        generator_backend="openai",
        generator_model_name_or_path="served",
        generator_tokenizer_name_or_path=str(tiny_lm_dir),
        generator_base_url="http://127.0.0.1:9/v1",
        chat_template_path=str(template),
    )
    raw, prompts = [], []
    for day in [(2025, 1, 1), (2031, 6, 15)]:
        freeze_clock(monkeypatch, *day)
        gen = load_generator_from_args(args)
        raw.append(
            gen.tokenizer.apply_chat_template(
                [{"role": "user", "content": "2+2?"}], chat_template=DATED_TEMPLATE, tokenize=False
            )
        )
        prompts.append(gen.format_prompt("2+2?", "Be brief."))
        local = TransformersGenerator(str(tiny_lm_dir), device="cpu", chat_template_path=str(template))
        prompts.append(local.format_prompt("2+2?", "Be brief."))
    assert "01 Jan 2025" in raw[0] and "15 Jun 2031" in raw[1]  # the frozen clock reaches templates
    assert len(set(prompts)) == 1 and "Today Date: 26 Jul 2024\nBe brief." in prompts[0]
    pinned = load_generator_from_args(replace(args, date_string="01 Mar 2030")).format_prompt("2+2?")
    assert pinned.startswith("[system]Today Date: 01 Mar 2030")
