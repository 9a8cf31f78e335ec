"""lamina-zarr against data written, and readers run, by other tools: zarr-python 3,
the ``ome-zarr`` library, TensorStore (``zarr``, ``zarr3``, ``n5`` drivers) and
``ome-zarr-models``; and a precomputed -> Zarr -> HDF5 -> precomputed round trip.

Expected values always come from the other tool (the array it was given, or what it reads
back), never from lamina reading what lamina wrote."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import numpy.typing as npt
import ome_zarr_models
import pytest
import tensorstore as ts
import zarr
from lamina_zarr import AxesError, build_zarr_layer
from ome_zarr.format import FormatV04, FormatV05
from ome_zarr.io import parse_url
from ome_zarr.reader import Label, Reader
from ome_zarr.writer import write_image, write_labels, write_multiscale
from ome_zarr_models.v04.image import Image as Image04
from ome_zarr_models.v04.image_label import ImageLabel as ImageLabel04
from ome_zarr_models.v05.image import Image as Image05
from ome_zarr_models.v05.image_label import ImageLabel as ImageLabel05
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

import lamina
from lamina import BBox3D, Vec3D
from lamina.testing import run_lamina

R = Vec3D(8, 8, 40)
PLAIN_RES = Vec3D(4, 5, 40)
UM = {a: "micrometer" for a in "zyx"}
OME_FORMATS = {"0.4": FormatV04(), "0.5": FormatV05()}
pytestmark = pytest.mark.filterwarnings("ignore:Scale value not provided:UserWarning")


def _random(shape: tuple[int, ...], dtype: str, seed: int = 0) -> npt.NDArray[Any]:
    """Values over the dtype's range (uint64 above 2**53: a float detour would show)."""
    rng = np.random.default_rng(seed)
    kind = np.dtype(dtype)
    if kind.kind == "f":
        return (rng.standard_normal(shape) * 1e3).astype(dtype)
    return rng.integers(0, np.iinfo(kind).max, shape, dtype=kind, endpoint=True)


def _as_lamina(stored: npt.NDArray[Any], axes: str) -> npt.NDArray[Any]:
    """A stored array of ``axes`` (``zyx`` or ``czyx``) as lamina's ``(C, X, Y, Z)``."""
    return (stored[np.newaxis] if axes == "zyx" else stored).transpose(0, 3, 2, 1)


