"""The screenshot in the README: ``lamina view`` of the main job's volume, as a small PNG.

Run the quickstart first (it writes the main job's volume,
``quickstart-output/pipeline/copy``), then, with lamina-view installed and Chromium on
PATH::

    python plugins/view/tools/readme_screenshot.py [VOLUME] [--out docs/view-screenshot.png]

It opens VOLUME through the path-opener hook exactly as ``lamina view VOLUME`` does,
takes the viewer's own 800 x 600 screenshot in headless Chromium (neuroglancer's default
4-panel layout and zoom, at the centre of the volume) and writes it with a 64-colour
palette (octree quantization, no dithering) so that the PNG stays small (about 45 KiB).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from lamina_view.cli import open_layer
from lamina_view.viewer import view
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "volume", nargs="?", default=str(ROOT / "quickstart-output" / "pipeline" / "copy")
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "view-screenshot.png"))
    parser.add_argument("--size", default="800,600", help="WIDTH,HEIGHT in pixels")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split(","))
    with view({"copy": open_layer(args.volume)}) as shown:
        png = shown.screenshot((width, height), timeout=120)
    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("RGB").quantize(
            64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    small.save(args.out, optimize=True)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KiB, {width}x{height})")


if __name__ == "__main__":
    main()
