"""The whole Pulumi program (``__main__.py``) under Pulumi's mocks.

The ``staging`` and ``production`` fixtures (tests/conftest.py) run it once per session.
"""

from __future__ import annotations

import json

import pulumi
import pytest
from pulumi_program import (
    APP_PASSWORD_PREFIX,
    DB_ADDRESS,
    MASTER_PASSWORD,
    MASTER_SECRET_ARN,
    OPERATOR_ARN_PREFIX,
    RecordingMocks,
    is_secret,
    plain_values,
    run_program,
    stack_config,
    unwrap,
    unwrap_all,
)

from components.config import SECTIONS
from dbops.authority import AUTHORITY_ENV, Authority, ManagedLogin

RDS = "aws:rds/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LOGIN = "pulumi-python:dynamic/db:LoginRole"
SNAPSHOT = "aws:rds/snapshot:Snapshot"
RANDOM_ID = "random:index/randomId:RandomId"
SCHEMA = "pulumi-python:dynamic/db:DatabaseSchema"
SEED = "pulumi-python:dynamic/db:MockDataSeed"


# --- the database instance -----------------------------------------------------------------


def test_rds_instance_is_private_encrypted_and_kept(staging):
    db = staging.one(RDS).inputs
    assert db["engine"] == "postgres" and db["engineVersion"] == "16"
    assert db["instanceClass"] == "db.t4g.medium"
    assert db["storageType"] == "gp3" and db["allocatedStorage"] >= 100
    assert db["storageEncrypted"] is True
    assert db["publiclyAccessible"] is False
    assert db["backupRetentionPeriod"] >= 7
    assert db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False and db["finalSnapshotIdentifier"].startswith("swipesavvy-staging-final-")
    assert db["copyTagsToSnapshot"] is True
    assert db["deleteAutomatedBackups"] is False
    assert "postgresql" in db["enabledCloudwatchLogsExports"]
    assert db["performanceInsightsEnabled"] is True
    assert db["monitoringInterval"] == 60 and db["monitoringRoleArn"].endswith("swipesavvy-db-monitoring")
    assert db["autoMinorVersionUpgrade"] is True
    assert db["iamDatabaseAuthenticationEnabled"] is True  # AWS FSBP RDS.10
    assert db["multiAz"] is False
    assert db["dbName"] == "swipesavvy_staging"
    assert db["dbSubnetGroupName"] == "swipesavvy-db-subnets"
    assert db["tags"]["environment"] == "staging"


def test_master_password_is_managed_by_rds_never_typed(staging):
    db = staging.one(RDS).inputs
    assert db["manageMasterUserPassword"] is True
    assert "password" not in db


def test_parameter_group_forces_tls_and_logs_slow_statements(staging):
    group = staging.one("aws:rds/parameterGroup:ParameterGroup").inputs
    parameters = {p["name"]: p["value"] for p in group["parameters"]}
    assert group["family"] == "postgres16"
    assert parameters["rds.force_ssl"] == "1"
    assert parameters["log_min_duration_statement"] == "500"


