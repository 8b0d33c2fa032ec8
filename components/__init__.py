"""The Pulumi program's components, grouped by plane.

- ``data/``: the database (``Database``), its operator function and that function's archive.
- ``app/``: the backend (``BackendService``), its boot configuration and release, and the site
  (``StaticSite``) with its file list.
- ``observability/``: monitoring (``Monitoring``), the Datadog agent's settings and the queries
  both share.
- here, what every plane reaches: the stack configuration (``config/``, parsed and checked
  before anything is created), the network, shared AWS policy helpers and private buckets, the
  stack's shape guard, and the dynamic providers with their base (``dynamic.py``).

The dynamic providers stay in this folder whichever plane they serve (``schema``,
``mock_data``, ``feature_flags``, ``login_role``: data; ``invalidation``,
``instance_refresh``: app; ``stack_shape``): a provider is pickled by reference, so its module
path is in every stack's state (``tests/test_provider_paths.py`` pins them).

A module that moved into a plane stays importable at its old path (``components.backend`` is
``components.app.backend``, the same module object), so code written against the old layout
keeps working; new code imports the plane's path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

# old module name -> where it lives now
MOVED = {
    "components.database": "components.data.database",
    "components.operator": "components.data.operator",
    "components.operator_package": "components.data.operator_package",
    "components.backend": "components.app.backend",
    "components.backend_boot": "components.app.backend_boot",
    "components.frontend": "components.app.frontend",
    "components.site_files": "components.app.site_files",
    "components.release_archive": "components.app.release_archive",
    "components.monitoring": "components.observability.monitoring",
    "components.agent_config": "components.observability.agent_config",
    "components.datadog_queries": "components.observability.datadog_queries",
}


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the moved module itself (not a copy): one module object,
    so a patch or an ``isinstance`` through either name sees the same thing."""

    def __init__(self):
        self.moved: dict[str, str] = {}

    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name in self.moved else None

    def create_module(self, spec):
        module = importlib.import_module(self.moved[spec.name])
        spec.loader_state = module.__spec__  # the import system sets the alias's spec on the module
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state  # its own spec back: the module is already loaded


def keep_old_paths(moved: dict[str, str]) -> None:
    """Each old module name of ``moved`` imports the module now at the new one (``ops/``
    declares its own table: its database code moved to ``dbops/``)."""
    finder = next((finder for finder in sys.meta_path if isinstance(finder, _OldPaths)), None)
    if finder is None:
        finder = _OldPaths()
        sys.meta_path.append(finder)
    finder.moved.update(moved)


keep_old_paths(MOVED)
