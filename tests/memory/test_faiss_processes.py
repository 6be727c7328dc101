"""Two processes on one FAISS folder (the server and `parley memory ingest`): neither loses
the other's writes, and each sees the other's without a restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

import memory.faiss_store as store
from memory.embeddings import make_embeddings
from memory.faiss_files import JOURNAL
from memory.faiss_store import FaissMemory
from memory.ingest import ingest
from memory.vector_index import REBUILD_SHARE, ids, is_compact

ROOT = Path(__file__).resolve().parents[2]
HASHING = make_embeddings("hashing")

# A second process: `add` stores N memories one call each (many journal appends and, with
# a small fold threshold, many folds); `ingest` runs the document ingest as the CLI does.
WRITER = """
import asyncio, sys
from pathlib import Path

import memory.faiss_store as store
from memory.embeddings import make_embeddings
from memory.ingest import ingest

folder, compact_at, mode, *args = sys.argv[1:]
store.COMPACT_AT_LEAST = int(compact_at)
memory = store.FaissMemory(Path(folder), make_embeddings("hashing"))

async def main() -> None:
    if mode == "ingest":
        print(await ingest(memory, "ada", [Path(args[0])], chunk_size=200, batch=2))
        return
    prefix, count = args
    for n in range(int(count)):
        await memory.add("ada", [f"{prefix} memory number {n}"], {"from": prefix})

asyncio.run(main())
"""


# A second process that deletes memories of a compact index one call each.
DELETER = """
import asyncio, sys
from pathlib import Path

from memory.embeddings import make_embeddings
from memory.faiss_store import FaissMemory

folder, compact_at, *memory_ids = sys.argv[1:]
memory = FaissMemory(Path(folder), make_embeddings("hashing"), compact_at=int(compact_at))

async def main() -> None:
    for memory_id in memory_ids:
        assert await memory.delete("ada", memory_id)

