"""VolumetricLayer and build_volumetric_layer: reads, writes, data conversion, resampling."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lamina import (
    BBox3D,
    JointIndexDataProcessor,
    MemoryVolumetricBackend,
    UnsupportedOperationError,
    Vec3D,
    VolumetricIndex,
    VolumetricLayer,
    build_constant_volumetric_layer,
    build_memory_volumetric_layer,
    build_volumetric_layer,
)

RES = Vec3D(4, 4, 40)


def make_layer(**kwargs: Any) -> VolumetricLayer:
    kwargs.setdefault("default_desired_resolution", RES)
    return build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (256, 256, 400)),
        resolutions=[(4, 4, 40), (8, 8, 40), (16, 16, 40)],
        chunk_size=(16, 16, 2),
        **kwargs,
    )


class FakeTensor:
    """Looks like a torch tensor to lamina (its type's module is ``torch``)."""

    __module__ = "torch"

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.calls: list[str] = []

    def detach(self) -> FakeTensor:
        self.calls.append("detach")
        return self

    def cpu(self) -> FakeTensor:
        self.calls.append("cpu")
        return self

    def numpy(self) -> np.ndarray:
        self.calls.append("numpy")
        return self.array


def test_reads_are_channels_first_numpy() -> None:
    layer = make_layer()
    out = layer[RES, 0:16, 0:16, 0:2]
    assert isinstance(out, np.ndarray)
    assert out.shape == (1, 16, 16, 2)
    assert out.dtype == np.uint8


def test_torch_tensors_are_recognised_without_importing_torch() -> None:
    layer = make_layer()
    data = np.arange(16 * 16 * 2, dtype=np.uint8).reshape(1, 16, 16, 2)
    tensor = FakeTensor(data)
    layer[RES, 0:16, 0:16, 0:2] = tensor
    assert tensor.calls == ["detach", "cpu", "numpy"]
    np.testing.assert_array_equal(layer[RES, 0:16, 0:16, 0:2], data)


def test_writing_through_a_volumetric_layer_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, lamina\n"
        "layer = lamina.build_memory_volumetric_layer(\n"
        "    lamina.BBox3D.from_coords((0, 0, 0), (8, 8, 8)), [(1, 1, 1)], (8, 8, 8),\n"
        "    index_resolution=(1, 1, 1), default_desired_resolution=(1, 1, 1))\n"
        "layer[0:8, 0:8, 0:8] = np.ones((1, 8, 8, 8), np.uint8)\n"
        "layer[0:8, 0:8, 0:8] = 2\n"
        "assert (layer[0:8, 0:8, 0:8] == 2).all()\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_write_procs_see_numpy_even_for_tensors() -> None:
    seen: list[type] = []
    layer = make_layer(write_procs=[lambda d: seen.append(type(d)) or d])
    layer[RES, 0:16, 0:16, 0:2] = FakeTensor(np.zeros((1, 16, 16, 2), np.uint8))
    assert seen == [np.ndarray]


@pytest.mark.parametrize("value", [3, 3.0, True, np.uint8(3), np.array([3])])
def test_scalar_writes_fill(value: Any) -> None:
    layer = make_layer()
    layer[RES, 0:16, 0:16, 0:2] = value
    expected = 1 if value is True else 3
    assert (layer[RES, 0:16, 0:16, 0:2] == expected).all()


def test_scalar_that_does_not_fit_is_refused() -> None:
    layer = make_layer()
    with pytest.raises(ValueError, match="without losing data"):
        layer[RES, 0:16, 0:16, 0:2] = 300
    with pytest.raises(ValueError, match="fractional"):
        layer[RES, 0:16, 0:16, 0:2] = 1.5
    with pytest.raises(ValueError, match="outside"):
        layer[RES, 0:16, 0:16, 0:2] = -1


def test_shape_is_checked_against_the_index_before_any_processor() -> None:
    calls: list[str] = []
    layer = make_layer(write_procs=[lambda d: calls.append("proc") or d])
    with pytest.raises(ValueError, match=r"spatial shape.*\(16, 16, 1\).*\(16, 16, 2\)"):
        layer[RES, 0:16, 0:16, 0:2] = np.zeros((1, 16, 16, 1), np.uint8)
    with pytest.raises(ValueError, match="channel"):
        layer[RES, 0:16, 0:16, 0:2] = np.zeros((3, 16, 16, 2), np.uint8)
    assert calls == []


def test_safe_casts_are_done() -> None:
    layer = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (64, 64, 80)),
        resolutions=[RES],
        chunk_size=(16, 16, 2),
        dtype="float32",
        default_desired_resolution=RES,
    )
    layer[RES, 0:16, 0:16, 0:2] = np.full((1, 16, 16, 2), 7, dtype=np.uint8)
    out = layer[RES, 0:16, 0:16, 0:2]
    assert out.dtype == np.float32
    assert (out == 7).all()


