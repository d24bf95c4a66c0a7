"""
dependency-injector, imported without pydantic.

dependency-injector imports pydantic when it is installed (the Kubernetes client brings it),
only to offer ``Configuration.from_pydantic``, which the driver does not use; that import is
4 MB of resident memory in every node plugin (issue 15). A finder refusing pydantic while the
package loads makes it skip that support; pydantic stays importable afterwards.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType


class _NoPydantic(importlib.abc.MetaPathFinder):
    def find_spec(  # the finder protocol's signature
        self,
        fullname: str,
        path: Sequence[str] | None,  # noqa: ARG002
        target: ModuleType | None = None,  # noqa: ARG002
    ) -> None:
        if fullname.partition(".")[0] in {"pydantic", "pydantic_settings"}:
            raise ModuleNotFoundError(f"{fullname} is not loaded for dependency-injector")


if "dependency_injector.providers" not in sys.modules and "pydantic" not in sys.modules:
    _finder = _NoPydantic()
    sys.meta_path.insert(0, _finder)
    try:
        import dependency_injector.providers  # noqa: F401
    finally:
        sys.meta_path.remove(_finder)

from dependency_injector import containers, providers  # noqa: E402


__all__ = ["containers", "providers"]