def test_enhanced_monitoring_role_is_assumable_by_rds_monitoring(staging):
    role = staging.named("swipesavvy-db-monitoring").inputs
    principal = json.loads(role["assumeRolePolicy"])["Statement"][0]["Principal"]["Service"]
    assert principal == "monitoring.rds.amazonaws.com"
    attachment = staging.of_name("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "swipesavvy-db-monitoring").inputs
    assert attachment["policyArn"] == "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


def test_production_is_multi_az_and_never_seeded(production):
    assert production.one(RDS).inputs["multiAz"] is True
    assert production.of_type(SEED) == []
    assert production.one(RDS).inputs["applyImmediately"] is False


def test_committed_production_is_its_own_larger_protected_stack(production):
    database = production.one(RDS).inputs
    assert (database["instanceClass"], database["backupRetentionPeriod"]) == ("db.m7g.large", 14)
    assert database["deletionProtection"] is True
    assert production.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"] == "10.50.0.0/16"
    assert len(production.of_type("aws:ec2/natGateway:NatGateway")) == 2  # one per zone


# --- network and access --------------------------------------------------------------------


def test_new_vpc_has_private_and_public_subnets_in_two_zones(staging):
    subnets = staging.of_type("aws:ec2/subnet:Subnet")
    zones = {s.inputs["availabilityZone"] for s in subnets}
    assert len(subnets) == 4 and zones == {"us-east-1a", "us-east-1b"}
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    subnet_group = staging.one("aws:rds/subnetGroup:SubnetGroup").inputs
    assert subnet_group["subnetIds"] == ["swipesavvy-private-0-id", "swipesavvy-private-1-id"]


def test_existing_vpc_creates_no_network(production_existing_vpc):
    assert production_existing_vpc.of_type("aws:ec2/vpc:Vpc") == []
    assert production_existing_vpc.of_type("aws:ec2/subnet:Subnet") == []
    assert production_existing_vpc.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == [
        "subnet-0123abcd",
        "subnet-4567ef01",
    ]


def test_postgres_port_open_only_to_backend_and_configured_runner(staging, production, production_existing_vpc):
    (rule,) = [r for r in staging.of_type(INGRESS) if r.name == "swipesavvy-db-from-backend"]
    assert rule.inputs["referencedSecurityGroupId"] == "swipesavvy-backend-id"
    assert rule.inputs["fromPort"] == rule.inputs["toPort"] == 5432
    assert "cidrIpv4" not in rule.inputs
    cidrs = [r.inputs.get("cidrIpv4") for r in production_existing_vpc.of_type(INGRESS)]
    assert sorted(filter(None, cidrs)) == ["10.99.0.0/24"]
    for run in (staging, production, production_existing_vpc):
        assert all(r.inputs.get("cidrIpv4") != "0.0.0.0/0" for r in run.of_type(INGRESS))
        assert run.one(RDS).inputs["vpcSecurityGroupIds"] == ["swipesavvy-db-sg-id"]


# --- inside the database -------------------------------------------------------------------


def test_the_master_password_is_read_at_run_time_never_stored(staging):
    """RDS rotates the master password: the dynamic resources carry the secret's ARN (read
    when the provider runs), and no resource input holds the password, not even as a secret."""
    assert staging.of_type("pulumi:providers:postgresql") == []
    for typ in (SCHEMA, SEED, LOGIN):
        resources = staging.of_type(typ)
        assert resources, typ  # a renamed type must not make this loop vacuous
        for resource in resources:
            connection = resource.inputs["connection"]
            assert connection == {
                "host": DB_ADDRESS,  # the address, not host:port
                "port": 5432,
                "dbname": "swipesavvy_staging",
                "user": "swipesavvy_admin",
                "sslmode": "verify-full",  # the operator connects: RDS's CA, and the name
                "password_secret_arn": MASTER_SECRET_ARN,
            }
    assert len(staging.resources) > 100
    for resource in staging.resources:
        assert MASTER_PASSWORD not in json.dumps(unwrap_all(resource.inputs), default=str), resource.name


def test_a_rotated_master_password_leaves_every_declared_input_identical(staging):
    rotated = run_program(stack_config("staging"), mocks=RecordingMocks(master_password="ROTATED-master-password"))
    first = {(r.typ, r.name): unwrap_all(r.inputs) for r in staging.resources}
    assert {(r.typ, r.name): unwrap_all(r.inputs) for r in rotated.resources} == first


# The stack's logins: the backend's and the agent's in two slots each (rotation without an outage).
LOGINS = {
    "swipesavvy_backend",
    "swipesavvy_backend_b",
    "swipesavvy_analytics",
    "swipesavvy_monitor",
    "swipesavvy_monitor_b",
}


def test_login_roles_join_the_group_roles_and_read_their_password_from_their_secret(staging):
    roles = {r.inputs["name"]: r.inputs for r in staging.of_type(LOGIN)}
    assert set(roles) == LOGINS
    assert roles["swipesavvy_monitor"]["group"] == "swipesavvy_monitoring"  # pg_monitor only (migration 011)
    assert roles["swipesavvy_monitor"]["connection_limit"] == 5
    assert roles["swipesavvy_backend"]["group"] == roles["swipesavvy_backend_b"]["group"] == "swipesavvy_readwrite"
    assert roles["swipesavvy_monitor_b"]["group"] == "swipesavvy_monitoring"
    assert roles["swipesavvy_analytics"]["group"] == "swipesavvy_readonly"
    assert roles["swipesavvy_analytics"]["connection_limit"] == 10
    assert roles["swipesavvy_analytics"]["statement_timeout_ms"] == 300_000
    for role in roles.values():
        assert role["password_secret_arn"].startswith(
            f"arn:aws:secretsmanager:us-east-1:123456789012:secret:swipesavvy/staging/db/{role['name']}-"
        )
        assert "password" not in role


def test_one_secret_per_login_in_the_standard_rds_shape(staging):
    versions = [v for v in staging.of_type("aws:secretsmanager/secretVersion:SecretVersion") if "-db-" in v.name]
    assert len(versions) == len(LOGINS)
    documents = {}
    for version in versions:
        assert is_secret(version.inputs["secretString"])
        document = json.loads(unwrap(version.inputs["secretString"]))
        documents[document["username"]] = document
    assert set(documents) == LOGINS
    for document in documents.values():
        assert set(document) == {"engine", "host", "port", "dbname", "username", "password"}
        assert document["host"] == DB_ADDRESS and document["port"] == 5432
        assert document["dbname"] == "swipesavvy_staging" and document["engine"] == "postgres"
        assert document["password"].startswith(APP_PASSWORD_PREFIX)
    # Name prefixes: a re-created stack gets new secrets while destroyed ones wait out their recovery window.
    secrets = staging.of_type("aws:secretsmanager/secret:Secret")
    assert all("name" not in s.inputs and s.inputs["recoveryWindowInDays"] == 7 for s in secrets)
    assert sorted(s.inputs["namePrefix"] for s in secrets) == [
        "swipesavvy/staging/api-tokens-",
        "swipesavvy/staging/datadog/agent-api-key-",
        "swipesavvy/staging/db/swipesavvy_analytics-",
        "swipesavvy/staging/db/swipesavvy_backend-",
        "swipesavvy/staging/db/swipesavvy_backend_b-",
        "swipesavvy/staging/db/swipesavvy_monitor-",
        "swipesavvy/staging/db/swipesavvy_monitor_b-",
    ]


def test_schema_and_seed_inputs(staging):
    assert is_secret(staging.one(SCHEMA).inputs["__provider"])
    assert sorted(staging.one(SCHEMA).inputs["migrations"])[0] == "001_roles_schemas_and_privileges"
    seed = staging.one(SEED).inputs
    assert (seed["scale"], seed["rng_seed"], seed["anchor_date"]) == (1, 20251228, "2025-12-28")


def test_snapshots_are_retained_and_named_so_they_never_collide(staging, production):
    snapshots = {s.name: s.inputs for s in staging.of_type(SNAPSHOT)}
    assert set(snapshots) == {"swipesavvy-db-after-schema", "swipesavvy-db-after-seed"}
    suffixes = {r.name: r.inputs for r in staging.of_type(RANDOM_ID)}
    for after in ("schema", "seed"):
        name = f"swipesavvy-db-after-{after}"
        assert snapshots[name]["dbSnapshotIdentifier"] == f"swipesavvy-staging-after-{after}-1a2b3c4d"
        assert suffixes[name]["keepers"]["instance"] == "db-ABCDEF0123"  # renewed with the instance
    # The seed snapshot is renewed with what it captured, and says so in its tags.
    assert set(suffixes["swipesavvy-db-after-seed"]["keepers"]) == {"instance", "schema", "data"}
    assert snapshots["swipesavvy-db-after-seed"]["tags"]["data"] == "c0ffeec0ffee"
    assert [s.name for s in production.of_type(SNAPSHOT)] == ["swipesavvy-db-after-schema"]


def test_after_schema_snapshot_is_not_retaken_when_migrations_change(staging, monkeypatch):
    """Once the seed exists, a snapshot taken after a later migration would hold mock data;
    the "after seed" snapshot is the one renewed with the schema."""
    import components.schema

    real = components.schema.migration_checksums
    monkeypatch.setattr(components.schema, "migration_checksums", lambda m: {**real(m), "099_new": "f" * 64})
    changed = run_program(stack_config("staging"))
    assert changed.one(SCHEMA).inputs["migrations"]["099_new"] == "f" * 64

    def suffix(run, name):
        return next(r.inputs for r in run.of_type(RANDOM_ID) if r.name == name)

    assert suffix(changed, "swipesavvy-db-after-schema") == suffix(staging, "swipesavvy-db-after-schema")
    assert suffix(changed, "swipesavvy-db-after-seed") != suffix(staging, "swipesavvy-db-after-seed")


def test_feature_flag_settings_only_when_configured(staging, production):
    assert staging.of_type("pulumi-python:dynamic/db:FeatureFlagSettings") == []
    flags = production.one("pulumi-python:dynamic/db:FeatureFlagSettings").inputs
    assert flags["flags"] == {"advanced_analytics": {"enabled": True, "rollout_percentage": 10}}
    assert flags["actor"] == "pulumi:production"


# --- secrets never in plain sight ----------------------------------------------------------


@pytest.mark.parametrize("run_name", ["staging", "production"])
def test_no_password_in_any_plain_input_or_output(run_name, request):
    run = request.getfixturevalue(run_name)
    assert len(run.resources) > 100 and "db_connection" in run.outputs  # nothing vacuous below
    for resource in run.resources:
        for value in plain_values(resource.inputs):
            assert MASTER_PASSWORD not in value, f"{resource.typ} {resource.name} has the master password in plain"
            assert APP_PASSWORD_PREFIX not in value, f"{resource.typ} {resource.name} has an app password in plain"
    for name, (value, secret) in run.outputs.items():
        text = json.dumps(value)
        assert secret or (MASTER_PASSWORD not in text and APP_PASSWORD_PREFIX not in text), name
        assert '"password":' not in text.lower(), name  # names of secrets (password_secret_arn) only


def test_outputs_name_the_database_and_its_secrets(staging):
    outputs = {name: value for name, (value, _) in staging.outputs.items()}
    assert outputs["db_address"] == DB_ADDRESS and outputs["db_port"] == 5432
    assert outputs["db_name"] == "swipesavvy_staging"
    assert outputs["db_master_secret_arn"].startswith("arn:aws:secretsmanager:")
    assert set(outputs["db_app_secret_arns"]) == LOGINS


def test_invalid_config_stops_the_program_before_any_resource():
    config = stack_config("staging")
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "allocatedStorage": 20}
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError, match=r"swipesavvy:database\.allocatedStorage = 20 is invalid"):
        run_program(config, mocks=mocks)
    assert mocks.resources == []


