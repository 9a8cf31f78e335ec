"""Fixtures for the lamina-layerset tests."""

from __future__ import annotations

import os
import tempfile

# CloudVolume reads this when it is imported: keep any disk cache out of the home directory.
os.environ.setdefault("CLOUD_VOLUME_CACHE_DIR", tempfile.mkdtemp(prefix="lamina-layerset-cv-"))
