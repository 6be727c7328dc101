"""Long-term memory through the gateway: recalled across threads of one user, never for
another, listed, searched and deleted over /memories, kept across a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agents.fake import say
from tests.server.test_gateway import login


def system_prompts(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [call[0].content for call in app.state.model.calls]


@pytest.mark.parametrize("engine", ["faiss", "redis"])
async def test_a_fact_crosses_threads_of_one_user_only(make_app, client_for, tmp_path: Path,
                                                       redis_url: str, engine: str) -> None:
    app = make_app([say("Noted.")], auth_enabled=True, memory_enabled=True,
                   data_dir=tmp_path / "data", memory_engine=engine, redis_url=redis_url)
    async with client_for(app) as client:
        ada, bob = await login(client, "ada"), await login(client, "bob")
        await client.post("/chat", headers=ada, json={
            "message": "My sister Alice lives in Lyon.", "thread_id": "one"})
        await client.post("/chat", headers=ada, json={
            "message": "Where does my sister live?", "thread_id": "two"})
        await client.post("/chat", headers=bob, json={
            "message": "Where does my sister live?", "thread_id": "two"})
        everything = (await client.get("/memories", headers=ada)).json()
        listed = [m for m in everything if m["metadata"]["kind"] == "fact"]
        exchanges = [m for m in everything if m["metadata"]["kind"] == "exchange"]
        searched = (await client.get("/memories", headers=ada,
                                     params={"query": "sibling city"})).json()
        bobs = (await client.get("/memories", headers=bob)).json()
        steal = await client.delete(f"/memories/{listed[0]['id']}", headers=bob)
        empty = await client.get("/memories", headers=ada, params={"query": " "})
    prompts = system_prompts(app)
    assert "My sister Alice lives in Lyon." in prompts[1]  # Ada, another thread
    assert "Alice" not in prompts[2]  # Bob
    assert [m["text"] for m in listed] == ["My sister Alice lives in Lyon."]
    assert listed[0]["metadata"] == {"kind": "fact", "thread_id": "one"}
    assert [m["text"] for m in exchanges] == ["Q: Where does my sister live?\nA: Noted."]
    fact = next(m for m in searched if m["text"] == "My sister Alice lives in Lyon.")
    assert fact["similarity"] > 0.3 and 0 < fact["score"] <= 1  # close by meaning
    assert bobs and all("Lyon" not in m["text"] for m in bobs)  # only his own exchange
    assert steal.status_code == 404
    assert empty.status_code == 422


async def test_delete_one_clear_all_and_keep_across_restart(make_app, client_for,
                                                            tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = make_app([say("Ok.")], auth_enabled=True, memory_enabled=True, data_dir=data)
    async with client_for(first) as client:
        ada = await login(client, "ada")
        for fact in ("I am allergic to peanuts.", "My dog is called Rex.",
                     "I work as a nurse."):
            await client.post("/chat", headers=ada, json={"message": fact})
        await client.post("/chat", headers=ada, json={"message": "What's up?"})  # a question
        listed = [m for m in (await client.get("/memories", headers=ada)).json()
                  if m["metadata"]["kind"] == "fact"]
        rex = next(m for m in listed if "Rex" in m["text"])
        assert (await client.delete(f"/memories/{rex['id']}", headers=ada)).status_code == 204
    assert len(listed) == 3
    second = make_app([say("Ok.")], auth_enabled=True, memory_enabled=True, data_dir=data)
    async with client_for(second) as client:
        ada = await login(client, "ada")  # the account is on disk too
        kept = [m for m in (await client.get("/memories", headers=ada)).json()
                if m["metadata"]["kind"] == "fact"]
        await client.post("/chat", headers=ada, json={"message": "What should I not eat?"})
        cleared = (await client.delete("/memories", headers=ada)).json()
        after = (await client.get("/memories", headers=ada)).json()
    assert sorted(m["text"] for m in kept) == ["I am allergic to peanuts.", "I work as a nurse."]
    assert "I am allergic to peanuts." in system_prompts(second)[0]
    assert cleared["deleted"] >= 3 and after == []  # two facts and the exchanges


async def test_memory_routes_need_a_token(make_app, client_for) -> None:
    async with client_for(make_app([say("x")], auth_enabled=True)) as client:
        assert (await client.get("/memories")).status_code == 401
        assert (await client.delete("/memories")).status_code == 401


async def test_memory_off_says_so(make_app, client_for) -> None:
    async with client_for(make_app([say("x")])) as client:
        response = await client.get("/memories")
    assert response.status_code == 404 and "PARLEY_MEMORY_ENABLED" in response.text
    assert isinstance(response, httpx.Response)


async def test_post_memories_stores_for_the_caller_only(make_app, client_for,
                                                        tmp_path: Path) -> None:
    app = make_app([say("Ok.")], auth_enabled=True, memory_enabled=True,
                   data_dir=tmp_path / "data")
    async with client_for(app) as client:
        ada, bob = await login(client, "ada"), await login(client, "bob")
        posted = await client.post("/memories", headers=ada, json=[
            {"text": "Caroline: I went to a LGBTQ support group yesterday.",
             "metadata": {"speaker": "Caroline", "source": "import"},
             "created_at": "2023-05-08T13:56:00"},
            {"text": "Melanie: I painted a lake sunrise last year.",
             "metadata": {"speaker": "Melanie"}, "created_at": "2023-05-08T13:57:00Z"},
            {"text": "Remember that my locker code is 4471."}])
        again = await client.post("/memories", headers=ada, json=[
            {"text": "Remember that my locker code is 4471."}])
        found = (await client.get("/memories", headers=ada, params={
            "query": "When did Caroline go to the support group?", "limit": 2})).json()
        by_words = (await client.get("/memories", headers=ada, params={
            "query": "locker", "mode": "lexical"})).json()
        bobs_search = (await client.get("/memories", headers=bob, params={
            "query": "locker code support group sunrise"})).json()
        bobs_list = (await client.get("/memories", headers=bob)).json()
    assert posted.status_code == 201
    stored = posted.json()
    assert [m["metadata"].get("speaker") for m in stored] == ["Caroline", "Melanie", None]
    assert stored[0]["metadata"] == {"kind": "note", "speaker": "Caroline", "source": "import"}
    assert stored[0]["created_at"].startswith("2023-05-08T13:56:00")  # naive = UTC
    assert again.json()[0]["id"] == stored[2]["id"]  # kept once
    assert found[0]["id"] == stored[0]["id"] and found[0]["score"] >= found[1]["score"]
    assert found[0]["similarity"] is not None and 0 < found[0]["score"] <= 1
    assert [m["text"] for m in by_words] == ["Remember that my locker code is 4471."]
    assert bobs_search == [] and bobs_list == []


@pytest.mark.parametrize("body", [
    [],
    [{"text": "   "}],
    [{"text": "x" * 16_001}],
    [{"text": "fine"}, {"text": "said by a number", "metadata": {"speaker": 7}}],
    [{"text": "fine"}, {"text": "from the future", "created_at": "2999-01-01T00:00:00Z"}],
    [{"text": "fine"}, {"text": "big metadata", "metadata": {"k": "v" * 5000}}],
    [{"text": f"note {i}"} for i in range(501)],
    {"text": "not a list"},
])
async def test_post_memories_rejects_bad_input_and_stores_nothing(
        make_app, client_for, tmp_path: Path, body: object) -> None:
    app = make_app([say("Ok.")], auth_enabled=True, memory_enabled=True,
                   data_dir=tmp_path / "data")
    async with client_for(app) as client:
        ada = await login(client, "ada")
        response = await client.post("/memories", headers=ada, json=body)
        listed = (await client.get("/memories", headers=ada)).json()
    assert response.status_code == 422, response.text
    assert listed == []


async def test_post_memories_has_the_body_limit_and_needs_a_token(
        make_app, client_for, tmp_path: Path) -> None:
    app = make_app([say("Ok.")], auth_enabled=True, memory_enabled=True,
                   data_dir=tmp_path / "data", max_request_bytes=2_000)
    async with client_for(app) as client:
        assert (await client.post("/memories", json=[{"text": "hi"}])).status_code == 401
        ada = await login(client, "ada")
        big = await client.post("/memories", headers=ada,
                                json=[{"text": "y" * 1_000}, {"text": "z" * 1_500}])
        assert big.status_code == 413
        assert (await client.get("/memories", headers=ada)).json() == []
