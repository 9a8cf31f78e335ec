"""The flows' part of the volumetric backend contract: a flow that fails changes nothing.

:class:`FlowArgumentTests` is mixed into the volumetric contract suite
(:class:`~lamina.testing.volumetric.VolumetricBackendTests`), whose ``make`` fixture and
``is_stored`` hook it uses. For each bad argument of :func:`lamina.flows.copy` (into
the backend under test, from a small in-memory source) and of
:func:`lamina.flows.downsample` (on the backend under test) — an unknown keyword,
executor or resolution, no workers, negative retries, a task size off the write grid,
a region outside the volume or empty, a lossy dtype, a readonly layer, a bad factor,
level count or mode — the call raises, and afterwards nothing is stored and the volume
has the scales it had. A second run with corrected arguments must not find a half-made
change of the failed one.

Runs use ``executor="serial"`` (an in-memory volume cannot go to other processes) and
keep their journals under the test's ``tmp_path``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from lamina.errors import UnsupportedOperationError
from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.geometry import BBox3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer

__all__ = ["FlowArgumentTests"]

_COPY_CASES = (
    "an unknown keyword",
    "an unknown executor",
    "no workers",
    "negative retries",
    "a resolution the source lacks",
    "a task size off the write grid",
    "a region outside the volume",
    "an empty region",
    "a region off the write grid",
    "a readonly destination",
)

_DOWNSAMPLE_CASES = (
    "an unknown keyword",
    "an unknown executor",
    "no workers",
    "negative retries",
    "no levels",
    "a fractional factor",
    "a factor of one",
    "an unknown mode",
    "a resolution the volume lacks",
    "a task size off the write grid",
    "a region outside the volume",
    "an empty region",
    "a readonly layer",
)


#: What each bad argument raises (the errors lamina raises subclass these builtins).
_EXPECTED: dict[str, type[Exception]] = {
    "an unknown keyword": TypeError,
    "an unknown executor": LookupError,
    "no workers": ValueError,
    "negative retries": ValueError,
    "a resolution the source lacks": ValueError,
    "a resolution the volume lacks": ValueError,
    "a task size off the write grid": ValueError,
    "a region outside the volume": ValueError,
    "an empty region": ValueError,
    "a region off the write grid": ValueError,
    "a readonly destination": OSError,
    "a readonly layer": OSError,
    "no levels": ValueError,
    "a fractional factor": ValueError,
    "a factor of one": ValueError,
    "an unknown mode": ValueError,
}


def _nonzero_data(backend: VolumetricBackend, idx: VolumetricIndex, dtype: Any) -> Any:
    """Random data with no zero (a write of it is visible to ``is_stored``)."""
    from lamina.testing.volumetric import random_data

    data = random_data((backend.num_channels, *idx.shape), dtype, seed=7)
    data[data == 0] = 1
    return data


class FlowArgumentTests:
    """Each bad argument of ``copy`` and ``downsample`` raises and changes nothing.

    Mixed into the volumetric contract suite; uses its ``make`` fixture and its
    ``is_stored`` hook. Override :meth:`reopened` when a backend object does not see
    changes made to its stored volume (a cached info).
    """

    if TYPE_CHECKING:

        def is_stored(self, backend: Any, idx: Any) -> bool: ...

    # -- hooks ----------------------------------------------------------------------------------
    def reopened(self, backend: VolumetricBackend) -> VolumetricBackend:
        """The volume as it is stored now, read afresh: its scales are compared before
        and after a failed flow. Default: ``backend`` itself (right for backends whose
        object is the storage, such as the in-memory one); a backend caching its
        metadata returns a new backend opened on the same storage."""
        return backend

    # -- fixtures and helpers -------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _flow_journals(self, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LAMINA_JOURNAL_DIR", str(tmp_path / "flow-journals"))

    @staticmethod
    def _finest(backend: VolumetricBackend) -> Vec3D[float]:
        resolution: Vec3D[float] = backend.resolutions[0]
        return resolution

    def _layer(self, backend: VolumetricBackend, readonly: bool = False) -> VolumetricLayer:
        finest = self._finest(backend)
        return build_volumetric_layer(
            backend, default_desired_resolution=finest, index_resolution=finest, readonly=readonly
        )

    def _source(self, backend: VolumetricBackend, dtype: Any = None) -> VolumetricLayer:
        """An in-memory volume with ``backend``'s geometry, filled with non-zero data."""
        from lamina.volumetric.memory import build_memory_volumetric_layer

        finest = self._finest(backend)
        bounds = backend.get_bounds(finest)
        layer = build_memory_volumetric_layer(
            bounds.bbox,
            backend.resolutions,
            backend.get_chunk_size(finest),
            dtype=backend.dtype if dtype is None else dtype,
            num_channels=backend.num_channels,
            default_desired_resolution=finest,
            index_resolution=finest,
        )
        layer.backend.write(bounds, _nonzero_data(backend, bounds, layer.backend.dtype))
        return layer

    def _regions(self, backend: VolumetricBackend) -> dict[str, BBox3D]:
        finest = self._finest(backend)
        offset = backend.get_voxel_offset(finest)
        size = backend.get_dataset_size(finest)
        grid = backend.get_write_grid_size(finest)
        return {
            "outside": BBox3D.from_coords(offset, offset + size + Vec3D(grid[0], 0, 0), finest),
            "empty": BBox3D.from_coords(offset, offset + Vec3D(size[0], size[1], 0), finest),
            "off grid": BBox3D.from_coords(offset + Vec3D(1, 0, 0), offset + size, finest),
        }

    def _assert_unchanged(
        self,
        backend: VolumetricBackend,
        resolutions: tuple[Vec3D[float], ...],
        skip: tuple[Vec3D[float], ...] = (),
    ) -> None:
        assert tuple(self.reopened(backend).resolutions) == resolutions, "a scale was added"
        assert tuple(backend.resolutions) == resolutions, "a scale was added"
        for res in resolutions:
            if res not in skip:
                assert not self.is_stored(backend, backend.get_bounds(res)), (
                    f"data was written at {res.pformat()} nm"
                )

    # -- copy into the backend under test -------------------------------------------------------
    def _bad_copy(self, backend: VolumetricBackend, case: str) -> tuple[Any, dict[str, Any]]:
        """The destination layer and the copy keywords of ``case`` (see ``_EXPECTED``)."""
        finest = self._finest(backend)
        grid = backend.get_write_grid_size(finest)
        regions = self._regions(backend)
        dst = self._layer(backend)
        cases: dict[str, dict[str, Any]] = {
            "an unknown keyword": {"chunk_sise": tuple(grid)},
            "an unknown executor": {"executor": "no-such-executor"},
            "no workers": {"executor": "threads", "workers": 0},
            "negative retries": {"retries": -1},
            "a resolution the source lacks": {"resolution": (3, 3, 3)},
            "a task size off the write grid": {"chunk_size": tuple(grid + Vec3D(1, 0, 0))},
            "a region outside the volume": {"bbox": regions["outside"]},
            "an empty region": {"bbox": regions["empty"]},
            "a region off the write grid": {"bbox": regions["off grid"]},
            "a readonly destination": {},
        }
        keywords = cases[case]
        if case == "a readonly destination":
            dst = self._layer(backend, readonly=True)
        if case == "a region off the write grid" and not backend.enforce_chunk_aligned_writes:
            pytest.skip("the backend accepts writes off its write grid")
        return dst, keywords

    @pytest.mark.parametrize("case", _COPY_CASES)
    def test_a_copy_with_a_bad_argument_changes_nothing(self, make: Any, case: str) -> None:
        from lamina.flows.copying import copy

        backend: VolumetricBackend = make()
        resolutions = tuple(backend.resolutions)
        src = self._source(backend)
        dst, keywords = self._bad_copy(backend, case)
        with pytest.raises(_EXPECTED[case]):
            copy(src, dst, **{"executor": "serial", "progress": False, **keywords})
        self._assert_unchanged(backend, resolutions)

    def test_a_copy_of_a_type_the_destination_cannot_hold_changes_nothing(self, make: Any) -> None:
        from lamina.flows.copying import copy

        backend: VolumetricBackend = make()
        resolutions = tuple(backend.resolutions)
        wider = [
            t for t in ("float64", "complex128") if not np.can_cast(t, backend.dtype, "same_kind")
        ]
        if not wider:
            pytest.skip(f"every tried dtype is of the kind of {backend.dtype}")
        src = self._source(backend, dtype=wider[0])
        with pytest.raises(ValueError, match=f"{wider[0]}.*{backend.dtype}"):
            copy(src, self._layer(backend), executor="serial", progress=False)
        self._assert_unchanged(backend, resolutions)

    def test_a_good_copy_is_stored(self, make: Any) -> None:
        """The control: a copy that runs is seen by ``is_stored`` (so the checks above
        would see one that ran)."""
        from lamina.flows.copying import copy

        backend: VolumetricBackend = make()
        copy(self._source(backend), self._layer(backend), executor="serial", progress=False)
        finest = self._finest(backend)
        assert self.is_stored(backend, backend.get_bounds(finest))

    # -- downsample on the backend under test ---------------------------------------------------
    def _filled(self, backend: VolumetricBackend) -> None:
        bounds = backend.get_bounds(self._finest(backend))
        backend.write(bounds, _nonzero_data(backend, bounds, backend.dtype))

    @pytest.mark.parametrize("case", _DOWNSAMPLE_CASES)
    def test_a_downsample_with_a_bad_argument_changes_nothing(self, make: Any, case: str) -> None:
        from lamina.flows.pyramid import downsample

        backend: VolumetricBackend = make()
        self._filled(backend)
        resolutions = tuple(backend.resolutions)
        finest = self._finest(backend)
        regions = self._regions(backend)
        chunk = backend.get_chunk_size(finest)  # the new scales' chunk size
        cases: dict[str, dict[str, Any]] = {
            "an unknown keyword": {"levls": 2},
            "an unknown executor": {"executor": "no-such-executor"},
            "no workers": {"executor": "threads", "workers": 0},
            "negative retries": {"retries": -1},
            "no levels": {"levels": 0},
            "a fractional factor": {"factor": (1.5, 2, 1)},
            "a factor of one": {"factor": (1, 1, 1)},
            "an unknown mode": {"mode": "no-such-mode"},
            "a resolution the volume lacks": {"from_resolution": (3, 3, 3)},
            "a task size off the write grid": {"chunk_size": tuple(chunk + Vec3D(1, 0, 0))},
            "a region outside the volume": {"bbox": regions["outside"]},
            "an empty region": {"bbox": regions["empty"]},
            "a readonly layer": {},
        }
        keywords = cases[case]
        layer = self._layer(backend, readonly=case == "a readonly layer")
        run: dict[str, Any] = {"levels": 2, "executor": "serial", "progress": False}
        expected: type[Exception] | tuple[type[Exception], ...] = _EXPECTED[case]
        if type(backend).add_resolutions is VolumetricBackend.add_resolutions:
            expected = (_EXPECTED[case], UnsupportedOperationError)  # refused first
        with pytest.raises(expected):
            downsample(layer, **{**run, **keywords})
        self._assert_unchanged(backend, resolutions, skip=(finest,))

    def test_a_good_downsample_is_stored(self, make: Any) -> None:
        """The control: a pyramid that runs writes its levels (seen by ``is_stored``)."""
        from lamina.flows.pyramid import downsample, pyramid_resolutions

        backend: VolumetricBackend = make()
        self._filled(backend)
        (level,) = pyramid_resolutions(self._finest(backend), (2, 2, 1), 1)
        try:
            downsample(self._layer(backend), levels=1, executor="serial", progress=False)
        except UnsupportedOperationError:
            pytest.skip("the backend cannot add scales")
        if level in backend.resolutions:  # a scale the volume had (the others: reopened)
            assert self.is_stored(backend, backend.get_bounds(level))
