"""Generic layer sets (``build_layer_set``): any members, one index, ``{name: data}``."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from lamina_layerset import LayerSet, LayerSetBackend, UnknownMemberError, build_layer_set
from layerset_support import RES, box

import lamina
from lamina import (
    BBox3D,
    DBIndex,
    ReadonlyLayerError,
    VolumetricIndex,
    build_memory_db_layer,
    build_memory_layer,
    build_memory_volumetric_layer,
)

BOX = BBox3D.from_coords((0, 0, 0), (64, 64, 8), RES)


def section_key(idx: VolumetricIndex) -> DBIndex:
    """Index processor of the key-value member: one row per z section."""
    return DBIndex({f"z{idx.start[2]}": ("value",)})


def mixed_set(table: Any = None, **kwargs: Any) -> LayerSet:
    table = table if table is not None else build_memory_db_layer()
    return build_layer_set(
        {
            "img": build_memory_volumetric_layer(BOX, [RES], chunk_size=(16, 16, 4)),
            "meta": table.with_procs(index_procs=[section_key]),
        },
        **kwargs,
    )


def test_a_volume_and_a_key_value_table_read_with_one_index() -> None:
    table = build_memory_db_layer()
    layer_set = mixed_set(table)
    idx = box((0, 0, 4), (16, 16, 8))
    layer_set[idx] = {"img": 5, "meta": [{"value": "section 4 is fine"}]}
    out = layer_set[idx]
    assert list(out) == ["img", "meta"]
    assert (out["img"] == 5).all()
    assert out["img"].shape == (1, 16, 16, 4)
    assert out["meta"] == [{"value": "section 4 is fine"}]
    assert table["z4"] == "section 4 is fine"  # the same table, indexed by key
    assert isinstance(layer_set, lamina.Layer)


def test_partial_writes_and_errors_naming_keys_and_members() -> None:
    layer_set = mixed_set()
    idx = box((0, 0, 0), (16, 16, 4))
    layer_set[idx] = {"meta": [{"value": 1}]}
    assert not layer_set[idx]["img"].any()
    with pytest.raises(UnknownMemberError, match=r"no member\(s\) \['image'\].*\['img', 'meta'\]"):
        layer_set[idx] = {"image": 1, "meta": [{"value": 2}]}
    assert layer_set[idx]["meta"] == [{"value": 1}]  # nothing was written
    with pytest.raises(ValueError, match="empty dict"):
        layer_set[idx] = {}
    with pytest.raises(ValueError, match="takes a dict"):
        layer_set[idx] = [1, 2]
    with pytest.raises(ValueError, match=r"member 'img'.*spatial shape"):
        layer_set[idx] = {"img": np.zeros((1, 2, 2, 2), np.uint8), "meta": [{"value": 3}]}
    assert layer_set[idx]["meta"] == [{"value": 1}]


def test_name_has_no_stray_f_and_pformat_lists_members() -> None:
    layer_set = mixed_set()
    assert layer_set.name == "LayerSet[img, meta]"  # the reference printed LayerSet[fimg_meta]
    text = layer_set.pformat()
    assert text.splitlines()[0] == "LayerSet[img, meta]"
    assert "  img: mem://volume-" in text
    assert "  meta: mem://keyvalue-" in text


def test_set_level_processors_and_readonly() -> None:
    layer_set = build_layer_set(
        {"a": build_memory_layer(), "b": build_memory_layer()},
        index_procs=[lambda key: f"k-{key}"],
        read_procs=[lambda d: {**d, "both": (d["a"], d["b"])}],
        write_procs=[lambda d: {k: v * 10 for k, v in d.items()}],
    )
    layer_set["x"] = {"a": 1, "b": 2}
    assert layer_set["x"] == {"a": 10, "b": 20, "both": (10, 20)}
    assert layer_set.layers["a"].read_with_procs("k-x") == 10
    readonly = build_layer_set({"a": build_memory_layer()}, readonly=True)
    with pytest.raises(ReadonlyLayerError):
        readonly["x"] = {"a": 1}
    with pytest.raises(ReadonlyLayerError):
        readonly.delete()


def test_member_errors_keep_their_type_and_name_the_member() -> None:
    layer_set = build_layer_set({"a": build_memory_layer(), "b": build_memory_layer()})
    layer_set["x"] = {"a": 1}
    with pytest.raises(KeyError) as info:
        layer_set["x"]
    assert "reading member 'b' (mem://" in str(info.value)
    assert "of LayerSet[a, b]" in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)


def test_delete_and_with_changes() -> None:
    a, b = build_memory_layer(name="mem://a"), build_memory_layer(name="mem://b")
    layer_set = build_layer_set({"a": a, "b": b})
    layer_set["k"] = {"a": 1, "b": 2}
    renamed = layer_set.backend.with_changes(name="mem://set")
    assert isinstance(renamed, LayerSetBackend)
    assert [m.name for m in renamed.layers.values()] == ["mem://set/a", "mem://set/b"]
    layer_set.delete()
    with pytest.raises(KeyError):
        a.read_with_procs("k")
    with pytest.raises(KeyError):
        b.read_with_procs("k")
    readonly_member = build_layer_set({"a": a, "b": build_memory_layer(readonly=True)})
    a.write_with_procs("k", 1)
    with pytest.raises(ReadonlyLayerError, match=r"\['b'\]"):
        readonly_member.delete()
    assert a.read_with_procs("k") == 1


def test_generic_sets_pickle_and_validate_members() -> None:
    layer_set = mixed_set(max_workers=1)
    idx = box((0, 0, 0), (16, 16, 4))
    layer_set[idx] = {"img": 3, "meta": [{"value": "x"}]}
    clone = pickle.loads(pickle.dumps(layer_set))
    assert clone.backend.max_workers == 1
    assert (clone[idx]["img"] == 3).all()
    assert clone[idx]["meta"] == [{"value": "x"}]
    with pytest.raises(TypeError, match="member 'x' must be a lamina Layer"):
        build_layer_set({"x": object()})  # type: ignore[dict-item]
