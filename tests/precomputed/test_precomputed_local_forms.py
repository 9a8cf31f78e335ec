"""Local chunk reads find every stored form from a kept directory listing, and never
trust a listing the directory has changed since (lamina_precomputed.local_forms)."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_precomputed import local_forms
from lamina_precomputed.local_forms import FormIndex
from lamina_precomputed.storage import FORMS, FileStore

SUFFIXES = tuple(suffix for suffix, _ in FORMS)


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Listings trusted at once (no settling time), and the directories listed, in order."""
    monkeypatch.setattr(local_forms, "SETTLE_NS", 0)
    listed: list[str] = []
    real = os.scandir

    def scandir(path: Any) -> Any:
        listed.append(str(path))
        return real(path)

    monkeypatch.setattr(local_forms.os, "scandir", scandir)
    return listed


def _next_tick() -> None:
    """Let the file system's clock move on (its times advance in coarse ticks)."""
    time.sleep(0.05)


def test_a_directory_is_listed_once_for_many_lookups(tmp_path: Path, settled: list[str]) -> None:
    (tmp_path / "a").write_bytes(b"1")
    (tmp_path / "b.gz").write_bytes(b"2")
    index = FormIndex(SUFFIXES)
    assert index.present(str(tmp_path / "a")) == ("",)
    assert index.present(str(tmp_path / "b")) == (".gz",)
    assert index.present(str(tmp_path / "c")) == ()
    assert index.present(str(tmp_path / "missing-dir" / "a")) == ()
    assert settled == [str(tmp_path)]


def test_a_form_added_after_the_listing_is_found(tmp_path: Path, settled: list[str]) -> None:
    (tmp_path / "a").write_bytes(b"1")
    index = FormIndex(SUFFIXES)
    assert index.present(str(tmp_path / "a")) == ("",)
    _next_tick()
    (tmp_path / "a.gz").write_bytes(b"2")
    assert index.present(str(tmp_path / "a")) == ("", ".gz")
    _next_tick()
    (tmp_path / "a").unlink()
    assert index.present(str(tmp_path / "a")) == (".gz",)
    assert len(settled) == 3  # listed again after each change


def test_a_recently_changed_directory_is_not_trusted(tmp_path: Path) -> None:
    """Within the settling time a lookup says "unknown" (the caller stats each form)."""
    (tmp_path / "a").write_bytes(b"1")
    assert FormIndex(SUFFIXES).present(str(tmp_path / "a")) is None


def test_a_directory_too_large_is_not_kept(
    tmp_path: Path, settled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_forms, "LISTING_LIMIT", 3)
    for name in "abcde":
        (tmp_path / name).write_bytes(b"1")
    index = FormIndex(SUFFIXES)
    assert index.present(str(tmp_path / "a")) is None
    assert index.present(str(tmp_path / "b")) is None
    assert len(settled) == 1  # not listed again


def test_file_store_reads_the_newest_form_through_the_listing(
    tmp_path: Path, settled: list[str]
) -> None:
    """A chunk another tool rewrote as ``key.gz`` beside lamina's ``key`` reads as the new
    content, and a chunk removed reads as absent, though the directory was listed before."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "k").write_bytes(b"old")
    (tmp_path / "s" / "other").write_bytes(b"x")
    store = FileStore(f"file://{tmp_path}")
    assert store.get("s/k") == b"old"
    assert store.get("s/other") == b"x"
    _next_tick()
    (tmp_path / "s" / "k.gz").write_bytes(gzip.compress(b"new"))
    assert store.get("s/k") == b"new"
    _next_tick()
    (tmp_path / "s" / "other").unlink()
    assert store.get("s/other") is None
    assert len(settled) >= 2


def test_a_layer_reads_a_chunk_written_after_it_listed_the_scale(
    tmp_path: Path, settled: list[str]
) -> None:
    from lamina_precomputed import build_cv_layer
    from precomputed_support import small_volume_params

    from lamina import Vec3D

    res = Vec3D(4, 4, 40)
    layer = build_cv_layer(f"file://{tmp_path / 'v'}", **small_volume_params(info_scales=[res]))
    layer[res, 0:32, 0:32, 0:8] = 7
    assert (layer[res, 0:64, 0:64, 0:8][:, :32, :32] == 7).all()
    assert (layer[res, 32:64, 0:64, 0:8] == 0).all()
    _next_tick()
    other = build_cv_layer(f"file://{tmp_path / 'v'}")
    other[res, 32:64, 0:32, 0:8] = 9
    data = layer[res, 0:64, 0:64, 0:8]
    assert (data[:, 32:, :32] == 9).all()
    assert (data[:, :32, :32] == 7).all()
    assert np.count_nonzero(data[:, :, 32:]) == 0
    assert settled  # the reads went through listings
