"""Screenshots in a real headless Chromium match the data (every wait has a timeout)."""

from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_view import ScreenshotTimeoutError
from lamina_view.browser import HeadlessChromium
from view_support import (
    SEGMENTS,
    SHOT,
    assert_shows_slice,
    hdf5_layer,
    memory_layer,
    pattern,
    pixels,
    precomputed_layer,
    segments,
    show_xy,
    voxel_window,
    zarr_layer,
)

TIMEOUT = 90  # s: SwiftShader on a busy 2-core machine; a broken browser fails, never hangs


def _whole_chunks_only(view: Any) -> None:
    """Every served chunk is a block of whole storage chunks on the storage grid."""
    for source in view.sources.values():
        assert source.served, "nothing was served"
        for chunk in source.served:
            scale = source.scales[chunk.scale_key]
            for d in range(3):
                end = scale.voxel_offset[d] + scale.size[d]
                step = scale.storage_chunk_size[d]
                assert (chunk.start[d] - scale.voxel_offset[d]) % step == 0
                assert (chunk.stop[d] - scale.voxel_offset[d]) % step == 0 or chunk.stop[d] == end


def test_precomputed_volume_and_a_second_slice(tmp_path: Path, make_view: Any) -> None:
    data = pattern()
    view = make_view(precomputed_layer(tmp_path / "vol", data))
    show_xy(view, 8)
    assert_shows_slice(view.screenshot(SHOT, timeout=TIMEOUT), data, 8)
    source = view.sources["vol"]
    # On demand: only the chunks holding slice z=8 (z 0..15), at the scales drawn.
    assert {c.start[2] for c in source.served} == {0}
    served_first = len(source.served)
    show_xy(view, 20)  # another z: the squares of the upper slices
    assert_shows_slice(view.screenshot(SHOT, timeout=TIMEOUT), data, 20)
    assert {c.start[2] for c in list(source.served)[served_first:]} == {16}
    _whole_chunks_only(view)
    assert {c.scale_key for c in source.served} <= {"8_8_40", "16_16_40"}
    assert any(c.scale_key == "8_8_40" for c in source.served), "one voxel per pixel: finest"


def test_hdf5_volume(tmp_path: Path, make_view: Any) -> None:
    data = pattern()
    view = make_view({"em": hdf5_layer(tmp_path / "vol.h5", data)})
    show_xy(view, 3)
    assert_shows_slice(view.screenshot(SHOT, timeout=TIMEOUT), data, 3)
    _whole_chunks_only(view)


def test_zarr_volume(tmp_path: Path, make_view: Any) -> None:
    data = pattern()
    view = make_view({"em": zarr_layer(tmp_path / "vol.ome.zarr", data)})
    show_xy(view, 5)
    assert_shows_slice(view.screenshot(SHOT, timeout=TIMEOUT), data, 5)
    _whole_chunks_only(view)


def test_in_memory_layer(make_view: Any) -> None:
    data = pattern()
    view = make_view({"mem": memory_layer(data)})
    show_xy(view, 31)
    assert_shows_slice(view.screenshot(SHOT, timeout=TIMEOUT), data, 31)


def test_segmentation_ids_in_distinct_colours(make_view: Any) -> None:
    layer = memory_layer(segments(np.uint32))  # no volume_type: uint32 means segmentation
    view = make_view({"seg": layer})
    assert view.viewer.state.layers["seg"].type == "segmentation"
    show_xy(view, 5)
    image = pixels(view.screenshot(SHOT, timeout=TIMEOUT))
    rows, cols, ys, xs = voxel_window()
    colours = {}
    for x0, x1, y0, y1, seg in SEGMENTS:
        x, y = (x0 + x1) // 2, (y0 + y1) // 2
        block = image[rows, cols][
            y0 - ys.start + 2 : y1 - ys.start - 2, x0 - xs.start + 2 : x1 - xs.start - 2, :3
        ]
        flat = block.reshape(-1, 3)
        assert (flat == flat[0]).all(), f"segment {seg} is one colour"
        colours[seg] = tuple(int(v) for v in image[rows, cols][y - ys.start, x - xs.start, :3])
    background = tuple(int(v) for v in image[rows, cols][5, 5, :3])  # id 0: not drawn
    assert len(set(colours.values())) == len(SEGMENTS), colours
    assert background not in colours.values()


def test_default_state_and_a_connected_browser(make_view: Any, chromium: str) -> None:
    data = pattern()
    view = make_view({"img": memory_layer(data)})
    state = view.viewer.state
    assert list(state.position) == [128, 128, 16]  # the centre of the bounds
    assert list(state.dimensions.names) == ["x", "y", "z"]
    # nm per voxel, as neuroglancer stores it (in metres; it displays nm)
    assert list(state.dimensions.units) == ["m", "m", "m"]
    assert list(state.dimensions.scales) == pytest.approx([8e-9, 8e-9, 40e-9])
    assert "layout" not in state.to_json()
    assert "crossSectionScale" not in state.to_json()
    browser = HeadlessChromium(view.url, binary=chromium)
    try:
        assert view.wait_for_client(TIMEOUT), browser.log_tail()
        assert view.connected_clients == 1
        png = view.screenshot((800, 600), timeout=TIMEOUT)
        assert view._browser is None, "the connected browser took it: none was started"
    finally:
        browser.stop()
    image = pixels(png)
    assert image.shape == (600, 800, 4)
    xy_panel = image[:300, :400, 0]  # neuroglancer's default 4-panel layout: xy top left
    assert (xy_panel >= 245).sum() > 50, "the bright square of slice z=16 is not shown"
    deadline = time.monotonic() + 30
    while view.connected_clients and time.monotonic() < deadline:
        time.sleep(0.05)
    assert view.connected_clients == 0


def _fake_browser(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-chromium"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_screenshot_times_out_instead_of_hanging(tmp_path: Path, make_view: Any) -> None:
    view = make_view(memory_layer(pattern()))
    hung = _fake_browser(tmp_path, "exec sleep 60")  # starts, never connects
    start = time.monotonic()
    with pytest.raises(ScreenshotTimeoutError, match=r"no screenshot within 1\.5 s"):
        view.screenshot((200, 100), timeout=1.5, browser=hung)
    assert time.monotonic() - start < 10


def test_a_browser_that_exits_fails_fast(tmp_path: Path, make_view: Any) -> None:
    view = make_view(memory_layer(pattern()))
    broken = _fake_browser(tmp_path, "echo 'cannot start: no display' >&2; exit 3")
    start = time.monotonic()
    with pytest.raises(ScreenshotTimeoutError, match=r"exited \(code 3\)(.|\n)*cannot start"):
        view.screenshot((200, 100), timeout=60, browser=broken)
    assert time.monotonic() - start < 10
