"""Headless Chromium for screenshots when no browser shows a view.

The browser is started as a plain process on the view's URL (no WebDriver needed):
``--headless=new`` with WebGL through ANGLE + SwiftShader, so it needs no GPU and no
display, and a fresh profile in a temporary directory. The page connects back to the
viewer's server and answers screenshot requests like any browser tab. Chromium's own
output goes to a log file whose end is quoted when something goes wrong.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Sequence

__all__ = ["CHROMIUM_FLAGS", "BrowserNotFoundError", "HeadlessChromium", "find_chromium"]

#: Flags for a headless Chromium that renders WebGL2 in software (checked with Debian's
#: chromium 156; see the plugin README).
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless=new",
    "--no-sandbox",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--hide-scrollbars",
)

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class BrowserNotFoundError(FileNotFoundError):
    """No Chromium or Chrome binary was found."""


def find_chromium(path: str | None = None) -> str:
    """The browser binary: ``path``, else ``$CHROMIUM_PATH``, else the first of chromium,
    chromium-browser, google-chrome… on ``PATH``."""
    for candidate in (path, os.environ.get("CHROMIUM_PATH")):
        if candidate:
            found = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
            if found is None:
                raise BrowserNotFoundError(f"no browser binary at {candidate!r}")
            return found
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found is not None:
            return found
    raise BrowserNotFoundError(
        "screenshot() needs a browser showing the view, or Chromium to start one headless: "
        "none is connected and no chromium/google-chrome binary is on PATH (install "
        "Debian's `chromium` package, or set CHROMIUM_PATH)"
    )


_running: weakref.WeakSet[HeadlessChromium] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """No browser outlives the interpreter that started it."""
    for browser in list(_running):
        browser.stop(timeout=5)


class HeadlessChromium:
    """One headless Chromium process showing ``url``; :meth:`stop` ends it and removes
    its profile (also done at interpreter exit for any still running)."""

    def __init__(
        self,
        url: str,
        window_size: tuple[int, int] = (1280, 1024),
        binary: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.binary = find_chromium(binary)
        self.profile = tempfile.mkdtemp(prefix="lamina-view-chromium-")
        self.log_path = os.path.join(self.profile, "chromium.log")
        width, height = window_size
        args = [
            self.binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self.profile}",
            f"--window-size={int(width)},{int(height)}",
            *extra_args,
            url,
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal reaches lamina, not Chromium
            )
        _running.add(self)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines Chromium printed (D-Bus noise left out)."""
        try:
            with open(self.log_path, errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if "dbus" not in line.lower()]
        return "\n".join(kept[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """End the browser (terminate, then kill after ``timeout`` s) and remove its profile."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        _running.discard(self)
        shutil.rmtree(self.profile, ignore_errors=True)
