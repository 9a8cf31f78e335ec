"""The two engines of lamina-precomputed: which one serves a volume, ``engine=`` and
``--engine``, ``build_ts_layer``, and TensorStore in forked and spawned processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lamina_precomputed import CVBackend, build_cv_layer, build_ts_layer

import lamina
from lamina import BBox3D, Vec3D
from lamina.errors import DamagedChunkError

# each test names the engines it runs on
pytestmark = pytest.mark.explicit_engine

RES = Vec3D(4.0, 4.0, 40.0)
BOX = BBox3D.from_coords((0, 0, 0), (128, 128, 16), RES)


def new_layer(path: str, **kwargs: Any) -> Any:
    params: dict[str, Any] = dict(
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=(32, 32, 8),
        info_bbox=BOX,
        info_scales=[RES],
    )
    params.update(kwargs)
    return build_cv_layer(path, **params)


def data(seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).integers(0, 255, (1, 128, 128, 16), dtype=np.uint8)


# -- the choice --------------------------------------------------------------------------------
def test_auto_takes_the_faster_engine_where_both_serve(tmp_path: Path, s3_root: str) -> None:
    """Local files: the CloudVolume engine; S3: TensorStore (bench/README.md)."""
    local = new_layer(str(tmp_path / "v"), engine="auto")
    assert local.backend.engine == "cloudvolume"
    remote = new_layer(f"{s3_root}/auto-{uuid.uuid4().hex[:8]}", engine="auto")
    assert remote.backend.engine_of(RES) == "tensorstore"
    remote[RES, 0:128, 0:128, 0:16] = data()
    assert np.array_equal(remote[RES, 0:128, 0:128, 0:16], data())
    assert np.array_equal(build_cv_layer(remote.backend.path, engine="cloudvolume")[
        RES, 0:128, 0:128, 0:16
    ], data())  # fmt: skip


def test_explicit_tensorstore_on_local_files(tmp_path: Path) -> None:
    layer = new_layer(str(tmp_path / "v"), engine="tensorstore")
    assert layer.backend.engine_of(RES) == "tensorstore"
    layer[RES, 0:128, 0:128, 0:16] = data()
    assert np.array_equal(layer[RES, 0:128, 0:128, 0:16], data())


@pytest.mark.parametrize(
    ("cv_kwargs", "reason"),
    [
        ({"fill_missing": False}, "fill_missing=False"),
        ({"background_color": 7}, "background_color"),
        ({"compress": "gzip"}, "gzip compression"),
        ({"overwrite_partial_chunks": True}, "overwrite_partial_chunks"),
    ],
)
def test_options_tensorstore_cannot_honour_take_the_cloudvolume_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cv_kwargs: dict[str, Any], reason: str
) -> None:
    """Refused when asked for by name; the environment's preference falls back."""
    with pytest.raises(ValueError, match=reason):
        new_layer(str(tmp_path / "w"), cv_kwargs=cv_kwargs, engine="tensorstore").backend.engine_of(
            RES
        )
    monkeypatch.setenv("LAMINA_PRECOMPUTED_ENGINE", "tensorstore")
    layer = new_layer(str(tmp_path / "v"), cv_kwargs=cv_kwargs)
    assert layer.backend.engine_of(RES) == "cloudvolume"


def test_explicit_tensorstore_on_mem_is_refused_before_anything_is_written(mem_root: str) -> None:
    path = f"{mem_root}/refused"
    with pytest.raises(ValueError, match=r"engine='tensorstore' cannot serve .*mem://"):
        new_layer(path, engine="tensorstore")
    assert lamina_precomputed_info_or_none(path) is None
    assert new_layer(path, engine="auto").backend.engine == "cloudvolume"


def test_a_bad_engine_variable_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_PRECOMPUTED_ENGINE", "fast")
    with pytest.raises(ValueError, match=r"\$LAMINA_PRECOMPUTED_ENGINE must be one of"):
        CVBackend("mem://lamina-engines/none")


def lamina_precomputed_info_or_none(path: str) -> Any:
    from lamina_precomputed.info import read_info_or_none

    return read_info_or_none(path)


def test_bad_engine_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"engine must be one of 'auto', 'tensorstore'"):
        new_layer(str(tmp_path / "v"), engine="tensor")
    assert not (tmp_path / "v").exists()


