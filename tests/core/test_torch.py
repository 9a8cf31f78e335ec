"""lamina.torch: the strided indexer, LayerDataset, DataLoader workers under fork and spawn.

Runs in the ``core-torch`` env (the core's ``torch`` extra); without torch the module is
skipped as a whole (the ``core`` env), and its ImportError names the extra.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lamina import BBox3D, Vec3D, VolumetricIndex, build_memory_volumetric_layer  # noqa: E402
from lamina.torch import LayerDataset, VolumetricStridedIndexer, to_tensors  # noqa: E402

RES = Vec3D(4, 4, 40)
BOX = BBox3D.from_coords((0, 0, 0), (64, 48, 8), RES)


def _layer() -> Any:
    layer = build_memory_volumetric_layer(
        BOX,
        resolutions=[RES],
        chunk_size=(16, 16, 2),
        dtype="uint16",
        index_resolution=RES,
        default_desired_resolution=RES,
    )
    values = np.arange(64 * 48 * 8, dtype="uint16").reshape(1, 64, 48, 8)
    layer[0:64, 0:48, 0:8] = values
    return layer, values


def test_indexer_windows_in_order() -> None:
    indexer = VolumetricStridedIndexer(BOX, RES, chunk_size=(32, 32, 4), stride=(16, 16, 4))
    # x: starts 0, 16, 32 (the last reaching 64); y: 0, 16 (the last reaching 48); z: 0, 4
    assert len(indexer) == 3 * 2 * 2
    first, second, last = indexer(0), indexer(1), indexer(len(indexer) - 1)
    assert first == VolumetricIndex.from_coords((0, 0, 0), (32, 32, 4), RES)
    assert second == VolumetricIndex.from_coords((16, 0, 0), (48, 32, 4), RES)  # x fastest
    assert last == VolumetricIndex.from_coords((32, 16, 4), (64, 48, 8), RES)
    assert indexer(-1) == last
    with pytest.raises(IndexError, match="12 window"):
        indexer(12)
    with pytest.raises(TypeError, match="window number"):
        indexer(1.5)  # type: ignore[arg-type]


def test_indexer_modes() -> None:
    box = BBox3D.from_coords((0, 0, 0), (40, 40, 4), RES)
    expand = VolumetricStridedIndexer(box, RES, (32, 32, 4), (32, 32, 4))
    shrink = VolumetricStridedIndexer(box, RES, (32, 32, 4), (32, 32, 4), mode="shrink")
    exact = VolumetricStridedIndexer(box, RES, (32, 32, 4), (32, 32, 4), mode="exact")
    assert (len(expand), len(shrink), len(exact)) == (4, 1, 4)
    assert expand(3).stop == Vec3D(64, 64, 4)  # reaches past the box
    assert exact(3) == VolumetricIndex.from_coords((32, 32, 0), (40, 40, 4), RES)  # cropped
    # at a coarser resolution the windows are counted in its voxels
    coarse = VolumetricStridedIndexer(BOX, (8, 8, 40), (16, 16, 8), (16, 16, 8))
    assert len(coarse) == 2 * 2 * 1
    assert coarse(0).resolution == Vec3D(8.0, 8.0, 40.0)


def test_dataset_items_are_tensors_of_the_windows() -> None:
    layer, values = _layer()
    indexer = VolumetricStridedIndexer(BOX, RES, (32, 16, 4), (32, 16, 4))
    dataset = LayerDataset(layer, indexer)
    assert len(dataset) == 2 * 3 * 2
    for i in range(len(dataset)):
        item = dataset[i]
        assert isinstance(item, torch.Tensor)
        assert item.dtype == torch.uint16
        idx = indexer(i)
        (x0, y0, z0), (x1, y1, z1) = idx.start, idx.stop
        np.testing.assert_array_equal(item.numpy(), values[:, x0:x1, y0:y1, z0:z1])


def test_transform_runs_on_numpy_before_conversion() -> None:
    layer, values = _layer()
    indexer = VolumetricStridedIndexer(BOX, RES, (64, 48, 8), (64, 48, 8))
    dataset = LayerDataset(layer, indexer, transform=lambda a: {"img": a.astype("float32") / 2})
    item = dataset[0]
    assert set(item) == {"img"}
    assert item["img"].dtype == torch.float32
    np.testing.assert_array_equal(item["img"].numpy(), values.astype("float32") / 2)


def test_to_tensors_walks_containers_and_copies_only_when_needed() -> None:
    shared = np.arange(6, dtype="int32").reshape(2, 3)
    readonly = shared.copy()
    readonly.flags.writeable = False
    out = to_tensors({"a": shared, "b": [readonly, shared[:, ::-1]], "n": 3})
    out["a"][0, 0] = 100
    assert shared[0, 0] == 100  # shared memory, no copy
    assert out["b"][0].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert out["b"][1].tolist() == [[2, 1, 0], [5, 4, 3]]  # negative strides: a copy
    assert out["n"] == 3


def test_indexer_must_be_callable_with_a_length() -> None:
    layer, _ = _layer()
    with pytest.raises(TypeError, match="indexer must be callable with a length"):
        LayerDataset(layer, [1, 2, 3])


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers(context: str) -> None:
    layer, values = _layer()
    indexer = VolumetricStridedIndexer(BOX, RES, (32, 16, 4), (32, 16, 4))
    loader = torch.utils.data.DataLoader(
        LayerDataset(layer, indexer),
        batch_size=3,
        num_workers=2,
        multiprocessing_context=multiprocessing.get_context(context),
    )
    batches = list(loader)
    assert [tuple(b.shape) for b in batches] == [(3, 1, 32, 16, 4)] * 4
    got = torch.cat(batches).numpy()
    for i in range(len(indexer)):
        idx = indexer(i)
        (x0, y0, z0), (x1, y1, z1) = idx.start, idx.stop
        np.testing.assert_array_equal(got[i], values[:, x0:x1, y0:y1, z0:z1])


class _RemoteLike:
    """A layer whose backend says its storage is remote and thread-safe; each read waits
    at a barrier that opens only when ``parties`` reads are in flight together."""

    def __init__(self, layer: Any, parties: int) -> None:
        import threading
        from types import SimpleNamespace

        self.inner = layer
        self.barrier = threading.Barrier(parties, timeout=10)
        capabilities = SimpleNamespace(thread_safe=True)
        self.backend = SimpleNamespace(is_local=False, capabilities=capabilities)

    def __getitem__(self, idx: Any) -> Any:
        self.barrier.wait()
        return self.inner[idx]


def test_a_batch_of_remote_samples_is_read_at_once() -> None:
    layer, values = _layer()
    indexer = VolumetricStridedIndexer(BOX, RES, chunk_size=(16, 16, 4), stride=(16, 16, 4))
    dataset = LayerDataset(_RemoteLike(layer, parties=4), indexer)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=0)
    batch = next(iter(loader))  # a serial read would wait at the barrier and time out
    assert batch.shape == (4, 1, 16, 16, 4)
    np.testing.assert_array_equal(batch[1].numpy(), values[:, 16:32, 0:16, 0:4])


def test_a_batch_of_local_samples_is_read_in_order_in_this_thread() -> None:
    import threading

    layer, _ = _layer()
    seen: list[str] = []
    indexer = VolumetricStridedIndexer(BOX, RES, chunk_size=(16, 16, 4), stride=(16, 16, 4))

    def note_thread(data: Any) -> Any:
        seen.append(threading.current_thread().name)
        return data

    dataset = LayerDataset(layer, indexer, transform=note_thread)
    dataset.__getitems__([0, 1, 2])
    assert seen == [threading.current_thread().name] * 3