def test_a_second_run_declares_exactly_the_same_inputs(staging):
    """What makes the second `pulumi up` a no-op: nothing in the program is time- or
    randomness-dependent, so every resource gets the same inputs again."""
    again = run_program(stack_config("staging"))
    first = {(r.typ, r.name): unwrap_all(r.inputs) for r in staging.resources}
    second = {(r.typ, r.name): unwrap_all(r.inputs) for r in again.resources}
    assert second.keys() == first.keys()
    changed = [key for key in first if first[key] != second[key]]
    assert changed == []


def test_program_also_runs_as_a_preview():
    run = run_program(stack_config("staging"), preview=True)
    assert len(run.of_type(SCHEMA)) == 1 and len(run.of_type(SEED)) == 1


def test_runbook_order_inside_the_database(staging):
    """Schema, then the logins and the step 1.5 snapshot (no mock data in it), then the
    seed, then the step 2.4 snapshot; nothing connects before the instance exists."""
    deps = staging.dependencies
    snapshot = "aws:rds/snapshot:Snapshot"
    assert "swipesavvy-db-postgres" in deps[(SCHEMA, "swipesavvy-db-schema")]
    assert "swipesavvy-db-schema" in deps[(LOGIN, "swipesavvy-db-backend")]
    assert "swipesavvy-db-schema" in deps[(LOGIN, "swipesavvy-db-analytics")]
    assert "swipesavvy-db-schema" in deps[(snapshot, "swipesavvy-db-after-schema")]
    assert {"swipesavvy-db-schema", "swipesavvy-db-after-schema"} <= set(deps[(SEED, "swipesavvy-db-mock-data")])
    assert {"swipesavvy-db-schema", "swipesavvy-db-mock-data"} <= set(deps[(snapshot, "swipesavvy-db-after-seed")])