def _strict_build(path: str | Path, **kwargs: Any) -> Any:
    """``build_zarr_layer`` that fails on a warning (an origin off the voxel grid)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        return build_zarr_layer(str(path), **kwargs)


# -- 1. plain arrays written by zarr-python ------------------------------------------------------
def _compressor(fmt: int, name: str) -> Any:
    if name == "raw":
        return None
    if fmt == 2:
        return {
            "blosc": numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
            "zstd": numcodecs.Zstd(level=3),
            "gzip": numcodecs.GZip(level=5),
        }[name]
    return {
        "blosc": BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle"),
        "zstd": ZstdCodec(level=3),
        "gzip": GzipCodec(level=5),
    }[name]


@pytest.mark.parametrize("axes", ["zyx", "czyx"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "uint64"])
@pytest.mark.parametrize("compression", ["blosc", "zstd", "gzip", "raw"])
@pytest.mark.parametrize("fmt", [2, 3])
def test_plain_zarr_python_arrays_read_voxel_for_voxel(
    fmt: int, compression: str, dtype: str, axes: str, tmp_path: Path
) -> None:
    shape = (6, 20, 30) if axes == "zyx" else (3, 6, 20, 30)
    chunks = (4, 8, 16) if axes == "zyx" else (3, 4, 8, 16)
    data = _random(shape, dtype)
    path = tmp_path / "plain.zarr"
    array = zarr.create_array(
        path,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        zarr_format=fmt,  # type: ignore[arg-type]
        compressors=_compressor(fmt, compression),
    )
    array[...] = data
    layer = build_zarr_layer(str(path), axes=axes, resolution=PLAIN_RES)
    backend = layer.backend
    assert backend.resolutions == (PLAIN_RES,)
    assert backend.num_channels == (1 if axes == "zyx" else 3)
    assert backend.dtype == np.dtype(dtype)
    assert backend.get_dataset_size(PLAIN_RES) == Vec3D(30, 20, 6)
    assert backend.get_chunk_size(PLAIN_RES) == Vec3D(16, 8, 4)
    assert backend.get_voxel_offset(PLAIN_RES) == Vec3D(0, 0, 0)
    assert backend.volume.scales[0].encoding == compression
    expected = _as_lamina(data, axes)
    whole = layer[PLAIN_RES, 0:30, 0:20, 0:6]
    assert whole.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(whole, expected)
    # a box across chunk borders, of a different length on each axis
    np.testing.assert_array_equal(layer[PLAIN_RES, 3:27, 5:17, 1:5], expected[:, 3:27, 5:17, 1:5])


@pytest.mark.parametrize("engine", ["tensorstore", "zarr-python"])
def test_sharded_v3_array_with_dimension_names(engine: str, tmp_path: Path) -> None:
    data = _random((8, 32, 48), "uint16", seed=1)
    path = tmp_path / "sharded.zarr"
    array = zarr.create_array(
        path,
        shape=data.shape,
        chunks=(2, 8, 8),
        shards=(4, 16, 16),
        dtype="uint16",
        dimension_names=["z", "y", "x"],
    )
    array[...] = data
    assert array.shards == (4, 16, 16)  # zarr-python did shard it
    # the axes come from dimension_names; the resolution must still be given
    layer = build_zarr_layer(str(path), resolution=PLAIN_RES, engine=engine)
    backend = layer.backend
    assert backend.volume.axes.letters == "zyx"
    assert backend.get_chunk_size(PLAIN_RES) == Vec3D(8, 8, 2)
    assert backend.get_write_grid_size(PLAIN_RES) == Vec3D(16, 16, 4)
    np.testing.assert_array_equal(layer[PLAIN_RES, 0:48, 0:32, 0:8], _as_lamina(data, "zyx"))
    np.testing.assert_array_equal(
        layer[PLAIN_RES, 7:41, 3:29, 1:7], _as_lamina(data, "zyx")[:, 7:41, 3:29, 1:7]
    )


def test_plain_array_without_axes_or_resolution_is_refused(tmp_path: Path) -> None:
    zarr.create_array(tmp_path / "v2.zarr", shape=(3, 4, 8, 8), dtype="uint8", zarr_format=2)
    named = zarr.create_array(
        tmp_path / "v3.zarr", shape=(4, 8, 8), dtype="uint8", dimension_names=["z", "y", "x"]
    )
    named[...] = 1
    with pytest.raises(AxesError, match=r"axes=.*resolution="):
        build_zarr_layer(str(tmp_path / "v2.zarr"))
    with pytest.raises(AxesError, match=r"resolution="):
        build_zarr_layer(str(tmp_path / "v2.zarr"), axes="czyx")
    with pytest.raises(AxesError, match=r"4 axis|4 axes|dimensions"):
        build_zarr_layer(str(tmp_path / "v2.zarr"), axes="zyx", resolution=PLAIN_RES)
    with pytest.raises(AxesError, match=r"resolution="):
        build_zarr_layer(str(tmp_path / "v3.zarr"))


@pytest.mark.parametrize("engine", ["tensorstore", "zarr-python"])
@pytest.mark.parametrize("fmt", [2, 3])
def test_fill_value_and_stored_layouts_of_zarr_python(
    fmt: int, engine: str, tmp_path: Path
) -> None:
    """Unwritten chunks read as the array's fill value; zarr-python's v2 ``order="F"``
    and big-endian arrays are read like any other."""
    path = tmp_path / "fill.zarr"
    array = zarr.create_array(
        path, shape=(4, 16, 16), chunks=(2, 8, 8), dtype="int16", fill_value=-7, zarr_format=fmt
    )  # type: ignore[call-overload]
    array[0:2, 0:8, 0:8] = 3  # one chunk of 8
    layer = build_zarr_layer(str(path), axes="zyx", resolution=PLAIN_RES, engine=engine)
    got = layer[PLAIN_RES, 0:16, 0:16, 0:4]
    assert got[0, 0, 0, 0] == 3
    assert got[0, 15, 15, 3] == -7
    np.testing.assert_array_equal(got, _as_lamina(np.asarray(array[...]), "zyx"))
    if fmt == 2:
        data = _random((6, 20, 30), "uint16", seed=2).astype(">u2")
        fortran = zarr.create_array(
            tmp_path / "f.zarr", shape=data.shape, chunks=(4, 8, 16), dtype=">u2", order="F",
            zarr_format=2,
        )  # fmt: skip
        fortran[...] = data
        assert json.loads((tmp_path / "f.zarr" / ".zarray").read_text())["order"] == "F"
        layer = build_zarr_layer(
            str(tmp_path / "f.zarr"), axes="zyx", resolution=PLAIN_RES, engine=engine
        )
        np.testing.assert_array_equal(layer[PLAIN_RES, 0:30, 0:20, 0:6], _as_lamina(data, "zyx"))


# -- 2. images written by ome-zarr ---------------------------------------------------------------
@pytest.mark.parametrize("axes", ["zyx", "czyx", "tczyx"])
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_write_image_pyramid_in_micrometres(
    version: str, axes: str, tmp_path: Path
) -> None:
    shape = {"zyx": (6, 32, 48), "czyx": (3, 6, 32, 48), "tczyx": (2, 3, 6, 32, 48)}[axes]
    data = _random(shape, "uint16", seed=3)
    path = str(tmp_path / "img.ome.zarr")
    fmt = OME_FORMATS[version]
    write_image(
        data, path, scale_factors=[2, 4], fmt=fmt, axes=axes,
        scale={"z": 0.04, "y": 0.008, "x": 0.008}, axes_units=UM,
    )  # fmt: skip
    if axes == "tczyx":
        with pytest.raises(AxesError, match="time_index="):
            build_zarr_layer(path)
        layer = _strict_build(path, time_index=1)
    else:
        with pytest.raises(AxesError, match="time_index"):
            build_zarr_layer(path, time_index=0)
        layer = _strict_build(path)
    backend = layer.backend
    assert backend.volume.ome_version == version
    assert backend.volume.format == fmt.zarr_format
    assert backend.volume_type == "image"
    # ome-zarr's integer scale factors halve y and x only
    levels = (R, Vec3D(16, 16, 40), Vec3D(32, 32, 40))
    assert backend.resolutions == levels
    assert backend.num_channels == (3 if "c" in axes else 1)
    assert backend.get_bounds(R).bbox == BBox3D.from_coords((0, 0, 0), (48, 32, 6), R)
    for k, res in enumerate(levels):
        assert backend.get_voxel_offset(res) == Vec3D(0, 0, 0)
        stored = np.asarray(zarr.open_array(f"{path}/s{k}", mode="r")[...])
        if axes == "tczyx":
            stored = stored[1]
        expected = _as_lamina(stored, "zyx" if axes == "zyx" else "czyx")
        _, x, y, z = expected.shape
        assert backend.get_dataset_size(res) == Vec3D(x, y, z)
        np.testing.assert_array_equal(layer[res, 0:x, 0:y, 0:z], expected)


def _pyramid(data: npt.NDArray[Any]) -> list[npt.NDArray[Any]]:
    return [data, data[:, :, ::2, ::2], data[:, ::2, ::4, ::4]]


@pytest.mark.parametrize("engine", ["tensorstore", "zarr-python"])
@pytest.mark.parametrize(("unit", "per_nm"), [("micrometer", 1e-3), ("angstrom", 10.0)])
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_translations_and_units(
    version: str, unit: str, per_nm: float, engine: str, tmp_path: Path
) -> None:
    """A pyramid with an origin (ome-zarr's ``write_multiscale`` with its transformations,
    pixel-centre convention): lamina's voxel offsets and box match the translation."""
    data = _random((2, 6, 32, 48), "uint8", seed=4)
    levels = (R, Vec3D(16, 16, 40), Vec3D(32, 32, 80))
    offset = (8, 4, 2)  # finest voxels, x y z
    transforms = []
    for res in levels:
        centre = [o * f + (r - f) / 2 for o, r, f in zip(offset, res, R, strict=True)]
        transforms.append(
            [
                {"type": "scale", "scale": [1.0, *(r * per_nm for r in res[::-1])]},
                {"type": "translation", "translation": [0.0, *(t * per_nm for t in centre[::-1])]},
            ]
        )
    path = str(tmp_path / "img.ome.zarr")
    fmt = OME_FORMATS[version]
    group = zarr.open_group(path, mode="w", zarr_format=fmt.zarr_format)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # coordinate_transformations
        write_multiscale(
            _pyramid(data), group, fmt=fmt, axes="czyx", coordinate_transformations=transforms,
            axes_units={a: unit for a in "zyx"},
        )  # fmt: skip
    written = zarr.open_group(path, mode="r").attrs.asdict()
    multiscale = (written["ome"] if version == "0.5" else written)["multiscales"][0]
    t0 = multiscale["datasets"][0]["coordinateTransformations"][1]["translation"]
    layer = _strict_build(path, engine=engine)
    backend = layer.backend
    assert backend.resolutions == levels
    assert [backend.get_voxel_offset(r) for r in levels] == [(8, 4, 2), (4, 2, 2), (2, 1, 1)]
    bbox = backend.get_bounds(R).bbox
    assert bbox == BBox3D.from_coords((8, 4, 2), (8 + 48, 4 + 32, 2 + 6), R)
    assert bbox.start == pytest.approx([t0[3] / per_nm, t0[2] / per_nm, t0[1] / per_nm])
    for res, level in zip(levels, _pyramid(data), strict=True):
        o = backend.get_voxel_offset(res)
        _, z, y, x = level.shape
        got = layer[res, o[0] : o[0] + x, o[1] : o[1] + y, o[2] : o[2] + z]
        np.testing.assert_array_equal(got, _as_lamina(level, "czyx"))
    # outside the image (below its origin) reads zeros
    assert not layer[R, 0:8, 0:4, 0:2].any()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # write_labels' own Scaler
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_labels_read_as_a_segmentation(version: str, tmp_path: Path) -> None:
    fmt = OME_FORMATS[version]
    path = str(tmp_path / "img.ome.zarr")
    write_image(_random((6, 32, 48), "uint8"), path, scale_factors=[2], fmt=fmt, axes="zyx")
    labels = np.random.default_rng(5).integers(0, 2**40, (6, 32, 48), dtype="uint64")
    write_labels(labels, zarr.open_group(path, mode="a"), name="cells", fmt=fmt, axes="zyx")
    layer = _strict_build(f"{path}/labels/cells")
    assert layer.backend.volume_type == "segmentation"
    assert layer.backend.dtype == np.dtype("uint64")
    res = layer.backend.resolutions[0]
    assert res == Vec3D(1, 1, 1)  # no scale, no unit: 1 nm
    np.testing.assert_array_equal(layer[res, 0:48, 0:32, 0:6], _as_lamina(labels, "zyx"))


