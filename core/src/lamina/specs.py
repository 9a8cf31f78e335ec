"""Names and specs: reach any registered builder or processor by its name.

* ``lamina.get_builder("build_cv_layer")`` returns the registered callable;
* ``lamina.build({"@type": "build_cv_layer", "path": ..., "read_procs": [...]})``
  builds a spec, nested specs first (processors inside a layer, layers inside a set);
* ``"@mode": "partial"`` returns the builder with the given arguments bound instead
  of calling it (``functools.partial``), as zetta_utils' builder does;
* ``{"@type": "lambda", "lambda_str": ...}`` builds only with ``allow_lambda=True``
  (:func:`lambdas_allowed`): a spec file is code, run only when the user says so.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping
from typing import Any

from lamina.errors import SpecError, UnknownNameError
from lamina.plugins.manager import get_host

__all__ = ["build", "get_builder", "lambdas_allowed", "registered_names"]

TYPE_KEY = "@type"
MODE_KEY = "@mode"

_LAMBDAS_ALLOWED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lamina_lambdas_allowed", default=False
)


def lambdas_allowed() -> bool:
    """Whether the spec being built may evaluate ``lambda`` functions (``build``'s
    ``allow_lambda``)."""
    return _LAMBDAS_ALLOWED.get()


def get_builder(name: str) -> Callable[..., Any]:
    """The builder, backend or processor registered as ``name``."""
    builder: Callable[..., Any] = get_host().lookup("names", name)
    return builder


def registered_names() -> list[str]:
    """Every name buildable from a spec, sorted."""
    return [e.name for e in get_host().registry.entries("names")]


def build(spec: Any, *, allow_lambda: bool = False) -> Any:
    """Build ``spec``: mappings with ``"@type"`` call that builder with the other keys.

    Mappings without ``"@type"`` and lists are built element by element; anything else
    is returned unchanged. Errors name where in the spec they happened. ``allow_lambda``:
    evaluate the spec's ``{"@type": "lambda", ...}`` functions (refused otherwise).
    """
    if not allow_lambda:
        _refuse_lambdas(spec, "spec")  # before anything in the spec is built
    token = _LAMBDAS_ALLOWED.set(allow_lambda)
    try:
        return _build(spec, "spec")
    finally:
        _LAMBDAS_ALLOWED.reset(token)


def _refuse_lambdas(spec: Any, where: str) -> None:
    if isinstance(spec, Mapping):
        if spec.get(TYPE_KEY) == "lambda":
            from lamina.flows.reference_specs import lambda_refusal

            raise SpecError(f"{where}: {lambda_refusal(spec.get('lambda_str'))}")
        for key, value in spec.items():
            _refuse_lambdas(value, f"{where}[{key!r}]")
    elif isinstance(spec, list | tuple):
        for i, value in enumerate(spec):
            _refuse_lambdas(value, f"{where}[{i}]")


def _build(spec: Any, where: str) -> Any:
    if isinstance(spec, Mapping):
        built = {k: _build(v, f"{where}[{k!r}]") for k, v in spec.items() if k != MODE_KEY}
        if TYPE_KEY not in built:
            if MODE_KEY in spec:
                raise SpecError(f"{where} has {MODE_KEY!r} but no {TYPE_KEY!r}")
            return built
        name = built.pop(TYPE_KEY)
        if not isinstance(name, str):
            raise SpecError(f"{where}[{TYPE_KEY!r}] must be a str; got {name!r}")
        try:
            builder = get_builder(name)
        except UnknownNameError as exc:
            raise UnknownNameError(f"{where}: {exc}") from None
        mode = spec.get(MODE_KEY, "regular")
        if mode == "partial":
            return functools.partial(builder, **built)
        if mode != "regular":
            raise SpecError(f"{where}[{MODE_KEY!r}] must be 'regular' or 'partial'; got {mode!r}")
        try:
            return builder(**built)
        except TypeError as exc:
            raise SpecError(f"{where}: building {name!r} failed: {exc}") from exc
    if isinstance(spec, list | tuple):
        return [_build(v, f"{where}[{i}]") for i, v in enumerate(spec)]
    return spec
