"""The tenth `pulumi up` (issue 23): what later updates, replacements, destroys and several
stacks in one account do. Under Pulumi's mocks, and ``StackShape`` also through the engine's
gRPC (tests/engine.py): its Check is what refuses a change before anything happens."""

from __future__ import annotations

import pulumi
import pytest
from engine import DIFF_NONE, DIFF_SOME, ProviderError, PulumiEngine
from pulumi.runtime.rpc import UNKNOWN
from pulumi_program import RecordingMocks, run_program, stack_config, unwrap_all

from components.stack_shape import checked_inputs, refusal

SHAPE = "pulumi-python:dynamic/stack:StackShape"
INSTANCE = "aws:rds/instance:Instance"
RANDOM_ID = "random:index/randomId:RandomId"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
BUCKET = "aws:s3/bucket:Bucket"
SNAPSHOT = "aws:rds/snapshot:Snapshot"


def review_config() -> dict:
    """Staging's file as a review stack may run it (tests/test_review_config.py builds the real one)."""
    config = stack_config("staging")
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "deletionProtection": False}
    return config


@pytest.fixture(scope="module")
def review():
    return run_program(review_config(), stack="pr-42")


# --- the final snapshot: keyed to the instance's identity ------------------------------------


def test_final_snapshot_suffix_is_renewed_with_what_replaces_the_instance(staging):
    """A replaced instance took final-<suffix> on its way out; its successor must not take the
    same name when the stack is destroyed (DBSnapshotAlreadyExists would stop the destroy)."""
    suffix = staging.of_name(RANDOM_ID, "swipesavvy-db-final-snapshot").inputs
    instance = staging.one(INSTANCE).inputs
    assert suffix["keepers"] == {
        "engine": instance["engine"],
        "db_name": instance["dbName"],
        "username": instance["username"],
        "storage_encrypted": "True",
    }
    config = stack_config("staging")
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "name": "swipesavvy_renamed"}
    replaced = run_program(config)  # a new db_name: AWS replaces the instance
    renamed = replaced.of_name(RANDOM_ID, "swipesavvy-db-final-snapshot").inputs["keepers"]
    assert renamed["db_name"] == "swipesavvy_renamed" != suffix["keepers"]["db_name"]  # new keepers: a new suffix


# --- major engine versions ------------------------------------------------------------------


def test_a_major_upgrade_reaches_rds_only_when_the_setting_allows_it(staging):
    assert staging.one(INSTANCE).inputs["allowMajorVersionUpgrade"] is False
    config = stack_config("staging")
    config["swipesavvy:database"] = {
        **config["swipesavvy:database"],
        "engineVersion": "17",
        "allowMajorVersionUpgrade": True,
    }
    upgraded = run_program(config)
    instance = upgraded.one(INSTANCE).inputs
    assert (instance["engineVersion"], instance["allowMajorVersionUpgrade"]) == ("17", True)
    assert upgraded.one("aws:rds/parameterGroup:ParameterGroup").inputs["family"] == "postgres17"
    assert upgraded.one(SHAPE).inputs["engine_major"] == "17"


def test_a_production_major_upgrade_applies_at_once_so_the_old_parameter_group_can_go():
    """The new family replaces the parameter group create-before-delete: the new group (a new
    generated name, so both exist at once), the instance moved to it, then the old group's
    delete, which RDS refuses while an instance still uses it. Production's changes otherwise
    wait for the maintenance window (the instance would still use the old group at that
    delete), so the update of a major upgrade applies at once (docs/operations.md "Upgrading PostgreSQL")."""
    config = stack_config("production")
    config["swipesavvy:database"] = {
        **config["swipesavvy:database"],
        "engineVersion": "17",
        "allowMajorVersionUpgrade": True,
    }
    upgraded = run_program(config, stack="production")
    instance = upgraded.one(INSTANCE)
    assert (instance.inputs["engineVersion"], instance.inputs["applyImmediately"]) == ("17", True)
    group = upgraded.one("aws:rds/parameterGroup:ParameterGroup")
    assert group.inputs["family"] == "postgres17" and "name" not in group.inputs  # generated: no clash
    assert group.name in upgraded.dependencies[(INSTANCE, instance.name)]  # moved before the old one goes