def test_cloudvolume_local_gzip_chunks_are_read_by_the_cloudvolume_engine(tmp_path: Path) -> None:
    """TensorStore reads CloudVolume's local ``key.gz`` chunks as zeros: such a scale
    goes to the CloudVolume engine under auto, and tensorstore is refused."""
    from cloudvolume import CloudVolume

    path = tmp_path / "gz"
    new_layer(str(path), engine="cloudvolume")  # writes the info
    cv = CloudVolume(f"file://{path}", mip=0, compress="gzip", progress=False)
    cv[0:128, 0:128, 0:16] = data(3)[0][..., None]
    assert any(name.endswith(".gz") for name in os.listdir(path / "4_4_40"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAMINA_PRECOMPUTED_ENGINE", "tensorstore")
        layer = build_cv_layer(str(path))
    assert layer.backend.engine_of(RES) == "cloudvolume"
    assert np.array_equal(layer[RES, 0:128, 0:128, 0:16], data(3))
    with pytest.raises(ValueError, match=r"stored compressed .*\.gz"):
        build_cv_layer(str(path), engine="tensorstore")[RES, 0:1, 0:1, 0:1]


def test_compresso_scale_takes_the_cloudvolume_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMINA_PRECOMPUTED_ENGINE", "tensorstore")
    layer = new_layer(
        str(tmp_path / "c"), info_type="segmentation", info_data_type="uint32",
        info_encoding="compresso",
    )  # fmt: skip
    assert layer.backend.engine == "tensorstore"  # the volume's, but not this scale's
    assert layer.backend.engine_of(RES) == "cloudvolume"
    labels = (data(4) // 64).astype(np.uint32)
    layer[RES, 0:128, 0:128, 0:16] = labels
    assert np.array_equal(layer[RES, 0:128, 0:128, 0:16], labels)


def test_describe_and_lamina_info_show_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "v"
    new_layer(str(path)).backend  # noqa: B018
    described = CVBackend(str(path), engine="cloudvolume").describe()
    assert described["engine"] == "cloudvolume"
    assert described["scales"][0]["engine"] == "cloudvolume"
    lamina_cli = [sys.executable, "-m", "lamina"]
    shown = subprocess.run(
        [*lamina_cli, "info", str(path), "--engine", "tensorstore", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(shown.stdout)["engine"] == "tensorstore"
    shown = subprocess.run(
        [*lamina_cli, "info", str(path), "--engine", "cloudvolume"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "engine: cloudvolume" in shown.stdout
    bad = subprocess.run(
        [*lamina_cli, "info", str(path), "--engine", "bogus"], capture_output=True, text=True
    )
    assert bad.returncode != 0
    assert bad.stderr.count("\n") == 1
    assert "engine must be one of" in bad.stderr


def test_lamina_copy_engine_reaches_the_new_destination(tmp_path: Path) -> None:
    src = new_layer(str(tmp_path / "src"))
    src[RES, 0:128, 0:128, 0:16] = data(5)
    dst = tmp_path / "dst"
    subprocess.run(
        [sys.executable, "-m", "lamina", "copy", str(tmp_path / "src"), str(dst),
         "--engine", "cloudvolume"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    layer = build_cv_layer(str(dst), engine="tensorstore")
    assert np.array_equal(layer[RES, 0:128, 0:128, 0:16], data(5))


# -- both engines write what the other reads -----------------------------------------------------
@pytest.mark.parametrize("writer", ["tensorstore", "cloudvolume"])
@pytest.mark.parametrize(
    ("encoding", "dtype", "channels"),
    [
        ("raw", "uint8", 1),
        ("raw", "float32", 2),
        ("png", "uint16", 1),
        ("jpeg", "uint8", 3),
        ("compressed_segmentation", "uint64", 1),
    ],
)
def test_each_engine_reads_what_the_other_wrote(
    tmp_path: Path, writer: str, encoding: str, dtype: str, channels: int
) -> None:
    reader = "cloudvolume" if writer == "tensorstore" else "tensorstore"
    kwargs = dict(info_data_type=dtype, info_num_channels=channels, info_encoding=encoding)
    if encoding == "compressed_segmentation":
        kwargs["info_type"] = "segmentation"
    layer = new_layer(str(tmp_path / "v"), engine=writer, **kwargs)
    values = np.random.default_rng(1).integers(0, 200, (channels, 128, 128, 16)).astype(dtype)
    layer[RES, 0:128, 0:128, 0:16] = values
    written = layer[RES, 0:128, 0:128, 0:16]
    other = build_cv_layer(str(tmp_path / "v"), engine=reader)
    assert np.array_equal(other[RES, 0:128, 0:128, 0:16], written)
    if encoding != "jpeg":  # jpeg is lossy: both engines decode the same stored bytes
        assert np.array_equal(written, values)


def test_sharded_scale_on_both_engines(tmp_path: Path) -> None:
    sharding = {
        "@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 0, "hash": "identity",
        "minishard_bits": 0, "shard_bits": 2, "minishard_index_encoding": "raw",
        "data_encoding": "gzip",
    }  # fmt: skip
    layer = new_layer(
        str(tmp_path / "s"), info_extra_scale_data={"sharding": sharding}, engine="tensorstore"
    )
    grid = layer.backend.get_write_grid_size(RES)
    layer[RES, 0:128, 0:128, 0:16] = data(6)
    other = build_cv_layer(str(tmp_path / "s"), engine="cloudvolume")
    assert np.array_equal(other[RES, 0:128, 0:128, 0:16], data(6))
    # a write of part of a shard, opted into: TensorStore's read-modify-write
    partial = layer.backend.with_changes(enforce_chunk_aligned_writes=False)
    from lamina import VolumetricIndex

    partial.write(
        VolumetricIndex.from_coords((0, 0, 0), (32, 32, 8), RES), np.zeros((1, 32, 32, 8), "u1")
    )
    expected = data(6).copy()
    expected[:, 0:32, 0:32, 0:8] = 0
    assert np.array_equal(other[RES, 0:128, 0:128, 0:16], expected)
    assert tuple(grid) != (32, 32, 8)


_PART_WRITER = """
import sys
import numpy as np
from lamina import Vec3D, VolumetricIndex
from lamina_precomputed import build_cv_layer
path, first = sys.argv[1], int(sys.argv[2])
res = Vec3D(4, 4, 40)
layer = build_cv_layer(path, engine="tensorstore")
backend = layer.backend.with_changes(enforce_chunk_aligned_writes=False)
for i in range(first, 16, 2):  # every other 32 x 32 x 8 part of the 128 x 128 x 16 shard
    x, y, z = (i % 4) * 32, (i // 4 % 2) * 64, (i // 8) * 8
    part = VolumetricIndex.from_coords((x, y, z), (x + 32, y + 64, z + 8), res)
    backend.write(part, np.full((1, 32, 64, 8), 1 + first, "u1"))
"""


def test_parts_of_one_shard_written_by_two_processes_at_once_are_all_kept(
    tmp_path: Path,
) -> None:
    """Each partial-shard write is a read-modify-write of the shard committed only if the
    shard is unchanged since it was read (else read again): two processes writing
    alternate parts of the same shard at once lose none of them."""
    sharding = {
        "@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 0, "hash": "identity",
        "minishard_bits": 0, "shard_bits": 0, "minishard_index_encoding": "raw",
        "data_encoding": "raw",
    }  # fmt: skip
    path = str(tmp_path / "s")
    new_layer(path, info_extra_scale_data={"sharding": sharding}, engine="tensorstore")
    writers = [
        subprocess.Popen([sys.executable, "-c", _PART_WRITER, path, str(first)]) for first in (0, 1)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    stored = build_cv_layer(path, engine="cloudvolume")[RES, 0:128, 0:128, 0:16]
    expected = np.zeros((1, 128, 128, 16), "u1")
    for i in range(16):
        x, y, z = (i % 4) * 32, (i // 4 % 2) * 64, (i // 8) * 8
        expected[:, x : x + 32, y : y + 64, z : z + 8] = 1 + i % 2
    assert np.array_equal(stored, expected)
    assert os.listdir(tmp_path / "s" / "4_4_40") == ["0.shard"]


def test_damaged_chunk_is_an_error_on_tensorstore(tmp_path: Path) -> None:
    layer = new_layer(str(tmp_path / "v"), engine="tensorstore")
    layer[RES, 0:128, 0:128, 0:16] = data()
    (tmp_path / "v" / "4_4_40" / "0-32_0-32_0-8").write_bytes(b"cut")
    with pytest.raises(DamagedChunkError, match="0-32_0-32_0-8"):
        layer[RES, 0:32, 0:32, 0:8]


# -- build_ts_layer ------------------------------------------------------------------------------
def test_build_ts_layer_from_a_reference_spec(tmp_path: Path) -> None:
    spec = {
        "@type": "build_ts_layer",
        "path": str(tmp_path / "ts"),
        "info_type": "image",
        "info_data_type": "uint8",
        "info_num_channels": 1,
        "info_chunk_size": [32, 32, 8],
        "info_bbox": {
            "@type": "BBox3D.from_coords",
            "start": [0, 0, 0],
            "end": [128, 128, 16],
            "resolution": [4, 4, 40],
        },
        "info_scales": [[4, 4, 40]],
        "cache_bytes_limit": 1 << 20,
        "default_desired_resolution": [4, 4, 40],
        "index_resolution": [4, 4, 40],
    }
    layer = lamina.build(spec)
    assert layer.backend.engine == "tensorstore"
    layer[0:128, 0:128, 0:16] = data(9)
    assert np.array_equal(layer[0:128, 0:128, 0:16], data(9))
    io = layer.backend._io(RES)
    limit = io.handle().spec(retain_context=True).to_json()["context"]["cache_pool"]
    assert limit == {"total_bytes_limit": 1 << 20}
    assert build_ts_layer is lamina.get_builder("build_ts_layer")


def test_build_ts_layer_refuses_what_tensorstore_cannot_serve(mem_root: str) -> None:
    with pytest.raises(ValueError, match="engine='tensorstore' cannot serve"):
        build_ts_layer(
            f"{mem_root}/ts", info_type="image", info_data_type="uint8",
            info_num_channels=1, info_chunk_size=(32, 32, 8), info_bbox=BOX,
            info_scales=[RES],
        )  # fmt: skip


# -- processes ---------------------------------------------------------------------------------
#: Run in a fresh interpreter (whether this one used TensorStore is the point): the
#: parent opens the volume on TensorStore, reads it or not, and a child made by ``method``
#: reads it and writes a chunk; prints the child's exit code, its engine and whether it
#: read the right data.
_CHILD_SCRIPT = """
import json, multiprocessing, sys
import numpy as np
from lamina import Vec3D
from lamina_precomputed import build_cv_layer

path, method, parent_reads = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
RES = Vec3D(4.0, 4.0, 40.0)
layer = build_cv_layer(path, engine="tensorstore")
if parent_reads:
    layer[RES, 0:1, 0:1, 0:1]  # TensorStore used in the parent

def child(queue):
    got = layer[RES, 0:128, 0:128, 0:16]
    layer[RES, 0:32, 0:32, 0:8] = np.full((1, 32, 32, 8), 9, np.uint8)
    queue.put((int(got.sum()), layer.backend.engine_of(RES)))

if __name__ == "__main__":
    context = multiprocessing.get_context(method)
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    process.join(60)
    total, engine = queue.get(timeout=5) if process.exitcode == 0 else (None, None)
    print(json.dumps({"exitcode": process.exitcode, "engine": engine, "sum": total}))
"""


@pytest.mark.parametrize(
    ("method", "parent_reads", "child_engine"),
    [
        ("fork", True, "cloudvolume"),  # TensorStore would abort the child
        ("fork", False, "tensorstore"),  # forked before any use: the child runs it
        ("spawn", True, "tensorstore"),
    ],
)
def test_a_child_process_reads_and_writes_whatever_the_parent_did(
    tmp_path: Path, method: str, parent_reads: bool, child_engine: str
) -> None:
    """TensorStore aborts a process forked after its parent used it: such a child reads
    and writes through the CloudVolume engine and gets the same data; other children run
    TensorStore themselves."""
    path = str(tmp_path / "v")
    new_layer(path, engine="cloudvolume")[RES, 0:128, 0:128, 0:16] = data(10)
    script = tmp_path / "child.py"
    script.write_text(_CHILD_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), path, method, "1" if parent_reads else "0"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"exitcode": 0, "engine": child_engine, "sum": int(data(10).sum())}
    expected = data(10).copy()
    expected[:, 0:32, 0:32, 0:8] = 9
    layer = build_cv_layer(path, engine="tensorstore")
    assert np.array_equal(layer[RES, 0:128, 0:128, 0:16], expected)