@pytest.mark.parametrize("version", ["0.4", "0.5", None])
def test_a_level_added_to_an_ome_zarr_image_keeps_it_valid(
    version: str | None, tmp_path: Path
) -> None:
    """lamina's ``add_resolutions`` on ome-zarr's image (in micrometres; ``None``: the
    library's default format): the old levels keep their place, ome-zarr and
    ome-zarr-models read the new one."""
    path = str(tmp_path / "img.ome.zarr")
    data = _random((6, 32, 64), "uint8", seed=9)
    fmt = None if version is None else OME_FORMATS[version]
    write_image(
        data, path, scale_factors=[2], fmt=fmt, axes="zyx",
        scale={"z": 0.04, "y": 0.008, "x": 0.008}, axes_units=UM,
    )  # fmt: skip
    backend = _strict_build(path).backend
    expected_version = version or "0.5"  # ome-zarr writes 0.5 (Zarr v3) by default
    assert backend.volume.ome_version == expected_version
    added = backend.add_resolutions([(32, 32, 40)])
    assert added.resolutions == (R, Vec3D(16, 16, 40), Vec3D(32, 32, 40))
    layer = _strict_build(path)
    assert layer.backend.volume.name == "image"  # ome-zarr's name is kept
    np.testing.assert_array_equal(layer[R, 0:64, 0:32, 0:6], _as_lamina(data, "zyx"))
    node = next(iter(Reader(parse_url(path))()))  # type: ignore[arg-type]
    assert len(node.data) == 3
    assert node.data[2].shape == (6, 8, 16)
    transforms = node.metadata["coordinateTransformations"]
    assert [t[0]["scale"] for t in transforms] == [[40, 8, 8], [40, 16, 16], [40, 32, 32]]
    assert [t[1]["translation"] for t in transforms] == [[0, 0, 0], [0, 4, 4], [0, 12, 12]]
    group = zarr.open_group(path, mode="r")
    model = ome_zarr_models.open_ome_zarr(group, version=expected_version)  # type: ignore[arg-type]
    assert isinstance(model, Image04 if expected_version == "0.4" else Image05)


