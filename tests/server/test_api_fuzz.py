"""Schemathesis over the whole published API of a real `parley serve`, a few examples per
operation: no answer is a 500, and every answer matches the OpenAPI schema (status,
content type, body). `make bench`-sized runs (30 examples per operation) are recorded in
docs/reliability.md."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.serve import parley_serve, sign_up

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


def schemathesis_run(url: str, token: str, *, examples: int, out: Path,
                     phases: str = "examples,fuzzing") -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    return subprocess.run(
        [str(st), "run", f"{url}/openapi.json", "-H", f"Authorization: Bearer {token}",
         "--checks", CHECKS, "--max-examples", str(examples), "--workers", "2",
         # The coverage phase (boundary values of every schema) is 20,000 requests, five
         # minutes here; it runs in the recorded runs of docs/reliability.md, not in
         # `make test`.
         "--phases", phases, "--seed", "1",
         "--report", "junit", "--report-dir", str(out)],
        capture_output=True, text=True, timeout=1800)


@pytest.mark.timeout(1800)
def test_no_500_and_no_schema_mismatch_anywhere(tmp_path: Path) -> None:
    if not Path(sys.executable).with_name("st").exists() and shutil.which("st") is None:
        pytest.fail("schemathesis is missing: run `make install`")
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["Fine, thanks."]))
    env = {"PARLEY_LLM": "fake", "PARLEY_FAKE_SCRIPT": str(script),
           "PARLEY_RATE_LIMIT_PER_MINUTE": "0"}
    with parley_serve(tmp_path, env) as served:
        token = sign_up(served.url, "fuzz")["Authorization"].removeprefix("Bearer ")
        result = schemathesis_run(served.url, token, examples=2, out=tmp_path / "report")
        log = served.log.read_text()
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "Traceback" not in log, log[log.index("Traceback") - 500:][:4000]