def test_without_nat_the_private_subnets_have_no_route_out():
    config = {k: v for k, v in stack_config("staging").items() if k != "swipesavvy:backend"}
    config["swipesavvy:network"] = {**config["swipesavvy:network"], "natGateway": False}
    run = run_program(config)
    assert run.of_type("aws:ec2/natGateway:NatGateway") == []
    assert (run.named("swipesavvy-private").inputs.get("routes") or []) == []


def test_nat_gateway_only_when_configured():
    run = run_program(stack_config("staging"))
    nat = run.one("aws:ec2/natGateway:NatGateway")
    assert nat.inputs["subnetId"] == "swipesavvy-public-0-id"
    # AWS needs the internet gateway attached first: a declared dependency, not luck.
    assert "swipesavvy-igw" in run.dependencies[("aws:ec2/natGateway:NatGateway", "swipesavvy-nat")]
    assert "swipesavvy-igw" in run.dependencies[("aws:ec2/eip:Eip", "swipesavvy-nat")]
    (route,) = run.named("swipesavvy-private").inputs["routes"]
    assert route["cidrBlock"] == "0.0.0.0/0" and route["natGatewayId"] == "swipesavvy-nat-id"


def test_production_routes_each_zone_through_its_own_nat_gateway(production):
    """ "If the NAT gateway's Availability Zone is down, resources in the other Availability Zones
    lose internet access" (VPC user guide, "NAT gateway basics"): one per zone, each private
    subnet routed through the one in its own zone's public subnet. Zone 0 keeps its names."""
    nats = {n.name: n.inputs["subnetId"] for n in production.of_type("aws:ec2/natGateway:NatGateway")}
    assert nats == {"swipesavvy-nat": "swipesavvy-public-0-id", "swipesavvy-nat-1": "swipesavvy-public-1-id"}
    for zone, table, nat in (
        (0, "swipesavvy-private", "swipesavvy-nat"),
        (1, "swipesavvy-private-1", "swipesavvy-nat-1"),
    ):
        association = production.of_name(
            "aws:ec2/routeTableAssociation:RouteTableAssociation", f"swipesavvy-private-{zone}"
        )
        assert association.inputs["routeTableId"] == f"{table}-id"
        (route,) = production.of_name("aws:ec2/routeTable:RouteTable", table).inputs["routes"]
        assert (route["cidrBlock"], route["natGatewayId"]) == ("0.0.0.0/0", f"{nat}-id")
        assert "swipesavvy-igw" in production.dependencies[("aws:ec2/eip:Eip", nat)]
    subnets = {s.name: s.inputs["availabilityZone"] for s in production.of_type("aws:ec2/subnet:Subnet")}
    assert subnets["swipesavvy-public-1"] == subnets["swipesavvy-private-1"] != subnets["swipesavvy-private-0"]