# -- 3. volumes written by lamina, read by the others ---------------------------------------------
CASES = [
    (2, "image", None),
    (2, "segmentation", None),
    (3, "image", None),
    (3, "image", (32, 32, 4)),
    (3, "segmentation", (32, 32, 4)),
]
OFFSET = (16, 32, 2)
SIZE = (64, 32, 8)


def _lamina_volume(
    path: Path, fmt: int, kind: str, shard: tuple[int, int, int] | None
) -> list[npt.NDArray[Any]]:
    """A lamina volume of three levels (the third added by ``add_resolutions``), each
    filled with its own random data; that data as stored ``(c, z, y, x)``, per level."""
    dtype = "uint16" if kind == "image" else "uint64"
    layer = build_zarr_layer(
        str(path),
        zarr_format=fmt,
        info_type=kind,
        info_data_type=dtype,
        info_num_channels=1,
        info_chunk_size=(16, 16, 2),
        info_shard_size=shard,
        info_bbox=BBox3D.from_coords(OFFSET, [o + s for o, s in zip(OFFSET, SIZE, strict=True)], R),
        info_scales=[R, (16, 16, 40)],
    )
    layer.backend.add_resolutions([(32, 32, 40)])
    layer = build_zarr_layer(str(path))  # as stored, the added level included
    stored = []
    for k, res in enumerate(layer.backend.resolutions):
        o, n = layer.backend.get_voxel_offset(res), layer.backend.get_dataset_size(res)
        data = _random((1, *n), dtype, seed=10 + k)  # lamina's (C, X, Y, Z)
        layer[res, o[0] : o[0] + n[0], o[1] : o[1] + n[1], o[2] : o[2] + n[2]] = data
        stored.append(data.transpose(0, 3, 2, 1))
    return stored