# --- StackShape: the pure rules ----------------------------------------------------------------

RECORDED = {
    "stack": "staging",
    "vpc_cidr": "10.40.0.0/16",
    "existing_vpc_id": None,
    "zones": ["us-east-1a", "us-east-1b"],
    "zones_configured": False,
    "engine_major": "16",
    "allow_major_version_upgrade": False,
    "credential_rotation": 0,
    "api_token_rotation": 0,
}


def test_nothing_recorded_yet_refuses_nothing():
    assert refusal("staging", {}, {**RECORDED, "vpc_cidr": "10.41.0.0/16"}) is None


def test_a_new_vpc_cidr_is_refused_naming_a_new_stack():
    assert refusal("staging", RECORDED, {**RECORDED, "vpc_cidr": "10.41.0.0/16"}) == (
        "vpc_cidr",
        "swipesavvy:network.vpcCidr changed from 10.40.0.0/16 to 10.41.0.0/16 on stack staging, which already has"
        " its network: refused before anything changes (fix: set it back, or build the new network as a new stack"
        " (pulumi stack init <name>) and move to it; subnets, the load balancer and the database cannot move in"
        " place)",
    )


def test_moving_into_an_existing_vpc_is_refused():
    key, message = refusal("staging", RECORDED, {**RECORDED, "vpc_cidr": None, "existing_vpc_id": "vpc-0123abcd"})
    assert key == "vpc_cidr"
    assert message.startswith("swipesavvy:network.vpcCidr changed from 10.40.0.0/16 to unset on stack staging")


def test_configured_zones_may_not_change_but_chosen_ones_are_pinned():
    configured = {**RECORDED, "zones_configured": True}
    key, message = refusal("staging", configured, {**configured, "zones": ["us-east-1a", "us-east-1c"]})
    assert key == "zones"
    assert message == (
        "swipesavvy:network.availabilityZones changed from us-east-1a,us-east-1b to us-east-1a,us-east-1c on stack"
        " staging, which already has subnets there: refused before anything changes (fix: pulumi config set --path"
        " 'swipesavvy:network.availabilityZones[0]' us-east-1a (and [1]), or set it back, or build the new network"
        " as a new stack (pulumi stack init <name>) and move to it; subnets, the load balancer and the database"
        " cannot move in place)"
    )
    # The region now lists other zones first: the stack keeps the ones it chose.
    moved = {**RECORDED, "zones": ["us-east-1c", "us-east-1d"]}
    assert refusal("staging", RECORDED, moved) is None
    assert checked_inputs(RECORDED, moved)["zones"] == ["us-east-1a", "us-east-1b"]


def test_a_major_version_change_is_refused_unless_allowed_and_never_downwards():
    assert refusal("staging", RECORDED, {**RECORDED, "engine_major": "17"}) == (
        "engine_major",
        "swipesavvy:database.engineVersion 16 -> 17 on stack staging is a major version upgrade: refused (fix: take"
        " a snapshot, then pulumi config set --path 'swipesavvy:database.allowMajorVersionUpgrade' true; docs/operations.md"
        ' "Upgrading PostgreSQL")',
    )
    assert refusal("staging", RECORDED, {**RECORDED, "engine_major": "17", "allow_major_version_upgrade": True}) is None
    assert refusal("staging", RECORDED, {**RECORDED, "engine_major": "15", "allow_major_version_upgrade": True}) == (
        "engine_major",
        "swipesavvy:database.engineVersion 15 is older than the database's 16 on stack staging: RDS cannot"
        " downgrade (fix: pulumi config set --path 'swipesavvy:database.engineVersion' 16; for 15, restore a dump"
        " into a new stack)",
    )