def test_readonly_layer() -> None:
    layer = make_layer(readonly=True)
    with pytest.raises(IOError, match="readonly"):
        layer[RES, 0:16, 0:16, 0:2] = 1


def test_data_resolution_needs_an_interpolation_mode() -> None:
    with pytest.raises(ValueError, match="interpolation_mode"):
        make_layer(data_resolution=(8, 8, 40))


def test_with_changes_and_with_procs_keep_the_layer_kind() -> None:
    layer = make_layer()
    assert isinstance(layer.with_changes(readonly=True), VolumetricLayer)
    changed = layer.with_changes(default_desired_resolution=(8, 8, 40))
    assert changed.default_desired_resolution == Vec3D(8.0, 8.0, 40.0)
    assert changed[BBox3D.from_coords((0, 0, 0), (64, 64, 80))].shape == (1, 8, 8, 2)
    assert isinstance(layer.with_procs(read_procs=[lambda d: d]), VolumetricLayer)


def test_build_volumetric_layer_needs_a_volumetric_backend() -> None:
    with pytest.raises(TypeError, match="VolumetricBackend"):
        build_volumetric_layer(object())  # type: ignore[arg-type]


# -- resampling through data_resolution -------------------------------------------------------
def test_docs_example_upsamples_the_data_resolution() -> None:
    layer = build_memory_volumetric_layer(
        BBox3D.from_coords((0, 0, 0), (512 * 128, 512 * 128, 4000), (1, 1, 1)),
        resolutions=[(128, 128, 40)],
        chunk_size=(32, 32, 1),
        index_resolution=(4, 4, 40),
        default_desired_resolution=(64, 64, 40),
        data_resolution=(128, 128, 40),
        interpolation_mode="img",
    )
    idx = layer.scheme.to_index((slice(12000, 13024), slice(3616, 4640), slice(20, 21)))
    assert idx.bbox.bounds[0] == (48000, 52096)
    coarse = np.arange(32 * 32, dtype=np.uint8).reshape(1, 32, 32, 1)
    loose = layer.backend.with_changes(enforce_chunk_aligned_writes=False)
    loose.write(idx.with_resolution((128, 128, 40)), coarse)
    out = layer[12000:13024, 3616:4640, 20:21]
    assert out.shape == (1, 64, 64, 1)
    np.testing.assert_array_equal(out, coarse.repeat(2, axis=1).repeat(2, axis=2))


def test_equal_resolutions_skip_resampling() -> None:
    layer = make_layer(data_resolution=RES, interpolation_mode="mask")
    data = np.arange(16 * 16 * 2, dtype=np.uint8).reshape(1, 16, 16, 2)
    layer[RES, 0:16, 0:16, 0:2] = data
    # A mask resampling would have binarised the values (as the reference did).
    np.testing.assert_array_equal(layer[RES, 0:16, 0:16, 0:2], data)


