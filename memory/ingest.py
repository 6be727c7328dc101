"""Add documents (text, Markdown, PDF) to a user's long-term memory, in chunks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from memory.semantic import SemanticMemory

SUPPORTED = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".pdf": "pdf"}
Progress = Callable[[int, int], None]  # (chunks done, chunks in all)


class IngestError(ValueError):
    pass


def load_text(path: Path) -> str:
    kind = SUPPORTED.get(path.suffix.lower())
    if kind is None:
        raise IngestError(f"{path.name}: unsupported file type; use one of "
                          f"{', '.join(sorted(SUPPORTED))}")
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if kind == "pdf":
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            pages = PdfReader(str(path)).pages
            return "\n\n".join(page.extract_text() or "" for page in pages)
        except (PdfReadError, OSError) as exc:
            raise IngestError(f"{path.name}: not a readable PDF ({exc})") from exc
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path.name}: not UTF-8 text") from exc


def chunk(text: str, markdown: bool, size: int = 800, overlap: int = 80) -> list[str]:
    splitter = (RecursiveCharacterTextSplitter.from_language(Language.MARKDOWN, chunk_size=size,
                                                             chunk_overlap=overlap)
                if markdown else
                RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=overlap))
    return [c.strip() for c in splitter.split_text(text) if c.strip()]


async def ingest(memory: SemanticMemory, user_id: str, paths: Sequence[Path], *,
                 chunk_size: int = 800, progress: Progress | None = None,
                 batch: int = 16) -> int:
    """Chunks every file first (so a bad file stops the run before anything is stored),
    then adds the chunks in batches. Returns the number of chunks stored."""
    planned: list[tuple[Path, str]] = []
    for path in paths:
        markdown = SUPPORTED.get(path.suffix.lower()) == "markdown"
        planned += [(path, piece) for piece in chunk(load_text(path), markdown, chunk_size)]
    done = 0
    for start in range(0, len(planned), batch):
        part = planned[start:start + batch]
        for path in {p for p, _ in part}:
            await memory.add(user_id, [text for p, text in part if p == path],
                             {"kind": "document", "source": path.name})
        done += len(part)
        if progress:
            progress(done, len(planned))
    return done