def test_protected_instance_stops_destroy_before_anything_is_deleted(staging):
    """With deletion protection on, the instance and the destroy guard (tests/test_lifecycle.py)
    are `protect`ed: `pulumi destroy` fails before it deletes the seed, the logins or their secrets."""
    assert staging.protected == {
        (RDS, "swipesavvy-db-postgres"),
        ("random:index/randomId:RandomId", "swipesavvy-destroy-guard"),
    }
    config = stack_config("staging")
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "deletionProtection": False}
    unprotected = run_program(config)
    assert unprotected.protected == set()
    assert unprotected.one(RDS).inputs["deletionProtection"] is False


def test_unknown_setting_is_refused_from_the_clis_config_bag():
    config = {**stack_config("staging"), "swipesavvy:databse": {"name": "x"}}
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError, match=r"swipesavvy:databse is not a setting of this program"):
        run_program(config, mocks=mocks)
    assert mocks.resources == []


def test_a_setting_stored_as_a_secret_is_refused_not_copied_into_plain_inputs():
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError, match=r"swipesavvy:seed is stored as a secret but holds no secret"):
        run_program(stack_config("staging"), mocks=mocks, secret_keys=("swipesavvy:seed",))
    assert mocks.resources == []


def test_an_unknown_key_stored_as_a_secret_is_not_a_setting():
    mocks = RecordingMocks()
    config = {**stack_config("staging"), "swipesavvy:datadogApiKey": "ciphertext"}
    with pytest.raises(pulumi.RunError) as raised:
        run_program(config, mocks=mocks, secret_keys=("swipesavvy:datadogApiKey",))
    assert str(raised.value) == (
        f"swipesavvy:datadogApiKey is not a setting of this program; known settings: {', '.join(SECTIONS)} "
        "(fix: pulumi config rm swipesavvy:datadogApiKey)"
    )
    assert mocks.resources == []