asyncio.run(main())
"""


def writer(folder: Path, *args: str, compact_at: int = 256) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(compact_at), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def deleter(folder: Path, memory_ids: list[str], *, compact_at: int
            ) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", DELETER, str(folder), str(compact_at),
                             *memory_ids], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


def document(tmp_path: Path) -> Path:
    """Five chunks of 200 characters or less, each about one numbered item."""
    path = tmp_path / "manual.txt"
    path.write_text("\n\n".join(f"Section {n}: the valve {n} of the boiler is {'blue ' * 20}"
                                f"and item{n} is checked yearly." for n in range(5)))
    return path


async def texts(folder: Path) -> list[str]:
    return sorted(r.text for r in await FaissMemory(folder, HASHING).list("ada", limit=10_000))


async def test_a_server_finds_chunks_another_process_ingested(tmp_path: Path) -> None:
    folder = tmp_path / "memory"
    server = FaissMemory(folder, HASHING)
    await server.add("ada", ["I live in Porto"])
    assert [m.record.text for m in await server.search("ada", "Porto", k=1)] == [
        "I live in Porto"]  # the server has the user's index loaded now
    assert finish(writer(folder, "ingest", str(document(tmp_path)))).strip() == "5"
    found = await server.search("ada", "item3 is checked yearly", k=1)
    assert "item3" in found[0].record.text  # without a restart
    assert found[0].record.metadata == {"kind": "document", "source": "manual.txt"}
    assert len(await server.list("ada")) == 6


async def test_chunks_another_process_ingested_survive_the_servers_next_fold(
        tmp_path: Path) -> None:
    """The reported loss: the CLI ingests 5 chunks while the server runs, then the server
    stores 300 memories (a fold) — all 5 chunks must still be there after a reload."""
    folder = tmp_path / "memory"
    server = FaissMemory(folder, HASHING)
    await server.add("ada", ["I live in Porto"])
    assert finish(writer(folder, "ingest", str(document(tmp_path)))).strip() == "5"
    for start in range(0, 300, 50):
        await server.add("ada", [f"server fact {n}" for n in range(start, start + 50)])
    assert (server._dir("ada") / "memories.json").is_file()  # the server did fold
    stored = await texts(folder)
    assert len([t for t in stored if t.startswith("Section")]) == 5
    assert len(stored) == 1 + 5 + 300


async def test_interleaved_writes_from_two_instances_survive_a_reload(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "COMPACT_AT_LEAST", 4)  # folds often, by either side
    folder = tmp_path / "memory"
    server, cli = FaissMemory(folder, HASHING), FaissMemory(folder, HASHING)
    expected = []
    for n in range(15):
        await server.add("ada", [f"server note {n}"])
        await cli.add("ada", [f"cli note {n}", f"cli extra {n}"])
        expected += [f"server note {n}", f"cli note {n}", f"cli extra {n}"]
    gone = (await cli.add("ada", ["to be deleted"]))[0]
    assert await server.delete("ada", gone.id)  # a delete of the other's memory sticks
    assert await texts(folder) == sorted(expected)
    for instance in (server, cli):  # both caught up, and no key was handed out twice
        state = instance._load("ada")
        assert sorted(r.text for r in state.records.values()) == sorted(expected)
        assert state.index.ntotal == len(expected)
        ids = [r.id for r in state.records.values()]
        assert len(set(ids)) == len(ids)


async def test_a_fold_by_one_keeps_the_journal_entries_of_the_other(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "COMPACT_AT_LEAST", 4)
    folder = tmp_path / "memory"
    server, cli = FaissMemory(folder, HASHING), FaissMemory(folder, HASHING)
    await server.list("ada")  # loaded while the folder was empty
    await cli.add("ada", ["first chunk", "second chunk"])  # journal entries, no fold yet
    await server.add("ada", [f"fact {n}" for n in range(4)])  # the server's write folds
    assert (server._dir("ada") / "memories.json").is_file()
    assert await texts(folder) == sorted(["first chunk", "second chunk",
                                          *(f"fact {n}" for n in range(4))])
    # And the other way round: the CLI, loaded before the server's fold, sees the new
    # snapshot and its own later writes land on top of it.
    await cli.add("ada", ["third chunk"])
    assert len(await cli.list("ada")) == len(await server.list("ada")) == 7


async def test_a_clear_by_one_is_seen_by_the_other(tmp_path: Path) -> None:
    folder = tmp_path / "memory"
    server, cli = FaissMemory(folder, HASHING), FaissMemory(folder, HASHING)
    await server.add("ada", ["I keep bees"])
    assert len(await cli.list("ada")) == 1
    assert await cli.clear("ada") == 1
    assert await server.search("ada", "I keep bees") == []
    await server.add("ada", ["I sail"])
    assert [r.text for r in await cli.list("ada")] == ["I sail"]


async def test_a_first_write_that_folded_at_once_is_seen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "COMPACT_AT_LEAST", 4)
    folder = tmp_path / "memory"
    server, cli = FaissMemory(folder, HASHING), FaissMemory(folder, HASHING)
    assert await server.list("ada") == []  # nothing on disk yet, and no journal to watch
    await cli.add("ada", ["I knit", "I run", "I cook", "I swim"])  # straight to a snapshot
    assert not (cli._dir("ada") / JOURNAL).exists()
    assert len(await server.list("ada")) == 4


async def test_concurrent_writer_processes_lose_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "COMPACT_AT_LEAST", 8)
    folder = tmp_path / "memory"
    parent = FaissMemory(folder, HASHING)
    await parent.add("ada", ["the parent was here first"])
    # All three append and fold (every 8 entries or more) at the same time.
    children = [writer(folder, "add", name, "150", compact_at=8) for name in ("north", "south")]
    written = 0
    while any(child.poll() is None for child in children) or written < 30:
        await parent.add("ada", [f"parent memory number {written}"])
        written += 1
        await asyncio.sleep(0.002)  # a pace that keeps the parent writing till the end
    for child in children:
        finish(child)
    expected = {"the parent was here first",
                *(f"parent memory number {n}" for n in range(written)),
                *(f"{name} memory number {n}" for name in ("north", "south")
                  for n in range(150))}
    stored = await texts(folder)
    assert len(stored) == len(expected) and set(stored) == expected
    assert {r.text for r in await parent.list("ada", limit=10_000)} == expected
    found = await parent.search("ada", "south memory number 149", k=10, min_score=0.99)
    assert "south memory number 149" in {m.record.text for m in found}


async def test_an_unchanged_folder_costs_a_search_no_file_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "memory"
    server, cli = FaissMemory(folder, HASHING), FaissMemory(folder, HASHING)
    await server.add("ada", ["I keep bees"])
    await cli.add("ada", ["I sail"])
    await server.search("ada", "sail")  # catches up once
    opened: list[str] = []
    real_open = Path.open

    def counting(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: opened.append(self.name))
    for _ in range(3):
        assert (await server.search("ada", "sail", k=1))[0].record.text == "I sail"
    assert opened == []


async def test_a_line_torn_by_a_crash_does_not_swallow_later_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "memory"
    first = FaissMemory(folder, HASHING)
    await first.add("ada", ["I keep bees"])
    [journal] = first._dir("ada").glob("journal*.jsonl")
    with journal.open("a") as torn:  # a writer died in the middle of a line
        torn.write('{"op": "add", "key": 99, "te')
    await FaissMemory(folder, HASHING).add("ada", ["I sail"])
    await first.add("ada", ["I knit"])
    assert await texts(folder) == ["I keep bees", "I knit", "I sail"]


async def test_ingest_into_a_folder_a_server_holds(tmp_path: Path) -> None:
    """`ingest` itself, in this process, next to a live instance of the same folder."""
    folder = tmp_path / "memory"
    server = FaissMemory(folder, HASHING)
    await server.add("ada", ["I live in Porto"])
    stored = await ingest(FaissMemory(folder, HASHING), "ada", [document(tmp_path)],
                          chunk_size=200, batch=2)
    assert stored == 5
    assert len(await server.list("ada")) == 6


async def test_a_fold_that_died_after_its_commit_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old generation's files outlive a crash right after the commit: a process still
    on that generation must move to the new one, not write into the dead journal."""
    monkeypatch.setattr(store, "COMPACT_AT_LEAST", 4)
    folder = tmp_path / "memory"
    server, cli = FaissMemory(folder, HASHING), FaissMemory(folder, HASHING)
    await server.add("ada", ["I keep bees"])
    await cli.list("ada")
    cleanup = store.remove_other_generations
    monkeypatch.setattr(store, "remove_other_generations", lambda folder, keep: None)
    await server.add("ada", ["I knit", "I run", "I cook"])  # folds, then "dies"
    monkeypatch.setattr(store, "remove_other_generations", cleanup)
    assert (server._dir("ada") / JOURNAL).is_file()  # generation 0's, left behind
    monkeypatch.setattr(store, "COMPACT_AT_LEAST", 100)  # this add must not fold
    await cli.add("ada", ["I sail"])
    assert await texts(folder) == ["I cook", "I keep bees", "I knit", "I run", "I sail"]


