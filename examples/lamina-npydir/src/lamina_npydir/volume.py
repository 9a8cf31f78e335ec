"""The npydir format (README.md): volume.json under the creation policy, backend, builder."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Unpack

import attrs
import numpy as np
import numpy.typing as npt

from lamina.backend import Capabilities
from lamina.errors import DamagedChunkError, UnknownResolutionError
from lamina.volumetric import creation
from lamina.volumetric.backend import VolumetricBackend, VolumetricChanges
from lamina.volumetric.chunker import VolumetricIndexChunker
from lamina.volumetric.geometry import BBox3D, RawVec3D, Vec3D
from lamina.volumetric.index import VolumetricIndex
from lamina.volumetric.interpolation import InterpolationMode
from lamina.volumetric.layer import VolumetricLayer, build_volumetric_layer, check_layer_arguments
from lamina.volumetric.scales import ScaleGeometry, sorted_resolutions

LAYOUT, META, ATTRIBUTES = "lamina-npydir/1", "volume.json", ("type", "data_type", "num_channels")
Geometry = dict[Vec3D[float], ScaleGeometry]


def check_dtype(data_type: Any, argument: str) -> None:
    """Refuse a dtype ``.npy`` files hold only pickled, or lamina does not compute with."""
    if np.dtype(data_type).kind not in "biuf":
        raise ValueError(f"{argument} must be a bool, int, uint or float dtype; got {data_type!r}")


def save(file: str, value: Any) -> None:
    """Write ``value`` (an array with ``np.save``, else as JSON) to ``file`` atomically."""
    with open(tmp := f"{file}.{uuid.uuid4().hex}.tmp", "wb") as f:
        np.save(f, value) if isinstance(value, np.ndarray) else f.write(json.dumps(value).encode())
    os.replace(tmp, file)


def read_meta(path: str) -> tuple[dict[str, Any], dict[Vec3D[float], Any], Geometry]:
    """``path``'s ``volume.json`` checked, its scales and their geometry (finest first)."""
    if not os.path.isfile(file := os.path.join(path, META)):
        return {}, {}, {}
    try:
        with open(file, "rb") as f:
            meta = json.load(f)
        check_dtype(meta["data_type"], "data_type")
        n, fields = meta["num_channels"], [f.name for f in attrs.fields(ScaleGeometry)]
        if meta["type"] not in creation.VOLUME_TYPES or type(n) is not int or n < 1:
            raise ValueError(f"type {meta['type']!r} or num_channels {n!r}")
        scales = {Vec3D.from_seq(s["resolution"], "resolution").float(): s for s in meta["scales"]}
        geo = {
            r: ScaleGeometry(*(Vec3D.from_seq(s[k], k) for k in fields)) for r, s in scales.items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{file} is not a lamina-npydir volume.json: {exc!r}") from None
    return meta, scales, {res: geo[res] for res in sorted_resolutions(geo)}


def apply_spec(path: str, spec: creation.VolumeSpec, overwrite: bool, keep: bool) -> None:
    """Create or extend the volume at ``path`` under lamina's creation policy: nothing is
    written when it refuses, and replaced or dropped scales lose their chunk files."""
    check_dtype(spec.data_type, "info_data_type")
    (meta, scales, _), wanted = read_meta(path), {}
    old = creation.StoredVolume({k: meta[k] for k in ATTRIBUTES}, scales) if meta else None
    for res in spec.scales:  # a scale as volume.json holds it, and the policy compares it
        wanted[res] = {"resolution": [*map(creation.number, res)]}
        wanted[res].update({k: list(v) for k, v in attrs.asdict(spec.geometry(res)).items()})
    new = creation.StoredVolume({k: getattr(spec, k) for k in ATTRIBUTES}, wanted)
    plan = creation.plan_update(
        old, new, overwrite=overwrite, keep_existing_scales=keep, where=path
    )
    ordered = [plan.scales[r] for r in sorted_resolutions(plan.scales)]
    if (now := {"format": LAYOUT, **plan.attributes, "scales": ordered}) != meta:
        for res in plan.replaced | plan.dropped:
            shutil.rmtree(os.path.join(path, creation.res_to_key(res)), ignore_errors=True)
        os.makedirs(path, exist_ok=True)
        save(os.path.join(path, META), now)


class NpyDirBackend(VolumetricBackend):
    """The volume stored at ``path`` (``apply_spec`` creates it); its files are ``.npy``."""

    capabilities, supported_changes = Capabilities(non_aligned_writes=False), frozenset[str]()

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        meta, _, self._geometry = read_meta(self.path)
        if not meta:
            raise FileNotFoundError(f"no {self.path}/{META}: create the volume with info_scales")
        self._dtype, self._type = np.dtype(meta["data_type"]), meta["type"]
        self._channels: int = meta["num_channels"]

    name = property(lambda self: self.path)
    dtype = property(lambda self: self._dtype)
    num_channels = property(lambda self: self._channels)
    volume_type = property(lambda self: self._type)
    resolutions = property(lambda self: tuple(self._geometry))

    def _geo(self, resolution: RawVec3D) -> ScaleGeometry:
        if (res := Vec3D.from_seq(resolution, "resolution").float()) not in self._geometry:
            known = ", ".join(r.pformat() for r in self._geometry)
            raise UnknownResolutionError(f"{self.path} has no scale {res.pformat()}: {known}")
        return self._geometry[res]

    def get_voxel_offset(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._geo(resolution).voxel_offset

    def get_chunk_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._geo(resolution).chunk_size

    def get_dataset_size(self, resolution: RawVec3D) -> Vec3D[int]:
        return self._geo(resolution).dataset_size

    def _chunks(self, idx: VolumetricIndex) -> Iterator[tuple[str, VolumetricIndex, Any, Any]]:
        """Each chunk ``idx`` touches: its file and index, and where they overlap in each."""
        bounds = self.get_bounds(idx.resolution)
        region = self.get_chunk_aligned_index(idx, "expand").intersection(bounds)
        grid = VolumetricIndexChunker(self.get_chunk_size(idx.resolution))
        for chunk in grid(region) if not region.is_empty else []:
            chunk = chunk.intersection(bounds)
            name = "_".join(f"{a}-{b}" for a, b in zip(chunk.start, chunk.stop, strict=True))
            file = os.path.join(self.path, creation.res_to_key(idx.resolution), f"{name}.npy")
            in_chunk = (slice(None), *idx.get_intersection_and_subindex(chunk)[1])
            yield file, chunk, in_chunk, (slice(None), *chunk.get_intersection_and_subindex(idx)[1])

    def read(self, idx: VolumetricIndex) -> npt.NDArray[Any]:
        out = np.zeros((self._channels, *idx.shape), dtype=self._dtype)
        for file, chunk, in_chunk, in_idx in self._chunks(idx):
            try:
                array: npt.NDArray[Any] = np.load(file)
            except FileNotFoundError:
                continue  # never written: the fill value
            except (OSError, ValueError, EOFError) as exc:
                raise DamagedChunkError(f"{file} is not a readable .npy file: {exc}") from exc
            if (array.shape, array.dtype) != ((self._channels, *chunk.shape), self._dtype):
                raise DamagedChunkError(f"{file} holds {array.dtype} {array.shape}: not a chunk")
            out[in_idx] = array[in_chunk]
        return out

    def write(self, idx: VolumetricIndex, data: Any) -> None:
        array = np.broadcast_to(self.check_write(idx, data), (self._channels, *idx.shape))
        self.assert_idx_within_bounds(idx, "Write inside them, or make a larger volume.")
        for file, _, _, in_idx in self._chunks(idx):
            os.makedirs(os.path.dirname(file), exist_ok=True)
            save(file, np.ascontiguousarray(array[in_idx]))

    def with_changes(self, **changes: Unpack[VolumetricChanges]) -> NpyDirBackend:  # type: ignore[override]
        self.check_changes(dict(changes))
        return self

    def delete(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def build_npydir_layer(
    path: str | os.PathLike[str],
    *,
    default_desired_resolution: RawVec3D | None = None,
    index_resolution: RawVec3D | None = None,
    data_resolution: RawVec3D | None = None,
    interpolation_mode: InterpolationMode | None = None,
    readonly: bool = False,
    info_scales: Sequence[RawVec3D] | None = None,
    info_reference_path: str | None = None,
    info_reference_scale: RawVec3D | None = None,
    info_inherit_all_params: bool = False,
    info_type: str | None = None,
    info_data_type: str | None = None,
    info_num_channels: int | None = None,
    info_chunk_size: RawVec3D | None = None,
    info_bbox: BBox3D | None = None,
    info_overwrite: bool = False,
    info_keep_existing_scales: bool = True,
) -> VolumetricLayer:
    """A layer over the lamina-npydir volume at ``path``: without ``info_scales`` it must
    exist (``FileNotFoundError``); with it, lamina's creation policy creates or extends it
    (:mod:`lamina.volumetric.creation`, as for ``build_cv_layer``), and changing a stored
    scale needs ``info_overwrite`` (else a ``VolumeMismatchError`` lists the Differences).

    Args:
        path: the volume's directory (``~`` expanded).
        default_desired_resolution, index_resolution, data_resolution, interpolation_mode:
            how the layer indexes and resamples, as in ``lamina.build_volumetric_layer``.
        readonly: refuse writes and ``delete()``.
        info_scales: the resolutions (nm) of the scales to create or add.
        info_reference_path, info_reference_scale, info_inherit_all_params: a volume of
            any installed format (its finest scale, or the one named) that gives the box
            and, with ``info_inherit_all_params``, every ``info_*`` not given.
        info_type, info_data_type, info_num_channels, info_chunk_size, info_bbox: the
            volume: ``"image"`` / ``"segmentation"``; a bool, int, uint or float dtype;
            >= 1 channels; voxels per chunk file (x, y, z); the ``BBox3D`` (nm) covered.
        info_overwrite: let stored scales change (a changed scale loses its chunks).
        info_keep_existing_scales: keep the stored scales ``info_scales`` does not list.
    """
    policy, path = {"info_overwrite", "info_keep_existing_scales"}, os.path.expanduser(path)
    meta_file = os.path.join(path, META)
    info = {k: v for k, v in locals().items() if k.startswith("info_") and k not in policy}
    layer: dict[str, Any] = {"default_desired_resolution": default_desired_resolution}
    layer |= {"index_resolution": index_resolution, "data_resolution": data_resolution}
    layer["interpolation_mode"] = interpolation_mode
    check_layer_arguments(**layer)  # before anything is written
    spec = {k[5:]: v for k, v in info.items()}  # spec_from_parameters's, by name
    if info_scales is not None and info_reference_path is None and os.path.isfile(meta_file):
        spec["existing_path"] = path  # then info_scales adds to it
    if (resolved := creation.spec_from_parameters(**spec, used_as_stored=path)) is not None:
        apply_spec(path, resolved, info_overwrite, info_keep_existing_scales)
    return build_volumetric_layer(NpyDirBackend(path), **layer, readonly=readonly)