@pytest.mark.parametrize(("fmt", "kind", "shard"), CASES)
def test_zarr_python_and_tensorstore_read_lamina_volumes(
    fmt: int, kind: str, shard: tuple[int, int, int] | None, tmp_path: Path
) -> None:
    path = tmp_path / "lamina.ome.zarr"
    stored = _lamina_volume(path, fmt, kind, shard)
    group = zarr.open_group(path, mode="r")
    assert group.metadata.zarr_format == fmt
    assert sorted(group.array_keys()) == ["s0", "s1", "s2"]
    for k, expected in enumerate(stored):
        array = group[f"s{k}"]
        assert isinstance(array, zarr.Array)
        assert array.shape == (1, 8, SIZE[1] >> k, SIZE[0] >> k)  # c, z, y, x
        assert array.chunks == (1, 2, 16, 16)
        assert array.shards == (None if shard is None else (1, 4, 32, 32))
        np.testing.assert_array_equal(np.asarray(array[...]), expected)
        driver = "zarr3" if fmt == 3 else "zarr"
        spec = {"driver": driver, "kvstore": {"driver": "file", "path": str(path / f"s{k}")}}
        handle = ts.open(spec, read=True, open=True).result()
        assert handle.dtype.numpy_dtype == expected.dtype
        if fmt == 3:
            assert handle.domain.labels == ("c", "z", "y", "x")
        np.testing.assert_array_equal(handle.read().result(), expected)


