"""The distribution and its commands: ``lamina view``, ``lamina preview``, ``lamina plugins``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_view.cli import local_part
from PIL import Image
from view_support import (
    RES,
    hdf5_layer,
    memory_layer,
    pattern,
    precomputed_layer,
    segments,
    zarr_layer,
)

import lamina
from lamina.cli import main
from lamina.testing import plugin_listing


def _lamina(*args: str, env: dict[str, str] | None = None, code: str | None = None) -> Any:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "lamina"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_listed_by_lamina_plugins() -> None:
    record = plugin_listing()["lamina-view"]
    assert record["error"] is None
    assert record["entry_point"].startswith("view")
    assert record["names"]["names"] == ["view"]
    assert sorted(record["names"]["commands"]) == ["preview", "view"]
    text = _lamina("plugins").stdout
    assert "lamina-view 0.1.0  [ok]" in text


def test_discovery_imports_nothing_heavy() -> None:
    code = (
        "import sys, lamina, lamina_view, lamina_view.hooks; "
        "lamina.plugins.manager.get_host(); lamina.view; "
        "heavy = {'neuroglancer', 'tornado', 'PIL', 'selenium'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("path", "local"),
    [
        ("vol", "vol"),
        ("precomputed://vol", "vol"),
        ("precomputed://file:///data/vol", "/data/vol"),
        ("file:///data/vol", "/data/vol"),
        ("a.h5:/raw", "a.h5"),
        ("hdf5://a.h5", "a.h5"),
        ("gs://bucket/vol", None),
        ("precomputed://s3://bucket/vol", None),
        ("mem://x", None),
    ],
)
def test_local_part(path: str, local: str | None) -> None:
    assert local_part(path) == local


# -- lamina view: errors -------------------------------------------------------------------
def _one_line_error(out: Any, *needles: str, status: int = 1) -> None:
    assert out.returncode == status, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("lamina view: error: "), out.stderr
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_view_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing-here"
    assert main(["view", str(missing), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"lamina view: error: {missing}: no such file or directory"
    assert main(["view", f"{tmp_path}/absent.h5:/raw", "--no-browser"]) == 1
    assert "absent.h5:/raw: no such file or directory" in capsys.readouterr().err


def test_view_an_unrecognised_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "just-a-dir"
    plain.mkdir()
    assert main(["view", str(plain), "--no-browser"]) == 2  # the command line names no volume
    err = capsys.readouterr().err
    assert err.startswith(f"lamina view: error: no installed path opener recognises '{plain}'")


def test_view_names_the_plugin_to_install(tmp_path: Path) -> None:
    h5 = tmp_path / "vol.h5"
    hdf5_layer(h5, pattern())
    out = _lamina("view", str(h5), "--no-browser", env={"LAMINA_DISABLED_PLUGINS": "lamina-hdf5"})
    _one_line_error(out, str(h5), "pip install lamina-hdf5", status=2)


def test_view_without_neuroglancer(tmp_path: Path) -> None:
    layer_path = tmp_path / "vol"
    precomputed_layer(layer_path, pattern())
    code = (
        "import sys; sys.modules['neuroglancer'] = None; "
        "from lamina.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    out = _lamina("view", str(layer_path), "--no-browser", code=code)
    _one_line_error(out, "neuroglancer", "pip install lamina-view")


def test_view_a_file_of_several_volumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h5 = tmp_path / "two.h5"
    for name in ("raw", "seg"):
        lamina.build_h5_layer(
            str(h5),
            name,
            info_type="image",
            info_data_type="uint8",
            info_num_channels=1,
            info_chunk_size=(64, 64, 16),
            info_bbox=lamina.BBox3D.from_coords((0, 0, 0), (64, 64, 16), RES),
            info_scales=[RES],
        )
    assert main(["view", str(h5), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert "is not a volumetric layer" in err
    assert f"{h5}:/raw" in err
    assert f"{h5}:/seg" in err


# -- lamina view: serving ------------------------------------------------------------------
def _serve(*args: str, merged: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lamina", "view", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
    )


def _read_url(process: subprocess.Popen[str], before: list[str] | None = None) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("http://"):
            return line.strip()
        if before is not None:
            before.append(line)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"no URL printed; stderr: {process.communicate(timeout=30)[1]}")


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)  # Ctrl-C
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, err


def test_view_serves_until_ctrl_c(tmp_path: Path) -> None:
    precomputed_layer(tmp_path / "vol", pattern())
    hdf5_layer(tmp_path / "vol.h5", pattern())
    process = _serve(str(tmp_path / "vol"), f"{tmp_path / 'vol.h5'}:/raw", "--no-browser")
    try:
        url = _read_url(process)
        assert url.startswith("http://127.0.0.1:")
        assert "/v/" in url
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
    finally:
        code, err = _stop(process)
    assert code == 0, err
    assert "warning" not in err
    assert "Traceback" not in err


def test_view_on_another_address_warns_first(tmp_path: Path) -> None:
    precomputed_layer(tmp_path / "vol", pattern())
    process = _serve(str(tmp_path / "vol"), "--no-browser", "--bind", "0.0.0.0", merged=True)
    before: list[str] = []
    try:
        url = _read_url(process, before)
        port = int(url.split(":")[2].split("/")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{url.split('/', 3)[3]}", timeout=30):
            pass
    finally:
        code, out = _stop(process)
    assert code == 0, out
    warning = "warning: serving on 0.0.0.0: anyone who can reach this address can read"
    assert any(warning in line for line in before), before  # printed before the URL


def test_view_on_a_port_in_use(tmp_path: Path) -> None:
    import socket

    precomputed_layer(tmp_path / "vol", pattern())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _lamina("view", str(tmp_path / "vol"), "--no-browser", "--port", str(port))
    _one_line_error(out, f"cannot serve on 127.0.0.1:{port}")


# -- lamina preview ------------------------------------------------------------------------
def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_preview_is_the_slice_pixel_for_pixel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = pattern()
    data[0, :, :, :] += np.arange(256, dtype=np.uint8)[:, None, None] % 7  # x varies
    precomputed_layer(tmp_path / "vol", data)
    out = tmp_path / "slice.png"
    assert main(["preview", str(tmp_path / "vol"), "--out", str(out)]) == 0
    assert "z=16" in capsys.readouterr().out  # default: offset_z + size_z // 2
    image = _png(out)
    assert image.dtype == np.uint8
    assert image.shape == (256, 256)
    np.testing.assert_array_equal(image, data[0, :, :, 16].T)
    assert image[40, 30] == data[0, 30, 40, 16]
    assert main(["preview", str(tmp_path / "vol"), "--out", str(out), "--z", "3"]) == 0
    np.testing.assert_array_equal(_png(out), data[0, :, :, 3].T)
    coarse = ["--resolution", "16,16,40", "--z", "20"]
    assert main(["preview", str(tmp_path / "vol"), "--out", str(out), *coarse]) == 0
    np.testing.assert_array_equal(_png(out), data[0, ::2, ::2, 20].T)


def test_preview_of_hdf5_with_an_offset(tmp_path: Path) -> None:
    data = pattern()
    path = tmp_path / "off.h5"
    hdf5_layer(path, data, offset=(100, 200, 1000))
    out = tmp_path / "slice.png"
    assert main(["preview", f"{path}:/raw", "--out", str(out), "--z", "1020"]) == 0
    np.testing.assert_array_equal(_png(out), data[0, :, :, 20].T)


def test_preview_and_view_of_an_ome_zarr_image(tmp_path: Path) -> None:
    data = pattern()
    path = tmp_path / "off.ome.zarr"
    zarr_layer(path, data, offset=(100, 200, 1000))
    out = tmp_path / "slice.png"
    assert main(["preview", str(path), "--out", str(out), "--z", "1020"]) == 0
    np.testing.assert_array_equal(_png(out), data[0, :, :, 20].T)
    process = _serve(str(path), "--no-browser")
    try:
        url = _read_url(process)
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
    finally:
        code, err = _stop(process)
    assert code == 0, err
    assert "Traceback" not in err


def test_preview_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    precomputed_layer(tmp_path / "vol", pattern())
    out = str(tmp_path / "s.png")
    assert main(["preview", str(tmp_path / "vol"), "--out", out, "--z", "32"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lamina preview: error: ")
    assert "z=32 is outside" in err
    assert "0..31" in err
    assert main(["preview", str(tmp_path / "missing"), "--out", out]) == 1
    assert "missing: no such file or directory" in capsys.readouterr().err
    bad = str(tmp_path / "no-dir" / "s.png")
    assert main(["preview", str(tmp_path / "vol"), "--out", bad]) == 1
    assert "cannot write" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["preview", str(tmp_path / "vol"), "--out", out, "--resolution", "8,8"])
    assert exc.value.code == 2
    assert "expected X,Y,Z" in capsys.readouterr().err


def test_preview_segmentation_in_distinct_colours(tmp_path: Path) -> None:
    seg = segments(np.uint64)
    seg[0, 0:10, 0:10, :] = 2**40 + 7  # a large id
    precomputed_layer(tmp_path / "seg", seg, volume_type="segmentation")
    out = tmp_path / "seg.png"
    assert main(["preview", str(tmp_path / "seg"), "--out", str(out)]) == 0
    rgb = _png(out)
    assert rgb.shape == (256, 256, 3)
    ids = seg[0, :, :, 16].T
    colour_of: dict[int, tuple[int, ...]] = {}
    for value in np.unique(ids):
        colours = np.unique(rgb[ids == value], axis=0)
        assert len(colours) == 1, f"id {value} has one colour"
        colour_of[int(value)] = tuple(int(c) for c in colours[0])
    assert colour_of[0] == (0, 0, 0)
    assert len(set(colour_of.values())) == len(colour_of), colour_of
    # The same id gets the same colour in another volume.
    other = lamina_view_render(memory_layer(segments(np.uint32)))
    assert tuple(int(c) for c in other[40, 40]) == colour_of[7]


def lamina_view_render(layer: Any) -> np.ndarray:
    from lamina_view import render_slice

    return np.asarray(render_slice(layer))


@pytest.mark.parametrize(
    ("dtype", "values", "expected"),
    [
        ("uint16", [0, 1000, 65535], [0, 1000, 65535]),  # 16-bit grey, unchanged
        ("bool", [0, 1, 1], [0, 255, 255]),
        ("float32", [-1.0, 0.5, 2.0], [0, 128, 255]),  # [0, 1], clipped
        ("int8", [-128, 0, 127], [0, 128, 255]),  # the dtype's whole range
    ],
)
def test_preview_keeps_image_contrast_as_stored(
    dtype: str, values: list[Any], expected: list[int]
) -> None:
    from lamina_view import render_slice

    data = np.zeros((1, 256, 256, 32), dtype=dtype)
    for i, v in enumerate(values):
        data[0, i, 0, :] = v
    layer = memory_layer(data, volume_type="image")
    image = np.asarray(render_slice(layer, z=0))
    assert [int(image[0, i]) for i in range(3)] == expected
