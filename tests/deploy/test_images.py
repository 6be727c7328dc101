"""deploy/images.py without Docker: the Debian mirror is read from apt's own sources at run
time (none is written into the repository), and the wheelhouse is reused while the locks
are unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import images


def test_the_mirror_comes_from_apts_deb822_sources(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARLEY_DEBIAN_MIRROR", raising=False)
    (tmp_path / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n")
    assert images.debian_mirror(tmp_path, tmp_path / "absent.list") == \
        "http://mirror.example/debian"


def test_the_mirror_comes_from_a_one_line_sources_list(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARLEY_DEBIAN_MIRROR", raising=False)
    listing = tmp_path / "sources.list"
    listing.write_text("# a comment\n"
                       "deb http://security.example/debian-security bookworm-security main\n"
                       "deb [arch=amd64] http://mirror.example/debian bookworm main\n")
    assert images.debian_mirror(tmp_path, listing) == "http://mirror.example/debian"
    monkeypatch.setenv("PARLEY_DEBIAN_MIRROR", "http://chosen.example/debian")
    assert images.debian_mirror(tmp_path, listing) == "http://chosen.example/debian"


def test_no_mirror_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARLEY_DEBIAN_MIRROR", raising=False)
    with pytest.raises(SystemExit, match="PARLEY_DEBIAN_MIRROR"):
        images.debian_mirror(tmp_path, tmp_path / "absent.list")


def test_a_wheelhouse_is_reused_while_its_locks_are_unchanged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "WHEELS", tmp_path)
    folder = tmp_path / "services"
    folder.mkdir()
    (folder / "kept-1.0-py3-none-any.whl").write_text("")
    (folder / ".locks").write_text(images.locks_digest(images.WHEELHOUSES["services"]) + "\n")

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("downloaded again")

    monkeypatch.setattr(images.subprocess, "run", no_download)
    assert images.fill_wheelhouse("services") == folder
    assert (folder / "kept-1.0-py3-none-any.whl").exists()


def test_every_image_compose_runs_is_built() -> None:
    import yaml

    compose = yaml.safe_load((images.ROOT / "compose.yaml").read_text())
    built = {f"{image.tag}:${{PARLEY_VERSION:-latest}}" for image in images.IMAGES}
    wanted = {s["image"] for s in compose["services"].values() if "build" in s}
    assert wanted == built
    for image in images.IMAGES:
        assert (images.ROOT / image.dockerfile).is_file()