@pytest.mark.parametrize(("fmt", "kind", "shard"), CASES)
def test_ome_zarr_reader_and_models_accept_lamina_volumes(
    fmt: int, kind: str, shard: tuple[int, int, int] | None, tmp_path: Path
) -> None:
    path = tmp_path / "lamina.ome.zarr"
    stored = _lamina_volume(path, fmt, kind, shard)
    nodes = list(Reader(parse_url(str(path)))())  # type: ignore[arg-type]
    assert nodes, "ome-zarr found no image"
    node = nodes[0]
    assert len(node.data) == 3
    axes = node.metadata["axes"]
    assert [a["name"] for a in axes] == ["c", "z", "y", "x"]
    assert [a.get("unit") for a in axes] == [None, "nanometer", "nanometer", "nanometer"]
    assert any(isinstance(spec, Label) for spec in node.specs) == (kind == "segmentation")
    for k, expected in enumerate(stored):
        s = 8 * 2**k
        centre = [o * 8 + (s - 8) / 2 for o in OFFSET[:2]]
        assert node.metadata["coordinateTransformations"][k] == [
            {"type": "scale", "scale": [1.0, 40.0, s, s]},
            {"type": "translation", "translation": [0.0, OFFSET[2] * 40, centre[1], centre[0]]},
        ]
        np.testing.assert_array_equal(np.asarray(node.data[k]), expected)
    # ome-zarr-models: the metadata validates as the version and kind lamina claims
    group = zarr.open_group(path, mode="r")
    version = "0.4" if fmt == 2 else "0.5"
    model = ome_zarr_models.open_ome_zarr(group, version=version)  # type: ignore[arg-type]
    label_class, image_class = (ImageLabel04, Image04) if fmt == 2 else (ImageLabel05, Image05)
    assert isinstance(model, label_class if kind == "segmentation" else image_class)
    image = image_class.from_zarr(group)  # a label image is an image too
    datasets = image.datasets[0]
    assert [d.path for d in datasets] == ["s0", "s1", "s2"]


@pytest.mark.parametrize("encoding", ["zstd", "blosc", "gzip", "raw"])
@pytest.mark.parametrize("fmt", [2, 3])
def test_lamina_encodings_decode_in_zarr_python(fmt: int, encoding: str, tmp_path: Path) -> None:
    path = tmp_path / "enc.ome.zarr"
    layer = build_zarr_layer(
        str(path),
        zarr_format=fmt,
        info_type="image",
        info_data_type="float32",
        info_num_channels=3,
        info_chunk_size=(16, 16, 2),
        info_encoding=encoding,
        info_bbox=BBox3D.from_coords((0, 0, 0), (32, 16, 4), R),
        info_scales=[R],
    )
    data = _random((3, 32, 16, 4), "float32", seed=6)
    layer[R, 0:32, 0:16, 0:4] = data
    array = zarr.open_array(path / "s0", mode="r")
    assert array.shape == (3, 4, 16, 32)
    names = [type(c).__name__.lower() for c in array.compressors]
    if encoding == "raw":
        assert names == []
    else:
        assert len(names) == 1
        assert names[0].startswith(encoding)
    np.testing.assert_array_equal(np.asarray(array[...]), data.transpose(0, 3, 2, 1))


# -- 4. N5 written by TensorStore ----------------------------------------------------------------
def _n5(path: Path, **extra: Any) -> npt.NDArray[Any]:
    data = _random((30, 20, 6), "uint16", seed=7)  # N5 order: x, y, z
    spec: dict[str, Any] = {
        "driver": "n5",
        "kvstore": {"driver": "file", "path": str(path)},
        "metadata": {
            "dimensions": [30, 20, 6],
            "blockSize": [16, 8, 4],
            "dataType": "uint16",
            "compression": {"type": "gzip"},
            **extra.pop("metadata", {}),
        },
        **extra,
    }
    ts.open(spec, create=True, delete_existing=True).result()[...] = data
    return data


def _check_n5(layer: Any, data: npt.NDArray[Any], res: Vec3D[float]) -> None:
    assert layer.backend.resolutions == (res,)
    assert layer.backend.get_dataset_size(res) == Vec3D(30, 20, 6)
    assert layer.backend.get_chunk_size(res) == Vec3D(16, 8, 4)
    np.testing.assert_array_equal(layer[res, 0:30, 0:20, 0:6], data[np.newaxis])
    np.testing.assert_array_equal(layer[res, 3:29, 2:9, 1:5], data[np.newaxis, 3:29, 2:9, 1:5])