def test_reads_and_writes_resample_and_fills_pass_through() -> None:
    layer = make_layer(data_resolution=(8, 8, 40), interpolation_mode="img")
    fine = np.arange(32 * 32 * 2, dtype=np.uint8).reshape(1, 32, 32, 2) % 200
    layer[RES, 0:32, 0:32, 0:2] = fine  # downsampled 2×2×1 into the 8 nm scale
    stored = layer.backend.read(VolumetricIndex.from_coords((0, 0, 0), (16, 16, 2), (8, 8, 40)))
    expected = np.floor(fine.reshape(1, 16, 2, 16, 2, 2).mean(axis=(2, 4)) + 0.5)
    np.testing.assert_array_equal(stored, expected.astype(np.uint8))
    # A scalar write through data_resolution is a fill at the data resolution (the reference
    # interpolated it as a 1x1x1 volume and failed).
    layer[RES, 0:32, 0:32, 0:2] = 9
    stored = layer.backend.read(VolumetricIndex.from_coords((0, 0, 0), (16, 16, 2), (8, 8, 40)))
    assert stored.min() == 9
    assert stored.max() == 9
    assert (layer[RES, 0:32, 0:32, 0:2] == 9).all()


def test_user_processors_see_the_desired_resolution_on_both_paths() -> None:
    """Resampling is the innermost stage on reads and writes alike (the reference's write
    processors saw data-resolution data)."""
    shapes: list[tuple[str, tuple[int, ...]]] = []
    layer = make_layer(
        data_resolution=(8, 8, 40),
        interpolation_mode="segmentation",
        read_procs=[lambda d: shapes.append(("read", d.shape)) or d],
        write_procs=[lambda d: shapes.append(("write", d.shape)) or d],
    )
    layer[RES, 0:32, 0:32, 0:2] = np.ones((1, 32, 32, 2), np.uint8)
    layer[RES, 0:32, 0:32, 0:2]
    assert shapes == [("write", (1, 32, 32, 2)), ("read", (1, 32, 32, 2))]


def test_write_that_is_not_whole_voxels_at_the_data_resolution_is_refused() -> None:
    layer = make_layer(data_resolution=(8, 8, 40), interpolation_mode="img")
    with pytest.raises(ValueError, match="not a whole number of voxels at the data resolution"):
        layer[RES, 1:33, 0:32, 0:2] = 1


def test_rounded_read_through_data_resolution_has_the_desired_shape() -> None:
    layer = make_layer(
        data_resolution=(8, 8, 40), interpolation_mode="img", allow_slice_rounding=True
    )
    out = layer[RES, 1:4, 0:2, 0:1]
    assert out.shape == (1, 3, 2, 1)


def test_joint_processor_can_place_the_interpolator_explicitly() -> None:
    from lamina import DataResolutionInterpolator

    interp = DataResolutionInterpolator((8, 8, 40), "img")
    assert isinstance(interp, JointIndexDataProcessor)
    layer = make_layer(read_procs=[interp], write_procs=[interp])
    layer[RES, 0:32, 0:32, 0:2] = np.full((1, 32, 32, 2), 4, np.uint8)
    coarse = layer.backend.read(VolumetricIndex.from_coords((0, 0, 0), (16, 16, 2), (8, 8, 40)))
    assert (coarse == 4).all()
    assert layer[RES, 0:32, 0:32, 0:2].shape == (1, 32, 32, 2)


# -- the constant backend -------------------------------------------------------------------
def test_constant_layer_reads_its_value_everywhere() -> None:
    layer = build_constant_volumetric_layer(value=2.5, num_channels=2)
    out = layer[Vec3D(7, 7, 7), -100:-90, 0:3, 5:6]
    assert out.shape == (2, 10, 3, 1)
    assert out.dtype == np.float32
    assert (out == 2.5).all()
    assert layer.readonly
    assert "2.5" in layer.name  # the name says the value


def test_constant_backend_refuses_writes_changes_and_delete() -> None:
    layer = build_constant_volumetric_layer(value=1)
    backend = layer.backend
    idx = VolumetricIndex.from_coords((0, 0, 0), (1, 1, 1), (1, 1, 1))
    with pytest.raises(UnsupportedOperationError):
        backend.write(idx, np.ones((1, 1, 1, 1), np.float32))
    with pytest.raises(UnsupportedOperationError, match="does not support writes"):
        layer.with_changes(readonly=False)[idx] = 1
    with pytest.raises(KeyError, match="allow_cache"):
        backend.with_changes(allow_cache=True)
    assert backend.with_changes() is backend
    with pytest.raises(IOError, match="readonly"):
        layer.delete()


