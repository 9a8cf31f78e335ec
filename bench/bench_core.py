"""Core overhead: the cost of ``import lamina`` and of one read through a Layer.

Run: ``python bench/bench_core.py`` (with lamina installed, e.g. in the tox env ``core``:
``.tox/core/bin/python bench/bench_core.py``). Prints a table; asserts nothing about time.

* import: ``-X importtime``'s cumulative time for ``lamina`` (best of N fresh
  interpreters), and a check that the import created no plugin host and imported no
  plugin module;
* read: µs per ``layer[key]`` over the in-memory backend with no processors, next to
  ``backend.read(key)`` and a plain dict lookup, so the layer's own cost is visible.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import timeit


def import_time_us(runs: int = 15) -> tuple[float, float]:
    """Best and median cumulative µs of ``import lamina`` over fresh interpreters."""
    times = []
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import lamina"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        match = re.search(r"^import time:\s+\d+ \|\s+(\d+) \| lamina$", err, re.M)
        assert match, err
        times.append(float(match.group(1)))
    return min(times), statistics.median(times)


def import_loads_no_plugin() -> bool:
    code = (
        "import sys, lamina, lamina.plugins.manager as m;"
        "print(m._current_host is None and not any("
        "k.startswith('lamina_') or k == 'lamina.builtins' for k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def per_call_us(stmt: str, setup: str, number: int = 200_000, repeat: int = 7) -> float:
    return min(timeit.repeat(stmt, setup, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    setup = (
        "import lamina\n"
        "layer = lamina.build_memory_layer()\n"
        "layer['k'] = 1\n"
        "backend = layer.backend\n"
        "store = {'k': 1}\n"
        "key = 'k'\n"
    )
    best, median = import_time_us()
    rows = [
        ("import lamina (cumulative, best)", f"{best / 1000:.2f} ms"),
        ("import lamina (cumulative, median)", f"{median / 1000:.2f} ms"),
        ("import lamina loads no plugin", str(import_loads_no_plugin())),
        ("layer[key], no processors", f"{per_call_us('layer[key]', setup):.3f} µs/call"),
        (
            "layer.read_with_procs(key)",
            f"{per_call_us('layer.read_with_procs(key)', setup):.3f} µs/call",
        ),
        ("backend.read(key)", f"{per_call_us('backend.read(key)', setup):.3f} µs/call"),
        ("dict lookup", f"{per_call_us('store[key]', setup):.3f} µs/call"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"python {sys.version.split()[0]}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
