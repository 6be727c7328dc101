"""The terminal chat of `parley chat`: a small SSE client of `POST /chat/stream`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx
from httpx_sse import connect_sse

HELP = ("Commands: /new (new thread), /threads (your threads), /open ID (continue one), "
        "/history (this thread's messages), /agent NAME, /agents, /thread, /help, /quit")


@dataclass
class ChatSession:
    base_url: str
    agent: str = "assistant"
    thread_id: str | None = None
    token: str | None = None
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=None))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def send(self, message: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (event, data) pairs of one turn; remembers the thread for the next."""
        body = {"message": message, "agent": self.agent, "thread_id": self.thread_id}
        return self._stream("/chat/stream", body)

    def decide(self, thread_id: str, decisions: list[dict[str, Any]]
               ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The rest of a turn that waited for these decisions (docs/approval.md)."""
        return self._stream(f"/chat/threads/{thread_id}/decisions",
                            {"decisions": decisions})

    def _stream(self, path: str, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        with connect_sse(self.client, "POST", f"{self.base_url}{path}", json=body,
                         headers=self.headers()) as source:
            if source.response.status_code != 200:
                source.response.read()
                detail = _detail(source.response)
                yield "error", {"message": f"HTTP {source.response.status_code}: {detail}"}
                return
            for sse in source.iter_sse():
                data = json.loads(sse.data) if sse.data else {}
                if sse.event == "done":
                    self.thread_id = data.get("thread_id", self.thread_id)
                yield sse.event, data

    def login(self, username: str, password: str) -> None:
        response = self.client.post(f"{self.base_url}/auth/login",
                                    json={"username": username, "password": password})
        if response.status_code != 200:
            raise LoginFailed(_detail(response))
        self.token = response.json()["access_token"]

    def _get(self, path: str, **params: Any) -> Any:
        response = self.client.get(f"{self.base_url}{path}", headers=self.headers(),
                                   params=params)
        if response.status_code >= 400:
            raise httpx.HTTPStatusError(_detail(response), request=response.request,
                                        response=response)
        return response.json()

    def agents(self) -> list[dict[str, Any]]:
        return list(self._get("/agents"))

    def threads(self) -> list[dict[str, Any]]:
        return list(self._get("/history/threads"))

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """The current thread's latest messages, oldest first."""
        if not self.thread_id:
            return []
        page = self._get("/history", thread_id=self.thread_id, limit=limit)
        return list(reversed(page["messages"]))


class LoginFailed(Exception):
    pass


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return response.text[:200]


def repl(session: ChatSession, *, read: Callable[[str], str] = input,
         out: TextIO = sys.stdout) -> None:
    out.write(f"Parley chat with '{session.agent}' at {session.base_url}. {HELP}\n")
    while True:
        try:
            line = read("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            return
        if not line:
            continue
        if line.startswith("/"):
            try:
                if not _command(session, line, out):
                    return
            except httpx.HTTPError as exc:
                out.write(f"[{exc}]\n")
            continue
        out.write(f"{session.agent}> ")
        out.flush()
        try:
            approval = _render_all(session.send(line), out)
            while approval is not None:  # calls wait for the user: ask, then go on
                decisions = _ask(approval, read, out)
                approval = _render_all(session.decide(approval["thread_id"], decisions), out,
                                       keep=approval)
        except httpx.HTTPError as exc:
            out.write(f"\n[cannot reach {session.base_url}: {exc}]\n")
        except (EOFError, KeyboardInterrupt):
            out.write("\n[not decided: the calls wait; /open the thread and write again, "
                      "or decide on the chat page]\n")


def _render_all(events: Iterator[tuple[str, dict[str, Any]]], out: TextIO,
                keep: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Show a turn's events; the approval it paused for, if it did. `keep`: the approval
    these events answer, still waiting when the server refused the decisions (422: an
    edit that does not fit the tool, say), so the calls are asked about again."""
    approval = None
    for event, data in events:
        _render(event, data, out)
        if event == "approval":
            approval = data
        elif event == "error" and str(data.get("message", "")).startswith("HTTP 422"):
            approval = keep
    return approval


_CHOICES = "[a]pprove, [A]lways allow, [e]dit, [r]eject, re[s]pond"


def _ask(approval: dict[str, Any], read: Callable[[str], str], out: TextIO
         ) -> list[dict[str, Any]]:
    """A decision on each waiting call, asked in the terminal."""
    decisions = []
    for call in approval["calls"]:
        out.write(f"\n  {call['tool']} wants to run with {json.dumps(call['args'])}\n")
        while (decision := _choice(call, read(f"  {_CHOICES}? "), read, out)) is None:
            pass
        decisions.append(decision)
    return decisions


def _choice(call: dict[str, Any], answer: str, read: Callable[[str], str], out: TextIO
            ) -> dict[str, Any] | None:
    answer = answer.strip()
    decision: dict[str, Any] = {"call_id": call["call_id"]}
    if answer in ("a", "A"):
        return {**decision, "decision": "approve", "always_allow": answer == "A"}
    if answer == "e":
        try:
            args = json.loads(read("  arguments (JSON)> "))
        except ValueError as exc:
            out.write(f"  [not JSON: {exc}]\n")
            return None
        return {**decision, "decision": "edit", "args": args}
    if answer == "r":
        return {**decision, "decision": "reject", "reason": read("  why (optional)> ")}
    if answer == "s":
        return {**decision, "decision": "respond", "message": read("  answer> ")}
    out.write(f"  [choose one of {_CHOICES}]\n")
    return None


def _command(session: ChatSession, line: str, out: TextIO) -> bool:
    name, _, arg = line.partition(" ")
    if name in ("/quit", "/exit"):
        return False
    if name == "/new":
        session.thread_id = None
        out.write("[new thread]\n")
    elif name == "/agent" and arg:
        session.agent = arg.strip()
        session.thread_id = None
        out.write(f"[now talking to {session.agent}, new thread]\n")
    elif name == "/agents":
        for agent in session.agents():
            out.write(f"  {agent['name']}: {agent['description']}\n")
    elif name == "/thread":
        out.write(f"[thread {session.thread_id or '(new)'}]\n")
    elif name == "/threads":
        for thread in session.threads():
            marker = "*" if thread["id"] == session.thread_id else " "
            out.write(f" {marker} {thread['id']}  {thread['title']}  "
                      f"({thread['message_count']} messages)\n")
    elif name == "/open" and arg:
        session.thread_id = arg.strip()
        out.write(f"[continuing thread {session.thread_id}]\n")
    elif name == "/history":
        for message in session.history():
            if message["role"] in ("user", "assistant") and message["content"]:
                out.write(f"  {message['role']}: {message['content']}\n")
    else:
        out.write(HELP + "\n")
    return True


def _render(event: str, data: dict[str, Any], out: TextIO) -> None:
    if event == "token":
        out.write(data.get("text", ""))
    elif event == "tool_start":
        out.write(f"\n  [tool {data.get('tool')} {json.dumps(data.get('args', {}))}]")
    elif event == "tool_end":
        out.write(f" [{data.get('status')}]\n")
    elif event == "approval":
        out.write(f"\n[waiting for your approval: "
                  f"{', '.join(c['tool'] for c in data.get('calls', []))}]")
    elif event == "error":
        out.write(f"\n[error: {data.get('message')}]")
    elif event == "done":
        out.write("\n")
    out.flush()
