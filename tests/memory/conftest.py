from __future__ import annotations

import pytest

from memory.embeddings import LocalEmbeddings


@pytest.fixture(scope="session")
def embeddings() -> LocalEmbeddings:
    """The real shipped model, loaded once for the session."""
    return LocalEmbeddings()
