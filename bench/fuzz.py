"""Schemathesis at full size over the whole published API of a real `parley serve`
(embedded shape, scripted model): every phase (examples, boundary-value coverage,
fuzzing), 30 examples per operation, checking for 500s and for answers that do not match
the OpenAPI schema. `make fuzz` runs it (about ten minutes here) and writes
bench/results/fuzz.{json,md}; tests/server/test_api_fuzz.py runs a small version in
`make test`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.load import _start, _wait_or_kill, serve_env

RESULTS = Path(__file__).parent / "results"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
EXAMPLES = 30


def run(examples: int = EXAMPLES) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="parley-fuzz-"))
    script = data / "script.json"
    script.write_text(json.dumps(["Fine, thanks."]))
    env, url = serve_env(data, script)
    log = data / "serve.log"
    server = _start(env, url, log)
    try:
        password = "fuzzing password 1"
        httpx.post(f"{url}/auth/register", json={"username": "fuzz", "password": password})
        token = httpx.post(f"{url}/auth/login", json={"username": "fuzz", "password": password}
                           ).json()["access_token"]
        report = data / "report"
        started = datetime.now(UTC)
        done = subprocess.run(
            [str(Path(sys.executable).with_name("st")), "run", f"{url}/openapi.json",
             "-H", f"Authorization: Bearer {token}", "--checks", CHECKS,
             "--max-examples", str(examples), "--workers", "2",
             "--phases", "examples,coverage,fuzzing", "--seed", "1",
             "--report", "junit", "--report-dir", str(report)],
            capture_output=True, text=True, check=False)
        seconds = (datetime.now(UTC) - started).total_seconds()
    finally:
        server.send_signal(signal.SIGTERM)
        _wait_or_kill(server)
    failures, errors = _junit(report)
    generated = re.search(r"(\d+) generated", done.stdout)
    return {"date": started.date().isoformat(), "examples_per_operation": examples,
            "operations": _operations(done.stdout), "test_cases": int(generated.group(1))
            if generated else None, "seconds": round(seconds), "exit_code": done.returncode,
            "check_failures": failures, "runtime_errors": errors,
            "server_tracebacks": log.read_text(errors="replace").count("Traceback"),
            "summary": done.stdout[-4000:]}


def _operations(stdout: str) -> int | None:
    found = re.search(r"Tested: (\d+)", stdout)
    return int(found.group(1)) if found else None


def _junit(folder: Path) -> tuple[list[str], list[str]]:
    """Operations that failed a check, and schemathesis's own errors, by operation."""
    failures: list[str] = []
    errors: list[str] = []
    for path in folder.glob("*.xml"):
        for case in ET.parse(path).getroot().iter("testcase"):
            for failure in case.findall("failure"):
                failures.append(f"{case.get('name')}: {(failure.get('message') or '')[:200]}")
            for error in case.findall("error"):
                errors.append(f"{case.get('name')}: {(error.get('message') or '')[:200]}")
    return failures, errors


def main() -> None:
    result = run()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fuzz.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"Schemathesis, {result['date']}: {result['operations']} operations, "
             f"{result['examples_per_operation']} examples each, every phase: "
             f"{result['test_cases']} test cases in {result['seconds']} s.", "",
             f"- answers failing a check (500, undocumented status or content type, body "
             f"off the schema): {len(result['check_failures'])}",
             f"- schemathesis's own errors (not the server's): {len(result['runtime_errors'])}",
             f"- tracebacks in the server's log: {result['server_tracebacks']}", ""]
    lines += [f"  - {f}" for f in result["check_failures"][:50]]
    lines += [f"  - (tool) {e}" for e in result["runtime_errors"][:10]]
    (RESULTS / "fuzz.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(1 if result["check_failures"] or result["server_tracebacks"] else 0)


if __name__ == "__main__":
    main()