@pytest.mark.parametrize(
    ("key", "setting"),
    [("credential_rotation", "database.credentialRotation"), ("api_token_rotation", "backend.apiTokenRotation")],
)
def test_a_rotation_counter_moves_up_by_one_per_update(key, setting):
    """Two at once, or back, would regenerate the slot the instances use (docs/operations.md "Secrets")."""
    rotated = {**RECORDED, key: 1}
    assert refusal("staging", rotated, {**rotated, key: 2}) is None
    assert refusal("staging", rotated, rotated) is None
    assert refusal("staging", rotated, {**rotated, key: 3}) == (
        key,
        f"swipesavvy:{setting} 1 -> 3 on stack staging: a rotation moves the counter up by one per update,"
        " anything else would generate a new password for the credential the instances use (fix: pulumi config"
        f" set --path 'swipesavvy:{setting}' 2)",
    )
    assert refusal("staging", rotated, {**rotated, key: 0})[1].endswith(f"--path 'swipesavvy:{setting}' 1)")
    unrecorded = {k: v for k, v in RECORDED.items() if k != key}  # a record from before the counters
    assert refusal("staging", unrecorded, {**RECORDED, key: 5}) is None


# --- StackShape through the engine ---------------------------------------------------------------


def test_stack_shape_through_the_engine(staging):
    """Created with the stack; the second run is a no-op; a new CIDR or an unallowed major
    version fails the preview's Check (nothing else runs); an allowed upgrade is recorded;
    a region listing other zones keeps the recorded ones; destroy forgets it."""
    declared = staging.one(SHAPE).inputs
    expected = {k: v for k, v in RECORDED.items() if v is not None}  # unset inputs are not sent
    assert unwrap_all({k: v for k, v in declared.items() if k != "__provider"}) == expected
    assert expected["zones"] == ["us-east-1a", "us-east-1b"]  # the mocked region's first two
    engine = PulumiEngine(
        {}, "urn:pulumi:staging::swipesavvy::pulumi-python:dynamic/stack:StackShape::swipesavvy-shape"
    )
    assert engine.up(declared) == "create"
    assert engine.state.outputs["zones"] == ["us-east-1a", "us-east-1b"]
    assert engine.preview(declared).changes == DIFF_NONE
    assert engine.up(declared) == "same"

    with pytest.raises(ProviderError) as refused:
        engine.preview({**declared, "vpc_cidr": "10.41.0.0/16"})
    assert str(refused.value).startswith(
        "vpc_cidr: swipesavvy:network.vpcCidr changed from 10.40.0.0/16 to 10.41.0.0/16 on stack staging"
    )
    with pytest.raises(ProviderError, match="is a major version upgrade: refused"):
        engine.up({**declared, "engine_major": "17"})

    assert engine.preview({**declared, "zones": ["us-east-1c", "us-east-1d"]}).changes == DIFF_NONE
    assert engine.preview({**declared, "zones": UNKNOWN}).changes == DIFF_NONE  # a preview not knowing them yet
    upgrade = {**declared, "engine_major": "17", "allow_major_version_upgrade": True}
    assert engine.preview(upgrade).changes == DIFF_SOME
    assert engine.up(upgrade) == "update"
    assert engine.state.outputs["engine_major"] == "17"
    engine.refresh()  # nothing to read back: the record stays as it is
    assert engine.state.exists and engine.state.outputs["engine_major"] == "17"
    with pytest.raises(ProviderError, match="RDS cannot downgrade"):
        engine.preview({**upgrade, "engine_major": "16"})
    with pytest.raises(ProviderError, match="a rotation moves the counter up by one per update"):
        engine.preview({**upgrade, "credential_rotation": 2})
    assert engine.up({**upgrade, "credential_rotation": 1}) == "update"
    engine.destroy()
    assert not engine.state.exists


def test_the_network_is_built_in_the_zones_stack_shape_records(staging):
    subnets = {r.name: r.inputs["availabilityZone"] for r in staging.of_type("aws:ec2/subnet:Subnet")}
    assert subnets == {
        "swipesavvy-private-0": "us-east-1a",
        "swipesavvy-private-1": "us-east-1b",
        "swipesavvy-public-0": "us-east-1a",
        "swipesavvy-public-1": "us-east-1b",
    }


def test_every_resource_waits_for_stack_shape(staging, production):
    """Its Check refuses a change before any step: also with --skip-preview (CI, the
    Automation API), because every other resource of the program depends on it."""
    for run in (staging, production):
        custom = [r for r in run.resources if not r.typ.startswith("swipesavvy:") and r.typ != SHAPE]
        waiting = [r.name for r in custom if "swipesavvy-shape" in run.dependencies[(r.typ, r.name)]]
        assert len(custom) > 100 and waiting == [r.name for r in custom]


