"""lamina-zarr on S3 served by moto on loopback: an OME-Zarr image created, written, read
back, grown by a scale and described there; TensorStore's own s3 driver reads what lamina
wrote; a missing image is an error naming it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from lamina_zarr import ZarrNotFoundError, build_zarr_layer
from zarr_support import new_layer

from lamina import Vec3D, VolumetricIndex
from lamina.testing import TestVolume
from lamina.testing.s3 import moto_s3, new_bucket

RES = Vec3D(4.0, 4.0, 40.0)


@pytest.fixture(scope="module")
def s3_root() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield new_bucket(endpoint)


@pytest.mark.parametrize("shard", [None, (64, 64, 8)])
def test_an_image_on_s3_round_trips_and_tensorstore_reads_it(
    s3_root: str, shard: tuple[int, int, int] | None
) -> None:
    import tensorstore as ts

    from lamina import tensorstore_engine

    path = f"{s3_root}/img-{'sharded' if shard else 'plain'}.ome.zarr"
    layer = new_layer(path, TestVolume(num_channels=2), info_shard_size=shard)
    assert not layer.backend.is_local
    assert layer.backend.engine == "tensorstore"  # lamina's reader is for local files
    full = VolumetricIndex.from_coords((32, 64, 4), (192, 160, 14), RES)
    values = np.random.default_rng(3).integers(0, 255, (2, *full.shape), dtype=np.uint8)
    layer[full] = values
    assert np.array_equal(build_zarr_layer(path)[full], values)
    spec = {"driver": "zarr3", "kvstore": tensorstore_engine.kvstore_spec(f"{path}/s0")}
    stored = ts.open(spec, read=True).result().read().result()  # (c, z, y, x)
    assert np.array_equal(stored.transpose(0, 3, 2, 1), values)
    grown = layer.backend.add_resolutions([(16, 16, 40)])
    assert Vec3D(16.0, 16.0, 40.0) in build_zarr_layer(path).backend.resolutions
    assert grown.describe()["scales"][-1]["resolution"] == [16.0, 16.0, 40.0]


def test_a_missing_image_on_s3_is_named(s3_root: str) -> None:
    with pytest.raises(ZarrNotFoundError, match=r"absent\.ome\.zarr"):
        build_zarr_layer(f"{s3_root}/absent.ome.zarr")
