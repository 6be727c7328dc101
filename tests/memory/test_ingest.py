"""Documents into memory: text, Markdown and PDF, chunked, searchable, bad files refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memory.embeddings import LocalEmbeddings
from memory.faiss_store import FaissMemory
from memory.ingest import IngestError, chunk, ingest, load_text


def make_pdf(path: Path, text: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig = plt.figure()
    fig.text(0.1, 0.5, text)
    fig.savefig(path, format="pdf")
    plt.close(fig)


@pytest.fixture
def documents(tmp_path: Path) -> list[Path]:
    notes = tmp_path / "notes.txt"
    notes.write_text("The boiler was serviced in March by Hugo. " * 40)
    guide = tmp_path / "guide.md"
    guide.write_text("# Garden\n\nWater the tomatoes every morning.\n\n## Roses\n\n"
                     + "Prune the roses in February. " * 30)
    pdf = tmp_path / "policy.pdf"
    make_pdf(pdf, "Insurance policy number 88-1203 renews in June.")
    return [notes, guide, pdf]


async def test_files_are_chunked_and_searchable(tmp_path: Path, documents: list[Path],
                                                embeddings: LocalEmbeddings) -> None:
    store = FaissMemory(tmp_path / "memory", embeddings)
    seen: list[tuple[int, int]] = []
    stored = await ingest(store, "ada", documents, chunk_size=400,
                          progress=lambda done, total: seen.append((done, total)))
    assert stored > 3 and seen[-1] == (stored, stored)
    found = await store.search("ada", "when does my insurance renew?", k=1)
    assert "88-1203" in found[0].record.text
    assert found[0].record.metadata == {"kind": "document", "source": "policy.pdf"}
    roses = await store.search("ada", "when should roses be pruned?", k=1)
    assert roses[0].record.metadata["source"] == "guide.md"
    assert await store.search("bob", "insurance") == []


def test_chunks_respect_the_size() -> None:
    pieces = chunk("word " * 2000, markdown=False, size=300)
    assert len(pieces) > 5 and all(len(p) <= 300 for p in pieces)


async def test_bad_files_stop_the_run_before_anything_is_stored(
        tmp_path: Path, documents: list[Path], embeddings: LocalEmbeddings) -> None:
    store = FaissMemory(tmp_path / "memory", embeddings)
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\xff\xd8")
    fake_pdf = tmp_path / "fake.pdf"
    fake_pdf.write_text("not a pdf")
    for wrong, message in ((bad, "unsupported file type"), (fake_pdf, "not a readable PDF"),
                           (tmp_path / "missing.txt", "no such file")):
        with pytest.raises(IngestError, match=message):
            await ingest(store, "ada", [*documents, wrong])
    assert await store.list("ada") == []
    with pytest.raises(IngestError):
        load_text(bad)


def test_the_cli_ingests_for_a_registered_user(tmp_path: Path, documents: list[Path]) -> None:
    from services.auth.context import build_auth
    from services.auth.crud import create_user
    from services.auth.settings import AuthSettings

    data = tmp_path / "data"
    auth = build_auth(AuthSettings(database_url=f"sqlite:///{data / 'auth.db'}",
                                   keys_dir=data / "keys"))
    auth.start()
    with auth.sessions() as session:
        create_user(session=session, username="ada", password="a long enough password")
    auth.close()
    env = {**os.environ, "PARLEY_DATA_DIR": str(data)}
    done = subprocess.run([sys.executable, "-m", "server.cli", "memory", "ingest",
                           *map(str, documents), "--user", "ada"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "chunks in ada's memory" in done.stdout
    missing = subprocess.run([sys.executable, "-m", "server.cli", "memory", "ingest",
                              str(documents[0]), "--user", "nobody"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no user 'nobody'" in missing.stderr


async def test_the_cli_ingests_while_a_server_holds_the_memory(
        tmp_path: Path, documents: list[Path], embeddings: LocalEmbeddings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI is a second process on the server's folder: the server, with the user's
    index loaded, finds the chunks without a restart, and its next fold keeps them."""
    import memory.faiss_store as store
    from services.auth.context import build_auth
    from services.auth.crud import create_user
    from services.auth.settings import AuthSettings

    data = tmp_path / "data"
    auth = build_auth(AuthSettings(database_url=f"sqlite:///{data / 'auth.db'}",
                                   keys_dir=data / "keys"))
    auth.start()
    with auth.sessions() as session:
        user_id = str(create_user(session=session, username="ada",
                                  password="a long enough password").id)
    auth.close()
    server = FaissMemory(data / "memory", embeddings)
    await server.add(user_id, ["I live in Porto."])
    assert await server.search(user_id, "when does my insurance renew?", k=1)
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "server.cli", "memory", "ingest",
                         *map(str, documents), "--user", "ada"],
        env={**os.environ, "PARLEY_DATA_DIR": str(data)}, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    stored = int(done.stdout.split("stored ")[-1].split()[0])
    found = await server.search(user_id, "when does my insurance renew?", k=1)
    assert "88-1203" in found[0].record.text
    monkeypatch.setattr(store, "COMPACT_AT_LEAST", 4)
    await server.add(user_id, ["I drive a red Toyota."])  # the server's write folds
    assert (server._dir(user_id) / "memories.json").is_file()
    restarted = FaissMemory(data / "memory", embeddings)
    documents_kept = [r for r in await restarted.list(user_id)
                      if r.metadata.get("kind") == "document"]
    assert len(documents_kept) == stored > 3
