"""lamina-layerset: many layers read and written as one layer of ``{name: data}``.

``build_layer_set(layers, ...)`` groups any lamina layers; ``build_volumetric_layer_set(
layers, ...)`` groups volumetric layers into one :class:`lamina.VolumetricLayer` indexed
in every volumetric form. Members are read concurrently (bounded threads); errors name
the member. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "LayerSet": "lamina_layerset.layer_set",
    "LayerSetBackend": "lamina_layerset.layer_set",
    "build_layer_set": "lamina_layerset.layer_set",
    "VolumetricSetBackend": "lamina_layerset.volumetric",
    "build_volumetric_layer_set": "lamina_layerset.volumetric",
    "MemberKeyError": "lamina_layerset.errors",
    "MembersDisagreeError": "lamina_layerset.errors",
    "UnknownMemberError": "lamina_layerset.errors",
    "DEFAULT_MAX_WORKERS": "lamina_layerset._members",
    # the core's set-level processor (masks a region of interest), re-exported here
    "ROIMaskProcessor": "lamina.volumetric.processors",
}

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "LayerSet",
    "LayerSetBackend",
    "MemberKeyError",
    "MembersDisagreeError",
    "ROIMaskProcessor",
    "UnknownMemberError",
    "VolumetricSetBackend",
    "build_layer_set",
    "build_volumetric_layer_set",
]

if TYPE_CHECKING:
    from lamina.volumetric.processors import ROIMaskProcessor
    from lamina_layerset._members import DEFAULT_MAX_WORKERS
    from lamina_layerset.errors import MemberKeyError, MembersDisagreeError, UnknownMemberError
    from lamina_layerset.layer_set import LayerSet, LayerSetBackend, build_layer_set
    from lamina_layerset.volumetric import VolumetricSetBackend, build_volumetric_layer_set


__getattr__ = module_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