def test_availability_zones_outside_the_stacks_region_fail_the_preview():
    config = stack_config("staging")
    config["swipesavvy:network"] = {**config["swipesavvy:network"], "availabilityZones": ["eu-west-1a", "eu-west-1b"]}
    mocks = RecordingMocks()
    with pytest.raises(
        pulumi.RunError,
        match=r"availabilityZones\[0\] = .eu-west-1a. is invalid: must be a zone of aws:region us-east-1",
    ):
        run_program(config, mocks=mocks, preview=True)
    assert mocks.resources == []


# --- the operator: one `pulumi up` from outside the VPC --------------------------------------

FUNCTION = "aws:lambda/function:Function"
OPERATOR_ARN = f"{OPERATOR_ARN_PREFIX}swipesavvy-staging-db-operator"
READER_ARN = f"{OPERATOR_ARN_PREFIX}swipesavvy-staging-db-reader"
DYNAMIC = (SCHEMA, SEED, LOGIN)


def test_staging_runs_its_database_work_through_an_operator_inside_the_vpc(staging):
    for name, suffix in (
        ("swipesavvy-db-operator-function", "operator"),
        ("swipesavvy-db-operator-reader-function", "reader"),
    ):
        function = staging.of_name(FUNCTION, name).inputs
        assert function["name"] == f"swipesavvy-staging-db-{suffix}"
        assert (function["runtime"], function["architectures"], function["handler"]) == (
            "python3.13",
            ["arm64"],
            "dbops.operator_handler.handler",
        )
        assert function["timeout"] == 900 and function["memorySize"] >= 1769
        assert function["vpcConfig"]["subnetIds"] == ["swipesavvy-private-0-id", "swipesavvy-private-1-id"]
        assert function["vpcConfig"]["securityGroupIds"] == ["swipesavvy-db-operator-sg-id"]
        # Its authority, and the CA bundle libpq verifies the database with (in its archive): nothing secret.
        assert list(function["environment"]["variables"]) == [AUTHORITY_ENV, "PGSSLROOTCERT"]
        assert function["environment"]["variables"]["PGSSLROOTCERT"] == "/var/task/certs/rds-ca-bundle.pem"
    for typ in DYNAMIC:
        for resource in staging.of_type(typ):
            assert resource.inputs["operator"] == OPERATOR_ARN, resource.name
            assert resource.inputs["reader"] == READER_ARN, resource.name
            # The connection is the instance's own address: the operator is next to it.
            assert resource.inputs["connection"]["host"] == DB_ADDRESS


def app_secret_arn(stack: str, login: str) -> str:
    return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:swipesavvy/{stack}/db/{login}-20261126-AbCdEf"


def authority_of(run, function: str) -> Authority:
    return Authority.from_json(run.of_name(FUNCTION, function).inputs["environment"]["variables"][AUTHORITY_ENV])


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_each_function_gets_its_authority_from_the_stack(request, stack):
    """The operator may manage exactly the stack's three logins in the stack's database and
    never destroy data (neither committed stack allows it); the reader reads as analytics."""
    run = request.getfixturevalue(stack)
    database = {
        "host": DB_ADDRESS,
        "port": 5432,
        "dbname": f"swipesavvy_{stack}" if stack == "staging" else "swipesavvy",
        "user": "swipesavvy_admin",
        "sslmode": "verify-full",
        "password_secret_arn": MASTER_SECRET_ARN,
    }
    logins = {  # with the limits the stack declares, which create_login may not change
        login: ManagedLogin(group, app_secret_arn(stack, login), limit, timeout_ms)
        for login, group, limit, timeout_ms in (
            ("swipesavvy_backend", "swipesavvy_readwrite", 50, 0),
            ("swipesavvy_backend_b", "swipesavvy_readwrite", 50, 0),
            ("swipesavvy_analytics", "swipesavvy_readonly", 10, 300_000),
            ("swipesavvy_monitor", "swipesavvy_monitoring", 5, 10_000),
            ("swipesavvy_monitor_b", "swipesavvy_monitoring", 5, 10_000),
        )
    }
    assert authority_of(run, "swipesavvy-db-operator-function") == Authority("write", database, logins, False, None)
    assert authority_of(run, "swipesavvy-db-operator-reader-function") == Authority(
        "read", database, logins, False, "swipesavvy_analytics"
    )


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_each_functions_environment_fits_lambdas_limit(request, stack):
    """Lambda: "Function environment variables: 4 KB, for all environment variables
    associated with the function, combined"
    (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html)."""
    run = request.getfixturevalue(stack)
    for function in run.of_type(FUNCTION):
        variables = function.inputs["environment"]["variables"]
        assert sum(len(k.encode()) + len(v.encode()) for k, v in variables.items()) < 4096 // 2  # room to spare


