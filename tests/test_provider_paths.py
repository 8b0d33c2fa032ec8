"""Dynamic providers are pickled by reference: every stack's state holds their module path
and class name in ``__provider``, and ``refresh``/``destroy`` unpickle it from there
without running the program. Moving or renaming a provider class breaks every existing
stack unless an alias stays at the old path: this pins them."""

from __future__ import annotations

import base64
import importlib
import pickletools

import dill
import pytest
from pulumi_program import unwrap

PINNED = {
    "pulumi-python:dynamic/db:DatabaseSchema": "components.schema.DatabaseSchemaProvider",
    "pulumi-python:dynamic/db:MockDataSeed": "components.mock_data.MockDataSeedProvider",
    "pulumi-python:dynamic/db:FeatureFlagSettings": "components.feature_flags.FeatureFlagSettingsProvider",
    "pulumi-python:dynamic/db:LoginRole": "components.login_role.LoginRoleProvider",
    "pulumi-python:dynamic/cdn:CloudFrontInvalidation": "components.invalidation.CloudFrontInvalidationProvider",
    "pulumi-python:dynamic/cdn:RetiredSiteAssets": "components.retired_assets.RetiredSiteAssetsProvider",
    "pulumi-python:dynamic/stack:StackShape": "components.stack_shape.StackShapeProvider",
    "pulumi-python:dynamic/autoscaling:InstanceRefreshWait": "components.instance_refresh.InstanceRefreshWaitProvider",
}


@pytest.mark.parametrize("path", sorted(PINNED.values()))
def test_pinned_provider_paths_import(path):
    module, _, name = path.rpartition(".")
    assert isinstance(getattr(importlib.import_module(module), name), type)


def test_every_dynamic_resource_pickles_its_provider_by_reference_at_a_pinned_path(staging, production):
    dynamic = {
        r.typ: r.inputs["__provider"]
        for run in (staging, production)
        for r in run.resources
        if r.typ.startswith("pulumi-python:dynamic/")
    }
    assert set(dynamic) == set(PINNED)
    for typ, provider in dynamic.items():
        pickled = base64.b64decode(unwrap(provider))
        # By reference: the module and class names are in the pickle, the class body is not.
        module, _, name = PINNED[typ].rpartition(".")
        strings = {arg for op, arg, _ in pickletools.genops(pickled) if isinstance(arg, str)}
        assert {module, name} <= strings, typ
        restored = type(dill.loads(pickled))
        assert f"{restored.__module__}.{restored.__qualname__}" == PINNED[typ]