def test_n5_with_resolution_attribute(tmp_path: Path) -> None:
    path = tmp_path / "c.n5" / "raw"
    data = _n5(path, schema={"dimension_units": ["4nm", "5nm", "40nm"]})
    attributes = json.loads((path / "attributes.json").read_text())
    assert attributes["resolution"] == [4, 5, 40]  # TensorStore wrote it
    _check_n5(build_zarr_layer(str(path)), data, Vec3D(4, 5, 40))
    _check_n5(build_zarr_layer(f"n5://{path}"), data, Vec3D(4, 5, 40))


def test_n5_with_pixel_resolution_in_micrometres(tmp_path: Path) -> None:
    path = tmp_path / "c.n5" / "raw"
    pixel = {"dimensions": [0.004, 0.005, 0.04], "unit": "um"}
    data = _n5(path, metadata={"pixelResolution": pixel})
    assert json.loads((path / "attributes.json").read_text())["pixelResolution"] == pixel
    _check_n5(build_zarr_layer(f"n5://{path}"), data, Vec3D(4, 5, 40))


def test_n5_resolution_with_units_written_by_tensorstore(tmp_path: Path) -> None:
    path = tmp_path / "c.n5" / "um"
    data = _n5(path, schema={"dimension_units": ["0.004um", "0.005um", "0.04um"]})
    attributes = json.loads((path / "attributes.json").read_text())
    assert attributes["units"] == ["um", "um", "um"]
    _check_n5(build_zarr_layer(f"n5://{path}"), data, Vec3D(4, 5, 40))


# -- 5. precomputed -> Zarr -> HDF5 -> precomputed -----------------------------------------------
def test_copy_precomputed_zarr_hdf5_precomputed_round_trip(tmp_path: Path) -> None:
    env = {"LAMINA_JOURNAL_DIR": str(tmp_path / "journals")}
    offset, size = (32, 64, 8), (96, 64, 8)
    src = lamina.build_cv_layer(
        str(tmp_path / "src"),
        default_desired_resolution=R,
        index_resolution=R,
        info_type="image",
        info_data_type="uint16",
        info_num_channels=2,
        info_chunk_size=(32, 32, 4),
        info_scales=[R],
        info_encoding="raw",
        info_bbox=BBox3D.from_coords(offset, [o + s for o, s in zip(offset, size, strict=True)], R),
    )
    data = _random((2, *size), "uint16", seed=8)
    src[32:128, 64:128, 8:16] = data
    for a, b in [("src", "mid.zarr"), ("mid.zarr", "mid.h5:/img"), ("mid.h5:/img", "back")]:
        done = run_lamina("copy", a, b, "--quiet", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    # the Zarr step as zarr-python sees it: (c, z, y, x), the origin in nm
    mid = zarr.open_group(tmp_path / "mid.zarr", mode="r")
    np.testing.assert_array_equal(np.asarray(mid["s0"][...]), data.transpose(0, 3, 2, 1))
    multiscale = mid.attrs["ome"]["multiscales"][0]  # type: ignore[index,call-overload]
    translation = multiscale["datasets"][0]["coordinateTransformations"][1]["translation"]
    assert translation == [0.0, 8 * 40, 64 * 8, 32 * 8]
    h5 = lamina.build_h5_layer(f"{tmp_path / 'mid.h5'}:/img")
    assert h5.backend.get_voxel_offset(R) == Vec3D(*offset)
    back = lamina.build_cv_layer(str(tmp_path / "back"))
    assert back.backend.resolutions == (R,)
    assert back.backend.get_voxel_offset(R) == Vec3D(*offset)
    assert back.backend.get_dataset_size(R) == Vec3D(*size)
    assert back.backend.num_channels == 2
    assert back.backend.dtype == np.dtype("uint16")
    np.testing.assert_array_equal(back[R, 32:128, 64:128, 8:16], data)
    start = json.loads((tmp_path / "src" / "info").read_text())["scales"][0]
    end = json.loads((tmp_path / "back" / "info").read_text())["scales"][0]
    assert {k: end[k] for k in ("resolution", "voxel_offset", "size")} == {
        k: start[k] for k in ("resolution", "voxel_offset", "size")
    }
