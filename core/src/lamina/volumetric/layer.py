"""``VolumetricLayer`` and ``build_volumetric_layer``: a volume indexed at any resolution.

A volumetric layer is a :class:`~lamina.layer.Layer` whose scheme is the
:class:`~lamina.volumetric.scheme.VolumetricScheme` and whose backend is a
:class:`~lamina.volumetric.backend.VolumetricBackend`. Reads return numpy
``(C, X, Y, Z)``; writes take numpy arrays, torch tensors and scalars.

With ``data_resolution``, the layer reads and writes the backend at that resolution
and resamples to and from the resolution asked for, in ``interpolation_mode``. The
resampling is the innermost stage on *both* paths, closest to the backend, so user
``read_procs`` and ``write_procs`` alike see data at the desired resolution (in the
reference system, write processors saw data already resampled to the data resolution;
its ``read_procs[0]`` is no longer the interpolator).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Unpack, get_args

import attrs
import numpy.typing as npt

from lamina.layer import Layer
from lamina.volumetric.backend import VolumetricBackend
from lamina.volumetric.converters import to_optional_float_vec3
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.interpolation import (
    InterpolationMode,
    as_resolution,
    data_index_for_read,
    data_index_for_write,
    resample_read,
    resample_write,
)
from lamina.volumetric.scheme import VolumetricScheme

if TYPE_CHECKING:
    from lamina.flows.options import RunOptions

_MODES = frozenset(get_args(InterpolationMode))

__all__ = ["VolumetricLayer", "build_volumetric_layer", "check_layer_arguments"]


def _check_resampling(data_resolution: object, interpolation_mode: object) -> None:
    if interpolation_mode is not None and interpolation_mode not in _MODES:
        raise ValueError(
            f"interpolation_mode must be one of {sorted(_MODES)}; got {interpolation_mode!r}"
        )
    if data_resolution is not None and interpolation_mode is None:
        raise ValueError(
            "data_resolution is given but interpolation_mode is not: say how to resample, "
            "e.g. interpolation_mode='img' for images, 'segmentation' for label volumes"
        )


def check_layer_arguments(
    *,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    data_resolution: RawVec3D | None = None,
    interpolation_mode: InterpolationMode | None = None,
) -> None:
    """Check the layer's own parameters, which need no backend: a volume builder calls
    this before it creates or changes a volume, so that a bad one leaves nothing behind
    (:func:`build_volumetric_layer` checks them again, and the rest)."""
    for value, what in (
        (default_desired_resolution, "default_desired_resolution"),
        (index_resolution, "index_resolution"),
        (data_resolution, "data_resolution"),
    ):
        as_resolution(value, what)
    _check_resampling(data_resolution, interpolation_mode)


@attrs.frozen(kw_only=True)
class VolumetricLayer(Layer[VolumetricIndex, npt.NDArray[Any]]):
    """A layer over a volumetric backend, indexed in every form of the volumetric scheme."""

    backend: VolumetricBackend
    index_resolution: Vec3D[float] | None = attrs.field(
        default=None, converter=to_optional_float_vec3
    )
    default_desired_resolution: Vec3D[float] | None = attrs.field(
        default=None, converter=to_optional_float_vec3
    )
    allow_slice_rounding: bool = False
    data_resolution: Vec3D[float] | None = attrs.field(
        default=None, converter=to_optional_float_vec3
    )
    interpolation_mode: InterpolationMode | None = None
    mask_value_thr: float = 0.0
    scheme: VolumetricScheme = attrs.field(init=False, repr=False, eq=False)
    #: No index or read processors and no resampling: ``layer[...]`` goes straight to the
    #: backend (the per-read path of small reads, where each call costs).
    _direct: bool = attrs.field(init=False, default=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        _check_resampling(self.data_resolution, self.interpolation_mode)
        object.__setattr__(
            self,
            "scheme",
            VolumetricScheme(
                index_resolution=self.index_resolution,
                default_desired_resolution=self.default_desired_resolution,
                allow_slice_rounding=self.allow_slice_rounding,
            ),
        )
        cls = type(self)
        object.__setattr__(
            self,
            "_direct",
            not self.index_procs
            and not self.read_procs
            and self.data_resolution is None
            and cls.read_with_procs is Layer.read_with_procs
            and cls._read_from_backend is VolumetricLayer._read_from_backend,
        )

    def __getitem__(self, user_idx: Any) -> Any:
        if self._direct:  # what Layer.__getitem__ does here, less three calls
            return self.backend.read(self.scheme.to_index(user_idx))
        return super().__getitem__(user_idx)

    @property
    def reads_directly(self) -> bool:
        """Whether a read is the backend's read alone: no processors, no resampling."""
        return self._direct

    def read_into(self, idx: VolumetricIndex, out: npt.NDArray[Any]) -> None:
        """Read standard index ``idx`` through every processor into ``out`` (a
        ``(C, X, Y, Z)`` array or view of the result's shape): straight from the backend
        (:meth:`VolumetricBackend.read_into`) when the layer has no processors and no
        resampling, else a copy of :meth:`read_with_procs`'s result."""
        if self._direct:
            self.backend.read_into(idx, out)
        else:
            out[...] = self.read_with_procs(idx)

    def to_dask(
        self,
        resolution: RawVec3D | None = None,
        bbox: BBox3D | None = None,
        chunks: Sequence[int] | None = None,
    ) -> Any:
        """This layer as a lazy ``dask.array.Array`` of ``(C, X, Y, Z)``, in blocks on its
        storage grid, read through the layer: :func:`lamina.arrays.to_dask`."""
        from lamina.arrays.dask_array import to_dask

        return to_dask(self, resolution, bbox, chunks)

    def from_dask(
        self,
        array: Any,
        bbox: BBox3D | None = None,
        resolution: RawVec3D | None = None,
        chunk_size: RawVec3D | None = None,
        **run: Unpack[RunOptions],
    ) -> Any:
        """Write a Dask (or numpy) array ``(C, X, Y, Z)`` into this layer, task by task on
        its write grid: :func:`lamina.flows.store`."""
        from lamina.flows.storing import store

        return store(array, self, bbox, resolution, chunk_size, **run)

    def write_with_procs(self, idx: VolumetricIndex, data: Any) -> None:
        """Write at a standard index; scalars, lists and tensors are accepted here too
        (``backend.prepare_data`` puts them in the backend's form)."""
        self._check_writable()
        super().write_with_procs(idx, self.backend.prepare_data(idx, data))

    # -- the innermost stage: resampling ------------------------------------------------------
    def _read_from_backend(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        data_res = self.data_resolution
        if data_res is None or data_res == idx.resolution:
            return self.backend.read(idx)
        data_idx = data_index_for_read(idx, data_res)
        assert self.interpolation_mode is not None
        return resample_read(  # type: ignore[no-any-return]
            self.backend.read(data_idx), data_idx, idx, self.interpolation_mode, self.mask_value_thr
        )

    def _write_to_backend(self, idx: VolumetricIndex, data: Any) -> None:
        data_res = self.data_resolution
        if data_res is None or data_res == idx.resolution:
            self.backend.write(idx, data)
            return
        data_idx = data_index_for_write(idx, data_res)
        assert self.interpolation_mode is not None
        resampled = resample_write(
            data, idx, data_idx, self.interpolation_mode, self.mask_value_thr
        )
        self.backend.write(data_idx, resampled)

    def pformat(self) -> str:
        """The backend's description plus the layer's resolutions."""
        extra = [
            f"{name}={value.pformat() if isinstance(value, Vec3D) else value}"
            for name, value in (
                ("index_resolution", self.index_resolution),
                ("default_desired_resolution", self.default_desired_resolution),
                ("data_resolution", self.data_resolution),
            )
            if value is not None
        ]
        return self.backend.pformat() + ("\n  " + ", ".join(extra) if extra else "")


def build_volumetric_layer(
    backend: VolumetricBackend,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    data_resolution: RawVec3D | None = None,
    interpolation_mode: InterpolationMode | None = None,
    mask_value_thr: float = 0,
    readonly: bool = False,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[Any] = (),
    read_procs: Iterable[Any] = (),
    write_procs: Iterable[Any] = (),
) -> VolumetricLayer:
    """Build a volumetric layer over ``backend``: a volume indexed at any resolution.

    The parameters are those of the reference system's ``build_volumetric_layer``; the
    layer is a :class:`VolumetricLayer`, and every storage plugin's builder
    (``build_cv_layer``, ``build_h5_layer``...) ends here. Reads return numpy
    ``(C, X, Y, Z)`` arrays; writes take numpy arrays, torch tensors and scalars (a
    scalar fills the region). An index is a ``VolumetricIndex``, a ``BBox3D`` (nm),
    ``(resolution, BBox3D)``, three slices (voxels) or ``(resolution, slices)``; every
    form is listed in :mod:`lamina.volumetric.scheme`.

    Resolutions are ``(x, y, z)`` in nm per voxel, any 3-sequence of real numbers
    (anything else is a ``ValueError``). With ``data_resolution``, the backend is read
    and written at that resolution and the data resampled to and from the resolution
    asked for. Unlike in the reference system, that resampling is the innermost step on
    both paths, closest to the backend, so ``read_procs`` and ``write_procs`` alike see
    data at the resolution asked for.

    Args:
        backend: the :class:`~lamina.volumetric.backend.VolumetricBackend` (any
            plugin's); anything else is a ``TypeError``.
        default_desired_resolution: the resolution (nm) of the arrays read and written
            when the index does not give one; default ``None``: every index must give
            one, else ``ValueError``.
        index_resolution: the resolution (nm) that slices in an index count voxels at;
            it wins over a resolution inside the index, which then only sets the output
            resolution. Default ``None``: slices count at the index's own resolution,
            and slices with no resolution anywhere are a ``ValueError``.
        data_resolution: the resolution (nm) the backend is read and written at, each
            read or write being resampled between it and the resolution asked for. A
            write must cover whole voxels at ``data_resolution`` (never rounded, since
            rounding would write outside the region: ``ValueError``). Default ``None``:
            the backend is used at the resolution asked for.
        interpolation_mode: how to resample for ``data_resolution``: ``"img"`` for
            images, ``"segmentation"`` for label volumes (ids kept exact), ``"mask"``,
            ``"field"`` for 2-channel displacement fields (in voxels) or a torch mode
            (``"nearest"``, ``"nearest-exact"``, ``"linear"``, ``"bilinear"``,
            ``"bicubic"``, ``"trilinear"``, ``"area"``); see
            :mod:`lamina.volumetric.resample`. Required with ``data_resolution``
            (``ValueError`` without it), unused without; any other value is a
            ``ValueError``.
        mask_value_thr: the threshold of the ``"mask"`` mode: a resampled voxel is 1
            where a voxel it covers is strictly greater, else 0; default 0 ("any voxel
            set").
        readonly: refuse writes and ``delete()`` with a
            :class:`~lamina.errors.ReadonlyLayerError` (an ``IOError``), raised before
            any processor runs; default ``False``.
        allow_slice_rounding: widen a region that is not a whole number of voxels at
            the resolution asked for to whole voxels (start floored, stop ceiled) instead
            of raising ``ValueError``; default ``False``.
        index_procs: index processors, callables ``VolumetricIndex -> VolumetricIndex``
            applied in list order before every read and write; a joint processor here is
            a ``TypeError``.
        read_procs: data processors (array in, array out) and joint index-data
            processors of reads, in the order of :func:`lamina.build_layer`:
            ``read_procs[0]`` sits closest to the backend.
        write_procs: the same for writes: ``write_procs[0]`` sits closest to the user.
            Write data is checked first (4-D, shape and channels, else ``ValueError``)
            and reaches them as a ``(C, X, Y, Z)`` numpy array (a scalar as a read-only
            broadcast view: copy it before changing it in place).

    Returns:
        The :class:`VolumetricLayer`.
    """
    if not isinstance(backend, VolumetricBackend):
        raise TypeError(f"backend must be a lamina.VolumetricBackend; got {type(backend).__name__}")
    return VolumetricLayer(
        backend=backend,
        default_desired_resolution=as_resolution(
            default_desired_resolution, "default_desired_resolution"
        ),
        index_resolution=as_resolution(index_resolution, "index_resolution"),
        data_resolution=as_resolution(data_resolution, "data_resolution"),
        interpolation_mode=interpolation_mode,
        mask_value_thr=float(mask_value_thr),
        readonly=readonly,
        allow_slice_rounding=allow_slice_rounding,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