def test_memory_backend_write_outside_bounds_writes_nothing() -> None:
    backend = MemoryVolumetricBackend.from_bbox(
        BBox3D.from_coords((0, 0, 0), (32, 32, 4)), [(1, 1, 1)], (16, 16, 2)
    )
    idx = VolumetricIndex.from_coords((16, 0, 0), (48, 16, 2), (1, 1, 1))
    with pytest.raises(ValueError, match="outside the dataset bounds"):
        backend.write(idx, 1)
    assert not backend.read(VolumetricIndex.from_coords((0, 0, 0), (32, 32, 4), (1, 1, 1))).any()


class _PairBackend(MemoryVolumetricBackend):
    """A composite-style backend: its data is ``{"a": array, "b": array}`` (as a layer
    set's is), so it overrides ``prepare_data``."""

    def prepare_data(self, idx: VolumetricIndex, data: Any) -> Any:
        if not isinstance(data, dict) or set(data) != {"a", "b"}:
            raise ValueError(f"data must be {{'a': ..., 'b': ...}}; got {data!r}")
        one = super().prepare_data
        return {k: one(idx, v) for k, v in data.items()}

    def read(self, idx: VolumetricIndex) -> Any:
        one = super().read(idx)
        return {"a": one, "b": one + 1}

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        assert np.array_equal(data["b"], data["a"] + 1)
        super().write(idx, data["a"])


def test_backends_with_their_own_data_form_prepare_it() -> None:
    bbox = BBox3D.from_coords((0, 0, 0), (32, 32, 40), RES)
    backend = _PairBackend.from_bbox(bbox, [RES], chunk_size=(16, 16, 1), dtype="int32")
    seen: list[Any] = []

    def proc(data: Any) -> Any:
        seen.append(data)
        return data

    layer = build_volumetric_layer(
        backend, default_desired_resolution=RES, index_resolution=RES, write_procs=[proc]
    )
    layer[0:16, 0:16, 0:1] = {"a": 5, "b": 6}  # scalars become arrays per key
    assert isinstance(seen[0], dict)
    assert seen[0]["a"].shape == (1, 16, 16, 1)
    assert int(seen[0]["b"].max()) == 6
    out = layer[0:16, 0:16, 0:1]
    assert int(out["a"].min()) == 5
    assert int(out["b"].min()) == 6
    with pytest.raises(ValueError, match="data must be"):
        layer[0:16, 0:16, 0:1] = np.zeros((1, 16, 16, 1), dtype="int32")
    idx = VolumetricIndex.from_coords((16, 16, 0), (32, 32, 1), RES)
    layer.write_with_procs(idx, {"a": 1, "b": 2})
    assert int(layer[idx]["a"].max()) == 1


def test_read_into_goes_through_processors_and_resampling() -> None:
    """A plain layer reads straight from its backend into ``out``; with processors or a
    data resolution, ``out`` gets what ``read_with_procs`` returns."""
    box = BBox3D.from_coords((0, 0, 0), (64, 64, 8), (4, 4, 40))
    plain = build_memory_volumetric_layer(box, [(4, 4, 40)], chunk_size=(32, 32, 8))
    values = np.arange(64 * 64 * 8, dtype=np.uint8).reshape(1, 64, 64, 8)
    plain[Vec3D(4, 4, 40), 0:64, 0:64, 0:8] = values
    idx = VolumetricIndex.from_coords((0, 0, 0), (64, 64, 8), Vec3D(4, 4, 40))
    out = np.zeros((1, 64, 64, 8), np.uint8)
    plain.read_into(idx, out)
    np.testing.assert_array_equal(out, values)
    doubled = build_volumetric_layer(plain.backend, read_procs=[lambda d: d * 2])
    doubled.read_into(idx, out)
    np.testing.assert_array_equal(out, values * 2)
    coarse = build_volumetric_layer(
        plain.backend, data_resolution=(4, 4, 40), interpolation_mode="img"
    )
    half = VolumetricIndex.from_coords((0, 0, 0), (32, 32, 8), Vec3D(8, 8, 40))
    small = np.zeros((1, 32, 32, 8), np.uint8)
    coarse.read_into(half, small)
    np.testing.assert_array_equal(small, coarse.read_with_procs(half))
