"""Build a chat model from a provider string: one factory, LangChain's own model classes.

`openai:<model>`, `openai-compatible:<model>` (with a base URL: Ollama, vLLM, llama.cpp
server), `anthropic:<model>`, `google:<model>`, `mistral:<model>` (optional extras),
`local` (the embedded llama.cpp model) and `fake` (a scripted model for tests and demos).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel


class ProviderError(ValueError):
    """The provider string or its settings cannot give a model; the message says why."""


@dataclass(frozen=True)
class ModelOptions:
    temperature: float = 0.2
    base_url: str | None = None
    api_key: str | None = None
    timeout: float = 120.0
    fake_script: Path | None = None
    local_model_path: Path | None = None
    local_n_ctx: int = 4096
    local_n_threads: int | None = None
    # The local model's decoding: any of max_tokens, repeat_penalty, dry_multiplier, stop
    # (agents/local_model.py); unset fields keep the model's defaults.
    local_decoding: dict[str, Any] | None = None
    # The local model routes tools by sentence embeddings: the composition root passes the
    # embedder memory uses, so one copy of MiniLM serves both and a message is embedded
    # once per turn (its cache), not once for routing and again for recall.
    embeddings: Any = None


def _openai(model: str, opts: ModelOptions) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    kwargs: dict[str, Any] = {"model": model or "gpt-4o-mini", "temperature": opts.temperature,
                              "timeout": opts.timeout, "stream_usage": True}
    if opts.api_key:
        kwargs["api_key"] = opts.api_key
    if opts.base_url:
        kwargs["base_url"] = opts.base_url
    return ChatOpenAI(**kwargs)


def _openai_compatible(model: str, opts: ModelOptions) -> BaseChatModel:
    if not opts.base_url:
        raise ProviderError(
            "the openai-compatible provider needs PARLEY_LLM_BASE_URL, e.g. "
            "http://127.0.0.1:11434/v1 for Ollama or http://127.0.0.1:8080/v1 for llama.cpp"
        )
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=model or "default", base_url=opts.base_url,
                      api_key=opts.api_key or "not-needed",  # type: ignore[arg-type]
                      temperature=opts.temperature, timeout=opts.timeout)


def _extra(module: str, cls: str, extra: str, model_kw: str = "model") -> Callable[
        [str, ModelOptions], BaseChatModel]:
    def build(model: str, opts: ModelOptions) -> BaseChatModel:
        try:
            chat_cls = getattr(importlib.import_module(module), cls)
        except ImportError as exc:
            raise ProviderError(
                f"this provider needs the optional extra: pip install 'parley[{extra}]'"
            ) from exc
        if not model:
            raise ProviderError(f"name a model, e.g. '{extra}:<model-name>'")
        kwargs: dict[str, Any] = {model_kw: model, "temperature": opts.temperature}
        if opts.api_key:
            kwargs["api_key"] = opts.api_key
        return chat_cls(**kwargs)  # type: ignore[no-any-return]

    return build


def _fake(_model: str, opts: ModelOptions) -> BaseChatModel:
    from agents.fake import ScriptedChatModel, echo, load_script

    # Without a script the fake model echoes, so a demo server still answers.
    script = load_script(opts.fake_script) if opts.fake_script else [echo]
    return ScriptedChatModel(script=script, cycle=True, record=False)


def _local(_model: str, opts: ModelOptions) -> BaseChatModel:
    try:
        from agents.local_model import make_local_chat_model  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ProviderError(
            "the local model is not installed: run `make install` (it installs xllamacpp)"
            ", or set PARLEY_LLM to another provider, e.g. PARLEY_LLM=openai:gpt-4o-mini with "
            "OPENAI_API_KEY, or PARLEY_LLM=openai-compatible:<model> with PARLEY_LLM_BASE_URL"
        ) from exc
    from memory.embeddings import LocalEmbeddings

    return make_local_chat_model(
        model_path=str(opts.local_model_path) if opts.local_model_path else None,
        n_ctx=opts.local_n_ctx, n_threads=opts.local_n_threads,
        temperature=opts.temperature, router=opts.embeddings or LocalEmbeddings(),
        decoding=opts.local_decoding,
    )


PROVIDERS: dict[str, Callable[[str, ModelOptions], BaseChatModel]] = {
    "openai": _openai,
    "openai-compatible": _openai_compatible,
    "anthropic": _extra("langchain_anthropic", "ChatAnthropic", "anthropic"),
    "google": _extra("langchain_google_genai", "ChatGoogleGenerativeAI", "google"),
    "mistral": _extra("langchain_mistralai", "ChatMistralAI", "mistral"),
    "local": _local,
    "fake": _fake,
}


def parse_provider(spec: str) -> tuple[str, str]:
    provider, _, model = spec.strip().partition(":")
    if provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise ProviderError(f"unknown model provider {provider!r} in {spec!r}; use one of {known}")
    return provider, model


def check_provider(spec: str, options: ModelOptions) -> None:
    """Fail fast, with a message that says what to configure, before anything is loaded."""
    provider, _model = parse_provider(spec)
    if provider == "openai-compatible" and not options.base_url:
        _openai_compatible("", options)  # raises the explanatory error
    if provider == "openai" and not (options.api_key or os.environ.get("OPENAI_API_KEY")):
        raise ProviderError("the openai provider needs OPENAI_API_KEY (or PARLEY_LLM_API_KEY)")
    if provider == "local" and importlib.util.find_spec("xllamacpp") is None:
        _local("", options)  # raises the explanatory error


def make_chat_model(spec: str, options: ModelOptions) -> BaseChatModel:
    provider, model = parse_provider(spec)
    return PROVIDERS[provider](model, options)


def describe_model(spec: str, options: ModelOptions) -> str:
    """Which model answers, in words, for the start-up lines and `parley models`."""
    provider, model = parse_provider(spec)
    if provider == "local":
        from agents.local_model import default_model_path  # type: ignore[import-not-found]

        path = options.local_model_path or default_model_path()
        size = f", {path.stat().st_size / 1e6:.0f} MB" if path.is_file() else ", not found"
        return f"local: {path.name} in process on llama.cpp ({path}{size})"
    if provider == "openai-compatible":
        return f"openai-compatible: {model or 'default'} at {options.base_url}"
    if provider == "fake":
        script = options.fake_script or "none: it echoes"
        return f"fake: a scripted model, no language model (script: {script})"
    return f"{provider}: {model or 'its default model'}"
