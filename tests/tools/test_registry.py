"""Tool discovery through real entry points of installed distributions."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from agents.fake import ScriptedChatModel
from tools.context import ToolContext
from tools.registry import ENTRY_POINT_GROUP, build_tools, discover_sources


def install_fake_distribution(site: Path, name: str, module: str, source: str,
                              entry_points: dict[str, str]) -> None:
    """Lay out a distribution the way pip does: a module and a .dist-info folder."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_tools_factories_and_broken_plugins(site: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    install_fake_distribution(site, "good-plugin", "good_plugin_mod", """
        from langchain_core.tools import tool

        @tool
        def shout(text: str) -> str:
            '''Repeat text loudly.'''
            return text.upper()

        def factory(ctx):
            @tool
            def which_model() -> str:
                '''Name the injected model.'''
                return type(ctx.llm).__name__
            return [which_model]

        def no_args():
            return shout
    """, {"shout": "good_plugin_mod:shout", "model": "good_plugin_mod:factory",
          "again": "good_plugin_mod:no_args"})
    install_fake_distribution(site, "bad-plugin", "bad_plugin_mod",
                              "raise ImportError('missing dependency')\n",
                              {"bad": "bad_plugin_mod:thing"})
    install_fake_distribution(site, "odd-plugin", "odd_plugin_mod", "value = 42\n",
                              {"odd": "odd_plugin_mod:value"})
    with caplog.at_level(logging.WARNING):
        sources = discover_sources()
        loaded = build_tools(sources, ToolContext(llm=ScriptedChatModel()))
    by_name = {t.tool.name: t for t in loaded}
    assert by_name["shout"].origin == "good-plugin"
    assert by_name["shout"].tool.invoke({"text": "hi"}) == "HI"
    assert by_name["which_model"].tool.invoke({}) == "ScriptedChatModel"
    # The broken plugin and the non-tool were skipped with a log line, not a crash.
    assert "bad-plugin" not in {t.origin for t in loaded}
    assert "failed to import" in caplog.text and "bad_plugin_mod" in caplog.text
    assert "odd" in caplog.text and "not a tool" in caplog.text
    # 'again' returns a tool named like one already taken: the first one stays.
    assert "ignored: the name is taken" in caplog.text