async def test_a_fold_that_died_before_its_commit_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "COMPACT_AT_LEAST", 4)
    folder = tmp_path / "memory"
    server, cli = FaissMemory(folder, HASHING), FaissMemory(folder, HASHING)
    await cli.list("ada")
    commit = store.write_snapshot

    def disk_full(*args: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(store, "write_snapshot", disk_full)
    with pytest.raises(OSError):  # the adds are in the journal; the fold after them failed
        await server.add("ada", ["I knit", "I run", "I cook", "I swim"])
    monkeypatch.setattr(store, "write_snapshot", commit)
    expected = ["I cook", "I knit", "I run", "I swim"]
    assert sorted(r.text for r in await server.list("ada")) == expected
    await cli.add("ada", ["I sail"])  # folds for real, over the failed fold's leftovers
    await server.add("ada", ["I row"])
    assert await texts(folder) == sorted([*expected, "I sail", "I row"])
    assert sorted(p.name for p in server._dir("ada").iterdir()) == [
        ".lock", "index.1.faiss", "journal.1.jsonl", "memories.json"]


async def test_deletes_and_the_rebuild_another_process_made_are_seen(tmp_path: Path) -> None:
    """A server holds a user's compact index; another process deletes memories (tombstones,
    then the delete that rebuilds the index without them). The server takes the first in
    from the journal's tail and reloads after the rebuild's fold: it never returns a
    deleted memory, and counts the tombstones its copy holds."""
    folder = tmp_path / "memory"
    server = FaissMemory(folder, HASHING, compact_at=16)
    texts_ = [f"note {n} about the {n % 5} boats" for n in range(60)]
    records = await server.add("ada", texts_)
    state = server._load("ada")
    assert is_compact(state.index)
    generation = state.generation
    share = int(REBUILD_SHARE * 60)
    gone: set[str] = set()

    async def check(dead: int) -> None:
        for text in [*sorted(gone)[:8], "note about the boats"]:
            found = await server.search("ada", text, k=5, mode="dense")
            assert len(found) == 5 and not gone & {m.record.text for m in found}
        state = server._load("ada")
        in_index = set(ids(state.index).tolist())
        assert state.dead == dead == len(in_index - set(state.records))
        assert len(state.records) == 60 - len(gone)

    for batch in (records[:share], records[share:share + 8]):
        finish(deleter(folder, [r.id for r in batch], compact_at=16))
        gone |= {r.text for r in batch}
        if len(gone) == share:  # tombstones alone, read from the journal's tail
            await check(dead=share)
            assert server._load("ada").generation == generation
        else:  # the 13th delete rebuilt the index; 7 more are tombstones again
            await check(dead=len(gone) - share - 1)
            assert server._load("ada").generation > generation
