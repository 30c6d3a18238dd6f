"""pcdkit's own plugins, declared as entry points in setup.cfg exactly like third-party ones.

These modules only describe plugins (names, settings, docs); implementations are imported lazily
through ``"module:attribute"`` factories, so ``pcdkit plugins list`` stays fast and never imports
optional heavy dependencies.
"""

from typing import Literal

GeometryBackend = Literal["auto", "torch", "scipy", "pytorch3d", "pyg", "avx512"]