# --- the agents' Datadog key: a rotation rolls the instances -------------------------------------


class RotatedKeyMocks(RecordingMocks):
    """As after `pulumi up --replace` on the agents' key: the secret holds a new version."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        resource_id, outputs = super().new_resource(args)
        if args.typ == "aws:secretsmanager/secretVersion:SecretVersion" and args.name == "swipesavvy-datadog-agent":
            outputs = {**outputs, "versionId": "rotated-version-2"}
        return resource_id, outputs


def _instance_tags(run) -> dict:
    template = unwrap_all(run.one(LAUNCH_TEMPLATE).inputs)
    (instance,) = [spec["tags"] for spec in template["tagSpecifications"] if spec["resourceType"] == "instance"]
    return instance


def test_a_rotated_agent_key_is_a_new_launch_template_version(staging):
    """The launch template carries the key's secret version: a new key is a new template
    version, which the group's instance refresh rolls out in the same update."""
    before = _instance_tags(staging)["datadog-agent-key-version"]
    assert before.startswith("swipesavvy-datadog-agent-version-")  # the mocks name a version by its value
    rotated = run_program(stack_config("staging"), mocks=RotatedKeyMocks())
    assert _instance_tags(rotated)["datadog-agent-key-version"] == "rotated-version-2"
    rollout = rotated.of_name("pulumi-python:dynamic/autoscaling:InstanceRefreshWait", "swipesavvy-api-rollout")
    assert rollout.inputs["launch_template_version"] == "1"  # a version number: a new one starts a refresh


# --- review stacks: nothing outlives them --------------------------------------------------------


def test_a_review_stack_keeps_nothing_on_destroy(review, staging):
    instance = review.one(INSTANCE).inputs
    assert instance["skipFinalSnapshot"] is True and "finalSnapshotIdentifier" not in instance
    assert instance["deleteAutomatedBackups"] is True and instance["deletionProtection"] is False
    assert [r.name for r in review.of_type(RANDOM_ID) if "final" in r.name] == []
    assert review.protected == set()
    # Only the site's hashed files are kept past a release; the site bucket (force_destroy) takes them.
    assert {typ for typ, _ in review.retained} == {"aws:s3/bucketObjectv2:BucketObjectv2"}
    assert {r.name: r.inputs["forceDestroy"] for r in review.of_type(BUCKET)} == {
        "swipesavvy-api-artifacts": True,
        "swipesavvy-api-alb-logs": True,
        "swipesavvy-frontend-site": True,
        "swipesavvy-frontend-logs": True,
    }
    # Staging keeps them: the retained buckets and snapshots, the final snapshot, the backups.
    assert {name for typ, name in staging.retained if typ in (BUCKET, SNAPSHOT)} == {
        "swipesavvy-api-artifacts",
        "swipesavvy-api-alb-logs",
        "swipesavvy-frontend-logs",
        "swipesavvy-db-after-schema",
        "swipesavvy-db-after-seed",
    }
    assert staging.one(INSTANCE).inputs["deleteAutomatedBackups"] is False
    # Its secrets are deleted at once; staging's stay recoverable for 7 days.
    secret = "aws:secretsmanager/secret:Secret"
    assert {r.inputs["recoveryWindowInDays"] for r in review.of_type(secret)} == {0}
    assert {r.inputs["recoveryWindowInDays"] for r in staging.of_type(secret)} == {7}
    assert (
        len(review.of_type(secret)) == 7
    )  # the five logins' (two slots of two), the agents' Datadog key, the API tokens