def test_the_operator_may_destroy_data_only_when_the_stack_allows_it():
    config = stack_config("staging")
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "allowDataDestruction": True}
    run = run_program(config)
    assert authority_of(run, "swipesavvy-db-operator-function").allow_data_destruction is True
    assert authority_of(run, "swipesavvy-db-operator-reader-function").allow_data_destruction is True  # reads only


def test_the_operator_and_its_access_exist_before_anything_touches_the_database(staging):
    deps = staging.dependencies
    schema_deps = set(deps[(SCHEMA, "swipesavvy-db-schema")])
    assert {
        "swipesavvy-db-postgres",
        "swipesavvy-db-operator-function",
        "swipesavvy-db-operator-reader-function",
    } <= schema_deps
    for prefix in ("swipesavvy-db-operator", "swipesavvy-db-operator-reader"):
        function_deps = set(deps[(FUNCTION, f"{prefix}-function")])
        assert {f"{prefix}-policy", f"{prefix}-logs", "swipesavvy-db-operator-secretsmanager"} <= function_deps
    for name in ("swipesavvy-db-backend", "swipesavvy-db-analytics"):
        assert "swipesavvy-db-schema" in deps[(LOGIN, name)]


def test_operator_network_admits_it_alone_and_only_where_it_must_go(staging):
    ingress = {r.name: r.inputs for r in staging.of_type(INGRESS)}
    egress = {r.name: r.inputs for r in staging.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")}
    operator_sg = "swipesavvy-db-operator-sg-id"
    # The database admits the backend and the operator, nothing else.
    db_peers = sorted(
        r["referencedSecurityGroupId"] for r in ingress.values() if r["securityGroupId"] == "swipesavvy-db-sg-id"
    )
    assert db_peers == ["swipesavvy-backend-id", operator_sg]
    # The endpoint admits the operator on 443 only.
    endpoint_rule = ingress["swipesavvy-db-operator-endpoint-from-operator"]
    assert (endpoint_rule["fromPort"], endpoint_rule["referencedSecurityGroupId"]) == (443, operator_sg)
    # The operator may go to PostgreSQL and to the endpoint, nowhere else.
    mine = sorted(
        (r["fromPort"], r["referencedSecurityGroupId"]) for r in egress.values() if r["securityGroupId"] == operator_sg
    )
    assert mine == [(443, "swipesavvy-db-operator-endpoint-sg-id"), (5432, "swipesavvy-db-sg-id")]
    for rule in ingress.values():
        assert rule.get("cidrIpv4") != "0.0.0.0/0"
    endpoint = staging.one("aws:ec2/vpcEndpoint:VpcEndpoint").inputs
    assert endpoint["serviceName"] == "com.amazonaws.us-east-1.secretsmanager"
    assert endpoint["vpcEndpointType"] == "Interface" and endpoint["privateDnsEnabled"] is True


def policy_statements(run, name: str) -> dict[str, dict]:
    return {s["Sid"]: s for s in json.loads(run.named(name).inputs["policy"])["Statement"]}


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_each_function_role_reads_only_its_own_secrets(request, stack):
    run = request.getfixturevalue(stack)
    logins = (
        "swipesavvy_backend",
        "swipesavvy_backend_b",
        "swipesavvy_analytics",
        "swipesavvy_monitor",
        "swipesavvy_monitor_b",
    )
    readable = {
        "swipesavvy-db-operator": [MASTER_SECRET_ARN, *(app_secret_arn(stack, login) for login in logins)],
        "swipesavvy-db-operator-reader": [app_secret_arn(stack, "swipesavvy_analytics")],
    }
    for prefix, secrets in readable.items():
        function = f"swipesavvy-{stack}-db-{'reader' if prefix.endswith('reader') else 'operator'}"
        role = run.named(f"{prefix}-role").inputs
        assert json.loads(role["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        statements = policy_statements(run, f"{prefix}-policy")
        assert set(statements) == {"ReadItsDatabaseSecrets", "WriteOwnLogs", "VpcNetworkInterfaces"}
        assert statements["ReadItsDatabaseSecrets"]["Action"] == "secretsmanager:GetSecretValue"
        assert statements["ReadItsDatabaseSecrets"]["Resource"] == secrets
        assert statements["WriteOwnLogs"]["Resource"] == (
            f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{function}:*"
        )
        assert all(
            not a.startswith(("secretsmanager:Put", "iam:", "rds:", "lambda:"))
            for s in statements.values()
            for a in s["Action"]
        )


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_who_may_invoke_which_function_is_one_managed_policy_each(request, stack):
    """Previews attach the read policy (the reader only); deploys attach both. Each allows
    invoking one function and waiting for it (GetFunction, the client's function_active_v2
    waiter), nothing else: both actions take a function ARN as their resource
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html)."""
    run = request.getfixturevalue(stack)
    for what, function in (("read", "reader"), ("operate", "operator")):
        policy = run.named(f"swipesavvy-db-operator-{what}-invoke").inputs
        assert policy["name"] == f"swipesavvy-{stack}-db-{what}-invoke"
        assert json.loads(policy["policy"])["Statement"] == [
            {
                "Sid": "InvokeIt",
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction", "lambda:GetFunction"],
                "Resource": f"{OPERATOR_ARN_PREFIX}swipesavvy-{stack}-db-{function}",
            }
        ]
        assert run.outputs[f"db_{what}_invoke_policy_arn"] == (
            f"arn:aws:iam::123456789012:policy/swipesavvy-{stack}-db-{what}-invoke",
            False,
        )
    assert run.outputs["db_reader_arn"] == (f"{OPERATOR_ARN_PREFIX}swipesavvy-{stack}-db-reader", False)


def test_direct_access_declares_no_operator(production_existing_vpc):
    assert production_existing_vpc.of_type(FUNCTION) == []
    assert production_existing_vpc.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") == []
    for typ in DYNAMIC:
        for resource in production_existing_vpc.of_type(typ):
            assert "operator" not in resource.inputs and "reader" not in resource.inputs
    assert "db_operator_arn" not in production_existing_vpc.outputs
    assert "db_reader_arn" not in production_existing_vpc.outputs


def test_outputs_tell_the_cli_how_to_reach_the_database(staging):
    connection, secret = staging.outputs["db_connection"]
    assert not secret and "password" not in connection
    assert connection["password_secret_arn"] == MASTER_SECRET_ARN
    assert staging.outputs["db_operator_arn"] == (OPERATOR_ARN, False)


def test_operator_without_its_endpoint_reaches_secrets_manager_by_the_vpcs_route():
    config = stack_config("staging")
    config["swipesavvy:network"] = {**config["swipesavvy:network"], "natGateway": True}
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "operatorSecretsEndpoint": False}
    run = run_program(config)
    assert run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") == []
    rule = run.named("swipesavvy-db-operator-https-out").inputs
    assert (rule["fromPort"], rule["cidrIpv4"], rule["securityGroupId"]) == (
        443,
        "0.0.0.0/0",
        "swipesavvy-db-operator-sg-id",
    )


def test_production_reserves_the_operators_concurrency_and_staging_leaves_it_off(staging, production):
    # Checkov CKV_AWS_115 where the account allows it: a function may reserve only what leaves the
    # account 100 unreserved (tests/test_aws_constraints.py), which a new account does not have.
    for function_name, concurrency in (
        ("swipesavvy-db-operator-function", 1),
        ("swipesavvy-db-operator-reader-function", 5),
    ):
        reserved = production.of_name("aws:lambda/function:Function", function_name).inputs
        assert reserved["reservedConcurrentExecutions"] == concurrency
        unreserved = staging.of_name("aws:lambda/function:Function", function_name).inputs
        assert "reservedConcurrentExecutions" not in unreserved


def test_both_operator_functions_are_traced(staging):
    # Checkov CKV_AWS_50.
    for function_name, prefix in (
        ("swipesavvy-db-operator-function", "swipesavvy-db-operator"),
        ("swipesavvy-db-operator-reader-function", "swipesavvy-db-operator-reader"),
    ):
        function = staging.of_name("aws:lambda/function:Function", function_name)
        assert function.inputs["tracingConfig"] == {"mode": "Active"}
        xray = staging.of_name("aws:iam/rolePolicyAttachment:RolePolicyAttachment", f"{prefix}-xray").inputs
        assert xray == {"role": f"{prefix}-role", "policyArn": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"}
        assert f"{prefix}-xray" in staging.dependencies[(function.typ, function.name)]
