"""The joint augmentations on a layer set of image and labels: the misalignment's widened
read and the requested shape in both modes, labels shifted exactly like the image; flips
and rotations keeping them aligned; and the reference's checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from augment_support import R, image, image_and_labels
from lamina_augment import FlipRotateAug, MisalignProcessor

from lamina import VolumetricIndex
from lamina.volumetric.memory import MemoryVolumetricBackend


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    boxes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    original = MemoryVolumetricBackend.read

    def recording(backend: Any, idx: VolumetricIndex) -> Any:
        boxes.append((tuple(idx.start), tuple(idx.stop)))
        return original(backend, idx)

    monkeypatch.setattr(MemoryVolumetricBackend, "read", recording)
    return boxes


@pytest.mark.parametrize("mode", ["step", "slip"])
def test_misalignment_widens_the_read_and_shifts_sections(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = MisalignProcessor(
        prob=1.0,
        disp_min_in_unit=24,
        disp_max_in_unit=64,
        mode=mode,
        keys_to_apply=["img", "labels"],
        seed=5,
    )
    layer = image_and_labels().with_procs(read_procs=[proc])
    plain = image()
    reads = _reads(monkeypatch)
    for _ in range(10):
        reads.clear()
        out = layer[32:96, 32:64, 4:12]
        assert out["img"].shape == out["labels"].shape == (1, 64, 32, 8)
        np.testing.assert_array_equal(out["img"], out["labels"])  # shifted exactly alike
        (lo, hi), _ = reads  # one read per member, the same widened box
        dx = (32 - lo[0]) if lo[0] < 32 else -(hi[0] - 96)
        dy = (32 - lo[1]) if lo[1] < 32 else -(hi[1] - 64)
        assert 3 <= abs(dx) <= 8  # 24-64 nm at 8 nm, floored
        assert 3 <= abs(dy) <= 8
        assert (lo[2], hi[2]) == (4, 12)
        shifted = plain[32 - dx : 96 - dx, 32 - dy : 64 - dy, 4:12]
        base = plain[32:96, 32:64, 4:12]
        moved = [z for z in range(8) if np.array_equal(out["img"][..., z], shifted[..., z])]
        kept = [z for z in range(8) if np.array_equal(out["img"][..., z], base[..., z])]
        assert sorted(moved + kept) == list(range(8))
        if mode == "slip":
            assert len(moved) == 1
        else:
            assert moved == list(range(moved[0], 8))
            assert moved[0] >= 1  # never the first section: that would be no misalignment


def test_misalignment_metadata_and_checks() -> None:
    proc = MisalignProcessor(
        prob=1.0,
        disp_min_in_unit=16,
        disp_max_in_unit=16,
        mode="slip",
        keys_to_apply=["img"],
        add_misalignment_metadata="misaligned",
        seed=1,
    )
    out = image_and_labels().with_procs(read_procs=[proc])[32:96, 32:64, 4:12]
    first, second = out["misaligned"]  # slip: the section meets both neighbours misaligned
    assert first[1] == second[0]
    np.testing.assert_array_equal(out["labels"], image()[32:96, 32:64, 4:12])  # not in keys
    assert not np.array_equal(out["img"], out["labels"])
    with pytest.raises(ValueError, match="slip mode on a layer set needs keys_to_apply"):
        image_and_labels().with_procs(
            read_procs=[
                MisalignProcessor(prob=1.0, disp_min_in_unit=8, disp_max_in_unit=8, mode="slip")
            ]
        )[0:64, 0:64, 0:8]
    with pytest.raises(NotImplementedError, match="reads only"):
        image().with_procs(
            write_procs=[MisalignProcessor(prob=1.0, disp_min_in_unit=8, disp_max_in_unit=8)]
        )[0:32, 0:32, 0:8] = 0
    with pytest.raises(ValueError, match="disp_min_in_unit"):
        MisalignProcessor(prob=1.0, disp_min_in_unit=9, disp_max_in_unit=8)
    never = image().with_procs(
        read_procs=[MisalignProcessor(prob=0.0, disp_min_in_unit=80, disp_max_in_unit=80)]
    )
    np.testing.assert_array_equal(never[0:64, 0:64, 0:8], image()[0:64, 0:64, 0:8])


CANDIDATES = [(fx, fy, k) for fx in (False, True) for fy in (False, True) for k in range(4)]


def _transformed(a: Any, fx: bool, fy: bool, k: int) -> Any:
    if fx:
        a = np.flip(a, 1)
    if fy:
        a = np.flip(a, 2)
    return np.rot90(a, k, axes=(1, 2))


@pytest.mark.parametrize("box", [(32, 96, 16, 80), (32, 96, 16, 64)], ids=["square", "64 x 48"])
def test_flips_and_rotations_keep_image_and_labels_aligned(box: tuple[int, int, int, int]) -> None:
    x0, x1, y0, y1 = box
    layer = image_and_labels().with_procs(read_procs=[FlipRotateAug(seed=4)])
    plain = image()
    seen = set()
    for _ in range(40):
        out = layer[x0:x1, y0:y1, 2:10]
        assert out["img"].shape == (1, x1 - x0, y1 - y0, 8)
        np.testing.assert_array_equal(out["img"], out["labels"])
        matches = []
        for fx, fy, k in CANDIDATES:
            if k % 2 and (x1 - x0) != (y1 - y0):
                cx, cy, half = (x0 + x1) // 2, (y0 + y1) // 2, (y1 - y0) // 2
                hx = (x1 - x0) // 2
                source = plain[cx - half : cx + half, cy - hx : cy + hx, 2:10]
            else:
                source = plain[x0:x1, y0:y1, 2:10]
            if np.array_equal(out["img"], _transformed(source, fx, fy, k)):
                matches.append((fx, fy, k))
        assert matches, "the output is no flip or rotation of the box"
        seen.add(matches[0])
    assert len(seen) > 4  # the draws vary


def test_joint_augmentations_take_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    proc = MisalignProcessor(prob=1.0, disp_min_in_unit=16, disp_max_in_unit=16, seed=3)
    idx = VolumetricIndex.from_coords((8, 8, 0), (40, 40, 6), R)
    widened, state = proc.process_index(idx, "read")
    data = torch.arange(int(np.prod(widened.shape)), dtype=torch.int32).reshape(1, *widened.shape)
    out = proc.process_data(data, "read", state)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.int32
    assert tuple(out.shape) == (1, 32, 32, 6)
    flipped = FlipRotateAug(seed=1).process_data(data, "read", None)
    assert flipped is data  # not applied: unchanged, the same object