def test_a_review_stacks_database_logs_expire_and_go_with_it(review, staging):
    """Its instance has a fixed identifier, so its RDS log groups exist (with an expiry) before
    it and are deleted after it, instead of RDS creating them, never expiring, for good."""
    instance = review.one(INSTANCE).inputs
    assert instance["identifier"] == "swipesavvy-pr-42-postgres"
    groups = {r.name: r.inputs for r in review.of_type("aws:cloudwatch/logGroup:LogGroup") if r.name.endswith("-log")}
    assert {g["name"]: g["retentionInDays"] for g in groups.values()} == {
        "/aws/rds/instance/swipesavvy-pr-42-postgres/postgresql": 7,
        "/aws/rds/instance/swipesavvy-pr-42-postgres/upgrade": 7,
    }
    assert set(groups) <= set(review.dependencies[(INSTANCE, "swipesavvy-db-postgres")])
    assert instance["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert {name for typ, name in review.retained if typ == "aws:cloudwatch/logGroup:LogGroup"} == set()


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_a_kept_stacks_database_logs_expire_and_outlive_destroy(stack, staging, production):
    """RDS names its log groups after the instance (RDS user guide, "Publishing PostgreSQL logs to
    Amazon CloudWatch Logs") and creates them never expiring: staging's and production's are
    created first with 90 days, named by the instance's suffix (renewed with a replacement), and
    kept after `pulumi destroy` like the final snapshot, expiring on their own."""
    run = {"staging": staging, "production": production}[stack]
    suffix = "1a2b3c4d"  # the mocked RandomId's hex
    instance = run.one(INSTANCE).inputs
    assert instance["identifier"] == f"swipesavvy-{stack}-postgres-{suffix}"
    assert instance["finalSnapshotIdentifier"] == f"swipesavvy-{stack}-final-{suffix}"
    groups = {r.name: r.inputs for r in run.of_type("aws:cloudwatch/logGroup:LogGroup") if r.name.endswith("-log")}
    assert {g["name"]: g["retentionInDays"] for g in groups.values()} == {
        f"/aws/rds/instance/swipesavvy-{stack}-postgres-{suffix}/postgresql": 90,
        f"/aws/rds/instance/swipesavvy-{stack}-postgres-{suffix}/upgrade": 90,
    }
    assert set(groups) <= set(run.dependencies[(INSTANCE, "swipesavvy-db-postgres")])
    assert {("aws:cloudwatch/logGroup:LogGroup", name) for name in groups} <= run.retained


@pytest.mark.parametrize(
    ("section", "setting", "message"),
    [
        (
            "database",
            {"deletionProtection": True},
            "swipesavvy:database.deletionProtection is not allowed in review stack pr-42: a review stack is destroyed"
            " when its pull request closes (fix: pulumi config set --path 'swipesavvy:database.deletionProtection'"
            " false, or generate the file with python -m ops review-config)",
        ),
        (
            "frontend",
            {"domain": "pr.swipesavvy.example", "hostedZoneId": "Z0123456789ABC"},
            "swipesavvy:frontend.domain is not allowed in review stack pr-42: a custom domain belongs to one stack; a"
            " review stack uses its CloudFront address (fix: pulumi config rm --path 'swipesavvy:frontend.domain' and"
            " 'swipesavvy:frontend.hostedZoneId', or generate the file with python -m ops review-config)",
        ),
    ],
)
def test_a_review_stack_refuses_what_would_outlive_or_collide(section, setting, message):
    config = review_config()
    config[f"swipesavvy:{section}"] = {**config[f"swipesavvy:{section}"], **setting}
    with pytest.raises(Exception) as raised:
        run_program(config, stack="pr-42")
    assert message in str(raised.value)


# --- destroy: nothing is deleted while the database is protected ---------------------------------


def test_the_destroy_guard_is_the_first_delete_and_is_protected_with_the_database(staging, production, review):
    """A destroy deletes dependents before what they depend on: the guard depends on every
    resource, so it is deleted first, and while protected it fails the destroy there, also
    with --skip-preview (CI, the Automation API), before the seed, logins, secrets, backend,
    site or monitors are touched. Off with deletion protection (review stacks, or staging
    after `deletionProtection: false` and an update)."""
    guard = (RANDOM_ID, "swipesavvy-destroy-guard")
    for run in (staging, production):
        assert guard in run.protected
        everything = {r.name for r in run.resources if r.name != guard[1]} - {"swipesavvy-shape"}
        assert everything <= set(run.dependencies[guard]) | _components(run)
    assert guard not in review.protected


def _components(run) -> set[str]:
    return {r.name for r in run.resources if r.typ.startswith("swipesavvy:")}


def test_production_applies_in_the_maintenance_window_which_the_readme_explains(staging, production):
    """docs/operations.md "Previews that do not settle": production's changes wait for the maintenance window."""
    assert production.one(INSTANCE).inputs["applyImmediately"] is False
    assert staging.one(INSTANCE).inputs["applyImmediately"] is True
