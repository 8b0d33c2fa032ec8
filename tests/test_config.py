"""The stack configuration layer: defaults, the committed stack file, one-line errors."""

from __future__ import annotations

import datetime
import tarfile
from pathlib import Path

import psycopg
import pytest
import yaml

from components.config import (
    COST_INTEGERS,
    COST_NUMBERS,
    SEEDED_FLAG_KEYS,
    THRESHOLDS,
    BackendConfig,
    ConfigError,
    CostConfig,
    DatabaseConfig,
    FeatureFlagSetting,
    FrontendConfig,
    MonitoringConfig,
    NetworkConfig,
    SeedConfig,
    Threshold,
    parse_stack_config,
)

ROOT = Path(__file__).resolve().parent.parent


def stack_file_settings(stack: str) -> dict:
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("swipesavvy:")}


def test_committed_staging_stack_parses():
    config = parse_stack_config("staging", stack_file_settings("staging"))
    assert config.environment == "staging"
    assert config.database.name == "swipesavvy_staging"
    assert config.database.allocated_storage_gib >= 100
    assert config.database.multi_az is False
    assert config.seed.enabled is True and config.seed.scale == 1.0
    assert config.seed.anchor_date == datetime.date(2025, 12, 28)
    assert config.database.snapshot_after_schema and config.database.snapshot_after_seed


def test_production_defaults_are_the_safe_ones():
    config = parse_stack_config("production", {"environment": "production"})
    assert config.database.multi_az is True
    assert config.seed.enabled is False
    assert config.database.deletion_protection is True
    assert config.database.allow_data_destruction is False


def test_values_set_from_the_cli_arrive_as_strings_and_still_parse():
    config = parse_stack_config(
        "staging",
        {
            "environment": "staging",
            "database": '{"allocatedStorage": "150", "multiAz": "true", "access": "direct",'
            ' "connectHost": "127.0.0.1", "connectPort": "15432"}',
        },
    )
    assert config.database.allocated_storage_gib == 150
    assert config.database.multi_az is True
    assert config.database.connect_port == 15432


def test_existing_vpc_is_used_as_given():
    config = parse_stack_config(
        "staging",
        {
            "environment": "staging",
            "network": {
                "existingVpcId": "vpc-0123abcd",
                "privateSubnetIds": ["subnet-0123abcd", "subnet-4567ef01"],
                "publicSubnetIds": ["subnet-89abcdef", "subnet-01234567"],
            },
        },
    )
    assert config.network.uses_existing_vpc
    assert config.network.private_subnet_ids == ("subnet-0123abcd", "subnet-4567ef01")


def test_feature_flag_settings_default_their_percentage():
    config = parse_stack_config(
        "staging",
        {
            "environment": "staging",
            "featureFlags": {"community_feed": {"enabled": True}, "dark_mode": {"enabled": False}},
        },
    )
    assert config.feature_flags["community_feed"].rollout_percentage == 100
    assert config.feature_flags["dark_mode"].rollout_percentage == 0


def _fix_set(key: str, value: str) -> str:
    return f"pulumi config set --path 'swipesavvy:{key}' {value}"


TODAY_UTC = datetime.datetime.now(datetime.UTC).date().isoformat()


@pytest.mark.parametrize(
    ("settings", "key", "value", "allowed", "fix"),
    [
        ({"environment": "qa"}, "environment", "'qa'", "must be one of staging, production", "staging"),
        ({}, "environment", "null", "must be one of staging, production", "staging"),
        (
            {"database": {"allocatedStorage": 50}},
            "database.allocatedStorage",
            "50",
            "must be an integer from 100 to 65536 GiB",
            "100",
        ),
        (
            {"featureFlags": {"community_feed": {"enabled": True, "rolloutPercentage": 150}}},
            "featureFlags.community_feed.rolloutPercentage",
            "150",
            "must be an integer from 0 to 100 (percent)",
            "100",
        ),
        *(
            (
                {"network": {"vpcCidr": cidr}},
                "network.vpcCidr",
                f"'{cidr}'",
                "must be an IPv4 network in CIDR form with a /16 to /24 prefix",
                "10.40.0.0/16",
            )
            for cidr in ("10.40.0.0/33", "10.40.0.1/16", "10.40.0.0/8")
        ),
        (
            {"database": {"deployRunnerCidrs": ["0.0.0.0/0"]}},
            "database.deployRunnerCidrs[0]",
            "'0.0.0.0/0'",
            "must lie within a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10);"
            " a public one needs database.allowPublicDeployRunnerCidrs true",
            "10.0.5.0/24",
        ),
        (
            {"database": {"deployRunnerCidrs": ["10.0.0.300/24"]}},
            "database.deployRunnerCidrs",
            '["10.0.0.300/24"]',
            "must be a list of CIDR blocks like 10.0.5.0/24",
            ("database.deployRunnerCidrs[0]", "10.0.5.0/24"),  # lists are fixed element by element
        ),
        (
            {"database": {"engineVersion": "9.6"}},
            "database.engineVersion",
            "'9.6'",
            "must be one of 14, 15, 16, 17",
            "16",
        ),
        (
            {"database": {"instanceClass": "t3.micro"}},
            "database.instanceClass",
            "'t3.micro'",
            "must be an RDS instance class like db.t4g.medium",
            "db.t4g.medium",
        ),
        (
            {"database": {"backupRetentionDays": 1}},
            "database.backupRetentionDays",
            "1",
            "must be an integer from 7 to 35 days",
            "7",
        ),
        (
            {"database": {"monitoringIntervalSeconds": 7}},
            "database.monitoringIntervalSeconds",
            "7",
            "must be one of 1, 5, 10, 15, 30, 60 (enhanced monitoring stays on)",
            "60",
        ),
        ({"database": {"multiAz": "yes"}}, "database.multiAz", "'yes'", "must be true or false", "false"),
        ({"seed": {"scale": 0}}, "seed.scale", "0", "must be a number from 0.01 to 100", "1.0"),
        ({"seed": {"scale": 1000}}, "seed.scale", "1000", "must be a number from 0.01 to 100", "1.0"),
        (
            {"seed": {"anchorDate": "28/12/2025"}},
            "seed.anchorDate",
            "'28/12/2025'",
            f"must be a date YYYY-MM-DD from 1971-01-01 to today ({TODAY_UTC} UTC); the mock data covers the 90 days"
            " before it",
            "2025-12-28",
        ),
        (
            {"network": {"existingVpcId": "vpc-0123abcd", "privateSubnetIds": ["subnet-0123abcd"]}},
            "network.privateSubnetIds",
            '["subnet-0123abcd"]',
            "an existing VPC needs at least two private subnets in different zones",
            ("network.privateSubnetIds[0]", "subnet-0123abcd"),
        ),
        (
            {"network": {"privateSubnetIds": ["subnet-0123abcd", "subnet-4567ef01"]}},
            "network.existingVpcId",
            "null",
            "subnet ids are only used together with an existing VPC id",
            "vpc-0123abcd",
        ),
    ],
)
def test_invalid_values_fail_with_one_line_naming_key_value_and_fix(settings, key, value, allowed, fix):
    settings = {"environment": "staging", **settings} if "environment" not in settings and settings else settings
    with pytest.raises(ConfigError) as raised:
        parse_stack_config("staging", settings)
    fix_command = _fix_set(*fix) if isinstance(fix, tuple) else _fix_set(key, fix)
    assert str(raised.value) == f"swipesavvy:{key} = {value} is invalid: {allowed} (fix: {fix_command})"


@pytest.mark.parametrize(
    ("settings", "start", "fix"),
    [
        (
            {"database": {"alocatedStorage": 200}},
            "swipesavvy:database.alocatedStorage is not a setting; database takes access, allocatedStorage, ",
            "pulumi config rm --path 'swipesavvy:database.alocatedStorage'",
        ),
        (
            {"databse": {}},
            "swipesavvy:databse is not a setting of this program; known settings: environment, network, database, ",
            "pulumi config rm swipesavvy:databse",
        ),
        (
            {"featureFlags": {"Dark-Mode": {"enabled": True}}},
            "swipesavvy:featureFlags.Dark-Mode is not a flag the migrations seed; featureFlags takes"
            " advanced_analytics, ai_concierge_chat, amount_chip_selector, community_feed, dark_mode,"
            " notification_center, platform_goal_meter, receipt_generation, social_sharing, tier_progress_bar",
            "pulumi config rm --path 'swipesavvy:featureFlags.Dark-Mode'",
        ),
    ],
)
def test_unknown_keys_fail_with_one_line_naming_key_and_the_removal(settings, start, fix):
    with pytest.raises(ConfigError) as raised:
        parse_stack_config("staging", {"environment": "staging", **settings})
    message = str(raised.value)
    assert message.startswith(start)
    assert message.endswith(f" (fix: {fix})")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("environment", "settings", "expected"),
    [
        ("production", {"seed": {"enabled": True}}, "mock data is never seeded into production"),
        ("production", {"database": {"allowDataDestruction": True}}, "must stay false in production"),
        ("production", {"database": {"multiAz": False}}, "multiAz = false is invalid: must stay true in production"),
        ("production", {"database": {"deletionProtection": "false"}}, "deletionProtection = false is invalid"),
    ],
)
def test_production_guards(environment, settings, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_stack_config("production", {"environment": environment, **settings})


def test_list_settings_suggest_an_element_path():
    with pytest.raises(ConfigError) as raised:
        parse_stack_config("staging", {"environment": "staging", "database": {"deployRunnerCidrs": ["nope"]}})
    assert "--path 'swipesavvy:database.deployRunnerCidrs[0]' 10.0.5.0/24" in str(raised.value)


def config_error(settings: dict, **kwargs) -> str:
    """The one-line message parse_stack_config refuses ``settings`` with."""
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(settings.get("environment", "staging"), {"environment": "staging", **settings}, **kwargs)
    message = str(raised.value)
    assert "\n" not in message
    return message


def seed_from_yaml(text: str) -> dict:
    return {"seed": yaml.safe_load(text)}


@pytest.mark.parametrize("rng_seed", [0, 20251228, "20251228", 2**53 - 1])
def test_rng_seed_accepts_integers_that_survive_a_double(rng_seed):
    config = parse_stack_config("staging", {"environment": "staging", "seed": {"rngSeed": rng_seed}})
    assert config.seed.rng_seed == int(rng_seed)


@pytest.mark.parametrize(
    "settings",
    [
        {"seed": {"rngSeed": 2**53}},
        {"seed": {"rngSeed": 2**63 - 1}},
        {"seed": {"rngSeed": -1}},
        seed_from_yaml("rngSeed: 1.5"),
        seed_from_yaml("rngSeed: 1e3"),  # a string to PyYAML, a float to YAML 1.2 readers
        seed_from_yaml("rngSeed: 1.0e3"),
        {"seed": {"rngSeed": 5432.0}},  # integral, still written as a float
        {"seed": '{"rngSeed": 20251228.0}'},
    ],
)
def test_rng_seed_refuses_floats_and_integers_a_double_would_change(settings):
    assert "swipesavvy:seed.rngSeed = " in config_error(settings)


def test_rng_seed_message_says_why_the_limit():
    assert config_error({"seed": {"rngSeed": 2**53}}) == (
        "swipesavvy:seed.rngSeed = 9007199254740992 is invalid: must be an integer from 0 to 9007199254740991"
        " (larger values do not survive Pulumi's number encoding)"
        " (fix: pulumi config set --path 'swipesavvy:seed.rngSeed' 20251228)"
    )


def database_config(**settings):
    return parse_stack_config("staging", {"environment": "staging", "database": settings}).database


@pytest.mark.parametrize(
    ("allocated", "ceiling", "expected"),
    [
        (100, 110, 110),  # exactly 10% above: RDS says "at least"
        (1000, 1100, 1100),
        (100, 200, 200),
        (100, "off", 0),
        (100, False, 0),  # `maxAllocatedStorage: off` as PyYAML reads it
        (100, 100, 0),  # equal to the allocation also means off (RDS refuses it as a ceiling)
        (100, "100", 0),
    ],
)
def test_max_allocated_storage_is_ten_percent_above_the_allocation_or_off(allocated, ceiling, expected):
    config = database_config(allocatedStorage=allocated, maxAllocatedStorage=ceiling)
    assert config.max_allocated_storage_gib == expected


def test_max_allocated_storage_defaults_to_a_ceiling_rds_accepts():
    assert database_config().max_allocated_storage_gib == 200
    assert database_config(allocatedStorage=190).max_allocated_storage_gib == 209
    assert database_config(allocatedStorage=65536).max_allocated_storage_gib == 0


@pytest.mark.parametrize(
    ("allocated", "ceiling"), [(100, 109), (100, 105), (101, 111), (1000, 1099), (100, 0), (100, 50), (100, "on")]
)
def test_max_allocated_storage_refuses_less_than_ten_percent_of_headroom(allocated, ceiling):
    message = config_error({"database": {"allocatedStorage": allocated, "maxAllocatedStorage": ceiling}})
    assert message.startswith("swipesavvy:database.maxAllocatedStorage = ")


def test_max_allocated_storage_message():
    assert config_error({"database": {"maxAllocatedStorage": 105}}) == (
        "swipesavvy:database.maxAllocatedStorage = 105 is invalid: must be off (or 100, the allocatedStorage)"
        " or an integer from 110 to 65536 GiB (RDS wants the autoscaling ceiling at least 10% above allocatedStorage)"
        " (fix: pulumi config set --path 'swipesavvy:database.maxAllocatedStorage' 200)"
    )


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


@pytest.mark.parametrize(
    "anchor",
    ["1971-01-01", "2025-12-28", datetime.date(2025, 12, 28), utc_today().isoformat()],
)
def test_anchor_date_from_the_generators_earliest_to_today(anchor):
    config = parse_stack_config("staging", {"environment": "staging", "seed": {"anchorDate": anchor}})
    assert config.seed.anchor_date.isoformat() == str(anchor)


@pytest.mark.parametrize(
    "settings",
    [
        {"seed": {"anchorDate": (utc_today() + datetime.timedelta(days=1)).isoformat()}},
        {"seed": {"anchorDate": "2999-01-01"}},
        seed_from_yaml("anchorDate: 2999-01-01"),  # unquoted: a date object
        {"seed": {"anchorDate": "0001-01-01"}},
        {"seed": {"anchorDate": "1970-12-31"}},
    ],
)
def test_anchor_date_in_the_future_or_before_the_generators_range_is_refused(settings):
    assert config_error(settings).startswith("swipesavvy:seed.anchorDate = '")


def test_anchor_date_message():
    today = utc_today().isoformat()
    assert config_error(seed_from_yaml("anchorDate: 2999-01-01")) == (
        "swipesavvy:seed.anchorDate = '2999-01-01' is invalid: must be a date YYYY-MM-DD from 1971-01-01"
        f" to today ({today} UTC); the mock data covers the 90 days before it"
        " (fix: pulumi config set --path 'swipesavvy:seed.anchorDate' 2025-12-28)"
    )


def test_seeded_flag_keys_are_the_flags_the_migrations_seed(migrated_dsn):
    with psycopg.connect(migrated_dsn) as conn:
        keys = {row[0] for row in conn.execute("SELECT key FROM feature_flags")}
    assert keys == SEEDED_FLAG_KEYS


def test_every_seeded_flag_can_be_set():
    settings = {key: {"enabled": True} for key in SEEDED_FLAG_KEYS}
    config = parse_stack_config("staging", {"environment": "staging", "featureFlags": settings})
    assert set(config.feature_flags) == SEEDED_FLAG_KEYS


def test_a_flag_the_schema_does_not_define_is_refused_listing_the_known_ones():
    assert config_error({"featureFlags": {"dark_mod": {"enabled": True}}}) == (
        "swipesavvy:featureFlags.dark_mod is not a flag the migrations seed; featureFlags takes"
        " advanced_analytics, ai_concierge_chat, amount_chip_selector, community_feed, dark_mode,"
        " notification_center, platform_goal_meter, receipt_generation, social_sharing, tier_progress_bar"
        " (fix: pulumi config rm --path 'swipesavvy:featureFlags.dark_mod')"
    )


@pytest.mark.parametrize(
    ("cidrs", "allow_public"),
    [
        (["10.0.0.0/8", "172.16.5.0/24", "192.168.1.7/32", "100.64.0.0/10"], False),
        (["203.0.113.0/24", "198.51.100.7/32", "10.40.0.0/20"], True),
        (["8.8.0.0/16"], True),
    ],
)
def test_deploy_runner_cidrs_private_or_an_opted_in_narrow_public_range(cidrs, allow_public):
    config = database_config(deployRunnerCidrs=cidrs, allowPublicDeployRunnerCidrs=allow_public)
    assert config.deploy_runner_cidrs == tuple(cidrs)


@pytest.mark.parametrize(
    ("cidrs", "allow_public", "refused"),
    [
        (["0.0.0.0/0"], False, "[0] = '0.0.0.0/0'"),
        (["0.0.0.0/0"], True, "[0] = '0.0.0.0/0'"),
        (["10.0.5.0/24", "0.0.0.0/1", "128.0.0.0/1"], False, "[1] = '0.0.0.0/1'"),
        (["0.0.0.0/1", "128.0.0.0/1"], True, "[0] = '0.0.0.0/1'"),
        (["203.0.113.0/24"], False, "[0] = '203.0.113.0/24'"),
        (["8.0.0.0/15"], True, "[0] = '8.0.0.0/15'"),
        (["10.0.0.0/7"], False, "[0] = '10.0.0.0/7'"),  # reaches past 10/8
        (["fd00::/64"], True, "[0] = 'fd00::/64'"),
    ],
)
def test_deploy_runner_cidrs_refuse_public_wide_and_ipv6_ranges_naming_the_cidr(cidrs, allow_public, refused):
    settings = {"database": {"deployRunnerCidrs": cidrs, "allowPublicDeployRunnerCidrs": allow_public}}
    assert config_error(settings).startswith(f"swipesavvy:database.deployRunnerCidrs{refused} is invalid: ")


def test_deploy_runner_cidr_messages():
    assert config_error({"database": {"deployRunnerCidrs": ["10.0.5.0/24", "203.0.113.0/24"]}}) == (
        "swipesavvy:database.deployRunnerCidrs[1] = '203.0.113.0/24' is invalid: must lie within a private range"
        " (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10); a public one needs"
        " database.allowPublicDeployRunnerCidrs true"
        " (fix: pulumi config set --path 'swipesavvy:database.deployRunnerCidrs[1]' 10.0.5.0/24)"
    )
    settings = {"database": {"deployRunnerCidrs": ["128.0.0.0/1"], "allowPublicDeployRunnerCidrs": True}}
    assert config_error(settings) == (
        "swipesavvy:database.deployRunnerCidrs[0] = '128.0.0.0/1' is invalid: a public range must be /16 or narrower"
        " (the runner's addresses, not the internet)"
        " (fix: pulumi config set --path 'swipesavvy:database.deployRunnerCidrs[0]' 10.0.5.0/24)"
    )


def test_staging_may_run_single_az_and_unprotected():
    config = database_config(multiAz=False, deletionProtection=False)
    assert (config.multi_az, config.deletion_protection) == (False, False)


def test_production_deletion_protection_message():
    settings = {"environment": "production", "database": {"deletionProtection": False}}
    assert config_error(settings) == (
        "swipesavvy:database.deletionProtection = false is invalid: must stay true in production"
        " (fix: pulumi config set --path 'swipesavvy:database.deletionProtection' true)"
    )


@pytest.mark.parametrize("environment", ["staging", "production"])
@pytest.mark.parametrize("name", ["postgres", "template0", "template1", "rdsadmin"])
def test_reserved_database_names_are_refused_everywhere(environment, name):
    message = config_error({"environment": environment, "database": {"name": name}})
    assert message.startswith(f"swipesavvy:database.name = '{name}' is invalid: ")


def test_reserved_database_name_message():
    assert config_error({"database": {"name": "postgres"}}) == (
        "swipesavvy:database.name = 'postgres' is invalid: must not be a database RDS PostgreSQL keeps for itself"
        " (postgres, rdsadmin, template0, template1)"
        " (fix: pulumi config set --path 'swipesavvy:database.name' swipesavvy_staging)"
    )


def test_availability_zones_in_the_stacks_region_pass():
    network = {"availabilityZones": ["eu-west-1a", "eu-west-1b"]}
    config = parse_stack_config("staging", {"environment": "staging", "network": network}, region="eu-west-1")
    assert config.network.availability_zones == ("eu-west-1a", "eu-west-1b")


def test_availability_zones_of_another_region_are_refused():
    network = {"availabilityZones": ["us-east-1a", "eu-west-1b"]}
    assert config_error({"network": network}, region="us-east-1") == (
        "swipesavvy:network.availabilityZones[1] = 'eu-west-1b' is invalid: must be a zone of aws:region us-east-1"
        " (fix: pulumi config set --path 'swipesavvy:network.availabilityZones[1]' us-east-1b)"
    )
    assert "us-east-10a" in config_error(
        {"network": {"availabilityZones": ["us-east-10a", "us-east-1b"]}}, region="us-east-1"
    )


def test_an_existing_vpc_is_unaffected_by_the_region():
    network = {
        "existingVpcId": "vpc-0123abcd",
        "privateSubnetIds": ["subnet-0123abcd", "subnet-4567ef01"],
        "publicSubnetIds": ["subnet-89abcdef", "subnet-01234567"],
    }
    config = parse_stack_config("production", {"environment": "production", "network": network}, region="eu-west-1")
    assert config.network.uses_existing_vpc


def test_access_defaults_to_the_operator_in_a_new_vpc_and_direct_in_an_existing_one():
    assert parse_stack_config("staging", {"environment": "staging"}).database.access == "operator"
    existing = {
        "existingVpcId": "vpc-0123abcd",
        "privateSubnetIds": ["subnet-0123abcd", "subnet-4567ef01"],
        "publicSubnetIds": ["subnet-89abcdef", "subnet-01234567"],
    }
    config = parse_stack_config("staging", {"environment": "staging", "network": existing})
    assert config.database.access == "direct"
    both = parse_stack_config(
        "staging", {"environment": "staging", "network": existing, "database": {"access": "operator"}}
    )
    assert both.database.access == "operator"


@pytest.mark.parametrize(
    ("database", "message"),
    [
        (
            {"access": "lambda"},
            "swipesavvy:database.access = 'lambda' is invalid: must be one of operator, direct"
            " (fix: pulumi config set --path 'swipesavvy:database.access' operator)",
        ),
        (
            {"access": "direct"},
            "swipesavvy:database.access = 'direct' is invalid: cannot reach a database in the VPC this stack"
            " creates without database.deployRunnerCidrs (a runner inside it) or database.connectHost (a tunnel);"
            " operator needs neither (fix: pulumi config set --path 'swipesavvy:database.access' operator)",
        ),
        (
            {"connectHost": "127.0.0.1"},
            "swipesavvy:database.connectHost is only used with database.access direct: the operator connects"
            " from inside the VPC (fix: pulumi config rm --path 'swipesavvy:database.connectHost', or pulumi"
            " config set --path 'swipesavvy:database.access' direct)",
        ),
    ],
)
def test_access_combinations_that_cannot_reach_the_database_are_refused(database, message):
    with pytest.raises(ConfigError) as error:
        parse_stack_config("staging", {"environment": "staging", "database": database})
    assert str(error.value) == message


def test_direct_access_with_a_runner_or_a_tunnel_is_accepted():
    for database in (
        {"access": "direct", "deployRunnerCidrs": ["10.40.0.0/20"]},
        {"access": "direct", "connectHost": "127.0.0.1"},
    ):
        assert (
            parse_stack_config("staging", {"environment": "staging", "database": database}).database.access == "direct"
        )


# --- releases and sites: only what is under the project, no unlisted dotfiles ---------------------


@pytest.fixture
def project(tmp_path) -> Path:
    """A project root holding a release folder and a site build, and a folder beside it (outside)."""
    root = tmp_path / "project"
    for folder in (root / "release", root / "site", tmp_path / "outside"):
        folder.mkdir(parents=True)
        (folder / "index.html").write_text("<h1>Reporting Dashboard</h1>")
        (folder / "server.js").write_text("// the API")
    return root


def section_settings(section: str, **values) -> dict:
    network = {"natGateway": True}
    return {"environment": "staging", "network": network, section: values}


def refusal(project: Path, section: str, **values) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_stack_config("staging", section_settings(section, **values), project_root=project)
    return str(raised.value)


OUTSIDE = {
    "../outside": "'../outside' is invalid: must be under the project root",
    "/tmp": "'/tmp' is invalid: must be under the project root",
    "linked": "'linked' is invalid: must be under the project root",
}


@pytest.mark.parametrize("value", sorted(OUTSIDE))
@pytest.mark.parametrize(("section", "key"), [("backend", "artifact"), ("frontend", "distDir")])
def test_a_release_or_site_outside_the_project_is_refused(project, section, key, value):
    (project / "linked").symlink_to(project.parent / "outside")
    message = refusal(project, section, **{key: value})
    assert message.startswith(f"swipesavvy:{section}.{key} = {OUTSIDE[value]}")
    assert "(fix: pulumi config set --path" in message and "\n" not in message


@pytest.mark.parametrize(
    ("section", "key", "folder"), [("backend", "artifact", "release"), ("frontend", "distDir", "site")]
)
def test_a_symlink_inside_that_leads_outside_is_refused(project, section, key, folder):
    (project / folder / "secret.txt").symlink_to(project.parent / "outside" / "server.js")
    assert refusal(project, section, **{key: folder}) == (
        f"swipesavvy:{section}.{key} = '{folder}' is invalid: it holds secret.txt, a symlink to "
        f"{project.parent / 'outside' / 'server.js'}, outside the project "
        f"(fix: remove it from {folder}, or copy its target in)"
    )


@pytest.mark.parametrize(
    ("section", "key", "folder"), [("backend", "artifact", "release"), ("frontend", "distDir", "site")]
)
def test_dotfiles_are_refused_unless_listed(project, section, key, folder):
    (project / folder / ".env").write_text("DB_PASSWORD=hunter2")
    (project / folder / ".well-known").mkdir()
    (project / folder / ".well-known" / "security.txt").write_text("Contact: mailto:security@example.com")
    assert refusal(project, section, **{key: folder}) == (
        f"swipesavvy:{section}.{key} = '{folder}' is invalid: it holds .env, a dotfile (often a secret, so never "
        f"shipped unless listed) (fix: remove it from {folder}, or if it must ship: "
        f"pulumi config set --path 'swipesavvy:{section}.dotfiles[0]' .env)"
    )
    assert ".well-known" in refusal(project, section, **{key: folder, "dotfiles": [".env"]})
    config = parse_stack_config(
        "staging", section_settings(section, **{key: folder, "dotfiles": [".env", ".well-known"]}), project_root=project
    )
    assert getattr(config, section).dotfiles == (".env", ".well-known")


def test_dotfiles_inside_a_release_archive_are_refused_unless_listed(project):
    import io
    import tarfile

    with tarfile.open(project / "release.tar.gz", "w:gz") as tar:
        for name, data in (("server.js", b"// api"), ("config/.env", b"DB_PASSWORD=hunter2")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert refusal(project, "backend", artifact="release.tar.gz").startswith(
        "swipesavvy:backend.artifact = 'release.tar.gz' is invalid: it holds config/.env, a dotfile"
    )
    settings = section_settings("backend", artifact="release.tar.gz", dotfiles=["config/.env"])
    assert parse_stack_config("staging", settings, project_root=project).backend.dotfiles == ("config/.env",)


def test_dotfiles_of_installed_dependencies_ship_and_the_projects_own_do_not(project):
    package = project / "release" / "node_modules" / "function-bind"
    package.mkdir(parents=True)
    (package / ".eslintrc").write_text("{}")  # published with the package: what npm ci installs
    assert parse_stack_config("staging", section_settings("backend", artifact="release"), project_root=project)
    (project / "release" / "node_modules" / ".env").write_text("DB_PASSWORD=hunter2")  # beside, not inside, a package
    assert refusal(project, "backend", artifact="release").startswith(
        "swipesavvy:backend.artifact = 'release' is invalid: it holds node_modules/.env, a dotfile"
    )


@pytest.mark.parametrize("listed", ["../.env", "/etc/.env", "", "a//b"])
def test_listed_dotfiles_are_relative_paths_inside_the_folder(project, listed):
    message = refusal(project, "frontend", distDir="site", dotfiles=[listed])
    assert message.startswith(f"swipesavvy:frontend.dotfiles = [{listed!r}]".replace("'", '"'))


# --- the stack file itself, and other fixes that must be real commands --------------------------------


def test_a_domain_without_its_zone_names_a_real_fix(project):
    assert refusal(project, "frontend", distDir="site", domain="staging.example.com") == (
        "swipesavvy:frontend.hostedZoneId = null is invalid: domain and hostedZoneId are set together (a custom "
        "domain needs its zone) (fix: pulumi config set --path 'swipesavvy:frontend.hostedZoneId' Z0123456789ABC)"
    )
    assert refusal(project, "frontend", distDir="site", hostedZoneId="Z0123456789ABC").endswith(
        "(fix: pulumi config set --path 'swipesavvy:frontend.domain' staging.example.com)"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("encryptionsalt: x\n", "has no config: section (fix: pulumi config set --stack staging swipesavvy:environment staging)"),
        ("", "has no config: section (fix: pulumi config set --stack staging swipesavvy:environment staging)"),
        ("config: [1, 2]\n", "has no config: section (fix: pulumi config set --stack staging swipesavvy:environment staging)"),
        ("config:\n  a: b\n c: d\n", "is not valid YAML: line 3, column 2: expected <block end>, but found '<block mapping start>' (fix: correct that line)"),
    ],
)  # fmt: skip
def test_the_stack_file_is_read_with_one_line_naming_it(tmp_path, text, problem):
    from components.config import read_stack_file

    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        read_stack_file(path)
    assert str(raised.value) == f"{path} {problem}"


def test_the_stack_file_config(tmp_path):
    from components.config import read_stack_file

    assert (
        read_stack_file(ROOT / "Pulumi.staging.yaml")
        == yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())["config"]
    )
    with pytest.raises(ConfigError, match=r"Pulumi.nope.yaml does not exist \(fix: pulumi stack init nope"):
        read_stack_file(tmp_path / "Pulumi.nope.yaml")


def test_the_web_acl_is_required_in_production_and_a_switch_elsewhere():
    frontend = {"distDir": "examples/frontend-dist"}
    assert parse_stack_config("production", {"environment": "production", "frontend": frontend}).frontend.waf is True
    assert parse_stack_config("staging", {"environment": "staging", "frontend": frontend}).frontend.waf is False
    switched = parse_stack_config("staging", {"environment": "staging", "frontend": {**frontend, "waf": "true"}})
    assert switched.frontend.waf is True
    with pytest.raises(ConfigError) as raised:
        parse_stack_config("production", {"environment": "production", "frontend": {**frontend, "waf": False}})
    assert str(raised.value) == (
        "swipesavvy:frontend.waf = false is invalid: production's distribution always has its web ACL"
        " (AWS FSBP CloudFront.6) (fix: pulumi config set --path 'swipesavvy:frontend.waf' true)"
    )


def backend_settings(**backend) -> dict:
    return {
        "environment": "staging",
        "network": {"natGateway": True},
        "backend": {"artifact": "examples/backend-release", **backend},
    }


# AMI ids are "ami-" and 8 hex digits, or 17 since longer resource ids (Amazon EC2 user guide,
# "Resource IDs").
@pytest.mark.parametrize("ami", ["latest", "ami-12c6146b", "ami-0123456789abcdef0"])
def test_backend_ami_is_an_id_or_latest(ami):
    assert parse_stack_config("staging", backend_settings(ami=ami)).backend.ami == ami


def test_backend_ami_defaults_to_latest():
    assert parse_stack_config("staging", backend_settings()).backend.ami == "latest"


@pytest.mark.parametrize(
    "ami",
    [
        "ami-123",
        "ami-0123456789ABCDEF0",
        "al2023",
        "ami-0123456789abcdef0\n",
        7,
        "al2023-ami-2023.12.20260930.0-kernel-6.1-arm64 ",
        "al2023-ami-minimal-2023.12.20260930.0-kernel-6.1-arm64",  # no package set the boot relies on
        "al2023-ami-2023.12.2026093.0-kernel-6.1-arm64",
        "al2023-ami-2023.12.20260930.0-kernel-6.1-*",  # a pattern would float like latest
    ],
)
def test_another_backend_ami_is_refused_in_one_line(ami):
    shown = repr(ami) if isinstance(ami, str) else str(ami)
    assert config_error(backend_settings(ami=ami)) == (
        f"swipesavvy:backend.ami = {shown} is invalid: must be an AMI id (ami- and 8 or 17 hex digits), an Amazon"
        " Linux 2023 release (al2023-ami-2023.<version>-kernel-<kernel>-<arm64|x86_64>) or latest (the newest"
        " Amazon Linux 2023) (fix: pulumi config set --path 'swipesavvy:backend.ami' "
        "al2023-ami-2023.12.20260930.0-kernel-6.1-arm64)"
    )


# Amazon's own image names (owner 137112412989, "amazon"), e.g. in moto's copy of the public
# AL2023 parameters: al2023-ami-2023.12.20260930.0-kernel-6.1-arm64.
@pytest.mark.parametrize(
    ("ami", "instance_type"),
    [
        ("al2023-ami-2023.12.20260930.0-kernel-6.1-arm64", "t4g.small"),
        ("al2023-ami-2023.12.20260930.0-kernel-6.12-x86_64", "m7i.large"),
        ("al2023-ami-2023.4.20240611.0-kernel-6.1-x86_64", "t3.small"),
    ],
)
def test_backend_ami_may_be_a_dated_amazon_linux_2023_release(ami, instance_type):
    backend = parse_stack_config("staging", backend_settings(ami=ami, instanceType=instance_type)).backend
    assert (backend.ami, backend.ami_release) == (ami, ami)


def test_an_ami_id_or_latest_is_no_release_name():
    assert parse_stack_config("staging", backend_settings(ami="ami-12c6146b")).backend.ami_release is None
    assert parse_stack_config("staging", backend_settings()).backend.ami_release is None


def test_a_release_of_the_other_architecture_is_refused_naming_both():
    assert config_error(
        backend_settings(ami="al2023-ami-2023.12.20260930.0-kernel-6.1-x86_64", instanceType="t4g.small")
    ) == (
        "swipesavvy:backend.ami = 'al2023-ami-2023.12.20260930.0-kernel-6.1-x86_64' is invalid: is an x86_64 image"
        " and backend.instanceType t4g.small runs arm64 (fix: pulumi config set --path 'swipesavvy:backend.ami'"
        " al2023-ami-2023.12.20260930.0-kernel-6.1-arm64)"
    )


@pytest.mark.parametrize("backend", [{"ami": "latest"}, {}])
def test_production_refuses_the_floating_latest_ami(backend):
    settings = {"environment": "production", **backend_settings(instanceType="m7g.large", **backend)}
    settings["environment"] = "production"
    assert config_error(settings) == (
        "swipesavvy:backend.ami = 'latest' is invalid: production pins its image (an AMI id or an Amazon Linux 2023"
        " release name): latest rolls every instance whenever Amazon publishes a release (fix: pulumi config set"
        " --path 'swipesavvy:backend.ami' al2023-ami-2023.12.20260930.0-kernel-6.1-arm64)"
    )


def test_the_committed_production_stack_pins_an_amazon_linux_release():
    from components.config import read_stack_file

    raw = {k.removeprefix("swipesavvy:"): v for k, v in read_stack_file(ROOT / "Pulumi.production.yaml").items()}
    backend = parse_stack_config("production", {k: v for k, v in raw.items() if ":" not in k}).backend
    assert backend.ami == backend.ami_release == "al2023-ami-2023.12.20260930.0-kernel-6.1-arm64"


def test_the_ca_bundle_pin_is_no_setting_now_that_the_bundle_ships_with_the_program():
    assert config_error(backend_settings(rdsCaBundleSha256="e" * 64)).startswith(
        "swipesavvy:backend.rdsCaBundleSha256 is not a setting; backend takes "
    )


# --- what mutation testing found unasserted (issue 22): limits at and past their edges, whole messages ----


def parse(settings: dict, **kwargs):
    return parse_stack_config(settings.get("environment", "staging"), {"environment": "staging", **settings}, **kwargs)


def fix_line(key: str, example) -> str:
    return f"(fix: pulumi config set --path 'swipesavvy:{key}' {example})"


def test_availability_zone_names_are_checked_without_a_region():
    assert config_error({"network": {"availabilityZones": ["us-east-1a", "zone-b"]}}) == (
        'swipesavvy:network.availabilityZones = ["us-east-1a", "zone-b"] is invalid: must be a list of at least'
        " two availability zone names " + fix_line("network.availabilityZones[0]", "us-east-1a")
    )
    for zone in ("us-east-1", "use-1a", "us-east-1ab", "US-EAST-1A", "us-east-xa"):
        assert config_error({"network": {"availabilityZones": [zone, "us-east-1b"]}}).startswith(
            "swipesavvy:network.availabilityZones = ["
        )
    assert parse(
        {"network": {"availabilityZones": ["ap-southeast-2c", "us-gov-west-1a"]}}
    ).network.availability_zones == (
        "ap-southeast-2c",
        "us-gov-west-1a",
    )


@pytest.mark.parametrize("zones", [["us-east-1a", "us-east-1a"], ["us-east-1a"], "us-east-1a"])
def test_availability_zones_must_be_two_distinct(zones):
    shown = '["us-east-1a", "us-east-1a"]' if isinstance(zones, list) and len(zones) == 2 else '["us-east-1a"]'
    assert config_error({"network": {"availabilityZones": zones}}, region="us-east-1") == (
        f"swipesavvy:network.availabilityZones = {shown} is invalid: must name at least two distinct availability"
        " zones " + fix_line("network.availabilityZones[0]", "us-east-1a")
    )


def test_the_first_zone_outside_the_region_is_named_with_its_own_letter():
    assert config_error({"network": {"availabilityZones": ["eu-west-1c", "us-east-1a"]}}, region="us-east-1") == (
        "swipesavvy:network.availabilityZones[0] = 'eu-west-1c' is invalid: must be a zone of aws:region us-east-1 "
        + fix_line("network.availabilityZones[0]", "us-east-1c")
    )


def test_network_defaults():
    network = parse({}).network
    assert network == NetworkConfig(
        vpc_cidr="10.40.0.0/16",
        availability_zones=(),
        nat_gateway=False,
        existing_vpc_id=None,
        private_subnet_ids=(),
        public_subnet_ids=(),
        existing_secrets_endpoint_security_group_id=None,
    )
    assert network.uses_existing_vpc is False


EXISTING_VPC = {
    "existingVpcId": "vpc-0123abcd",
    "privateSubnetIds": ["subnet-0123abcd", "subnet-4567ef01"],
    "publicSubnetIds": ["subnet-89abcdef", "subnet-01234567"],
}


def test_every_network_field_lands_where_it_belongs():
    network = {**EXISTING_VPC, "natGateway": "true", "existingSecretsEndpointSecurityGroupId": "sg-0123abcd"}
    assert parse({"network": network}).network == NetworkConfig(
        vpc_cidr="10.40.0.0/16",
        availability_zones=(),
        nat_gateway=True,
        existing_vpc_id="vpc-0123abcd",
        private_subnet_ids=("subnet-0123abcd", "subnet-4567ef01"),
        public_subnet_ids=("subnet-89abcdef", "subnet-01234567"),
        existing_secrets_endpoint_security_group_id="sg-0123abcd",
    )


@pytest.mark.parametrize("cidr", ["10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/20"])
def test_vpc_cidr_prefixes_from_16_to_24_pass(cidr):
    assert parse({"network": {"vpcCidr": cidr}}).network.vpc_cidr == cidr


@pytest.mark.parametrize("cidr", ["10.1.2.0/25", "10.0.0.0/15", "fd00::/16", "10.1.0.0", 16])
def test_vpc_cidr_outside_16_to_24_is_refused(cidr):
    shown = f"'{cidr}'" if isinstance(cidr, str) else str(cidr)
    assert config_error({"network": {"vpcCidr": cidr}}) == (
        f"swipesavvy:network.vpcCidr = {shown} is invalid: must be an IPv4 network in CIDR form with a /16 to /24"
        " prefix " + fix_line("network.vpcCidr", "10.40.0.0/16")
    )


@pytest.mark.parametrize(
    ("network", "message"),
    [
        (
            {**EXISTING_VPC, "publicSubnetIds": ["subnet-89abcdef"]},
            'swipesavvy:network.publicSubnetIds = ["subnet-89abcdef"] is invalid: an existing VPC needs at least two'
            " public subnets in different zones " + fix_line("network.publicSubnetIds[0]", "subnet-0123abcd"),
        ),
        (
            {**EXISTING_VPC, "existingVpcId": "vpc-XYZ"},
            "swipesavvy:network.existingVpcId = 'vpc-XYZ' is invalid: must be a VPC id like vpc-0123abcd "
            + fix_line("network.existingVpcId", "vpc-0123abcd"),
        ),
        (
            {**EXISTING_VPC, "privateSubnetIds": ["subnet-0123abcd", "sub-1"]},
            'swipesavvy:network.privateSubnetIds = ["subnet-0123abcd", "sub-1"] is invalid: must be a list of'
            " subnet ids like subnet-0123abcd " + fix_line("network.privateSubnetIds[0]", "subnet-0123abcd"),
        ),
        (
            {**EXISTING_VPC, "publicSubnetIds": ["subnet-0123abcd", "sub-1"]},
            'swipesavvy:network.publicSubnetIds = ["subnet-0123abcd", "sub-1"] is invalid: must be a list of'
            " subnet ids like subnet-0123abcd " + fix_line("network.publicSubnetIds[0]", "subnet-0123abcd"),
        ),
        (
            {"publicSubnetIds": ["subnet-89abcdef", "subnet-01234567"]},
            "swipesavvy:network.existingVpcId = null is invalid: subnet ids are only used together with an existing"
            " VPC id " + fix_line("network.existingVpcId", "vpc-0123abcd"),
        ),
        (
            {"existingSecretsEndpointSecurityGroupId": "sg-0123abcd"},
            "swipesavvy:network.existingSecretsEndpointSecurityGroupId = 'sg-0123abcd' is invalid: is only used with"
            " existingVpcId (an endpoint already in that VPC) "
            + fix_line("network.existingSecretsEndpointSecurityGroupId", "sg-0123abcd"),
        ),
        (
            {**EXISTING_VPC, "existingSecretsEndpointSecurityGroupId": "sg-1"},
            "swipesavvy:network.existingSecretsEndpointSecurityGroupId = 'sg-1' is invalid: must be a security group"
            " id like sg-0123abcd " + fix_line("network.existingSecretsEndpointSecurityGroupId", "sg-0123abcd"),
        ),
        (
            {"natGateway": "yes"},
            "swipesavvy:network.natGateway = 'yes' is invalid: must be true or false "
            + fix_line("network.natGateway", "false"),
        ),
        (
            {"natGatway": True},
            "swipesavvy:network.natGatway is not a setting; network takes availabilityZones,"
            " existingSecretsEndpointSecurityGroupId, existingVpcId, natGateway, natGatewayPerZone, privateSubnetIds,"
            " publicSubnetIds, vpcCidr (fix: pulumi config rm --path 'swipesavvy:network.natGatway')",
        ),
    ],
)
def test_network_refusals_in_whole(network, message):
    assert config_error({"network": network}) == message


@pytest.mark.parametrize(
    ("raw", "shown"), [("not json", "'not json'"), ("[1, 2]", "[1, 2]"), ([1, 2], "[1, 2]"), (7, "7")]
)
def test_a_section_that_is_not_an_object_is_refused(raw, shown):
    assert config_error({"database": raw}) == (
        f"swipesavvy:database = {shown} is invalid: must be an object (fix: pulumi config set --path"
        " 'swipesavvy:database' '{...}')"
    )


def test_a_section_given_as_json_text_or_null_parses():
    assert parse({"network": '{"natGateway": true}', "database": None}).network.nat_gateway is True


def test_database_defaults():
    assert parse({}).database == DatabaseConfig(access="operator")
    assert DatabaseConfig() == DatabaseConfig(
        name="swipesavvy_staging",
        engine_version="16",
        instance_class="db.t4g.medium",
        allocated_storage_gib=100,
        max_allocated_storage_gib=200,
        multi_az=False,
        backup_retention_days=7,
        deletion_protection=True,
        performance_insights_retention_days=7,
        monitoring_interval_seconds=60,
        slow_query_ms=500,
        backend_connection_limit=50,
        analytics_connection_limit=10,
        monitoring_connection_limit=5,
        deploy_runner_cidrs=(),
        access=None,
        operator_secrets_endpoint=True,
        connect_host=None,
        connect_port=None,
        snapshot_after_schema=False,
        snapshot_after_seed=False,
        allow_data_destruction=False,
        allow_major_version_upgrade=False,
    )


def test_every_database_field_lands_where_it_belongs():
    settings = {
        "name": "ledger_1",
        "engineVersion": 17,  # YAML's integer for an unquoted 17
        "instanceClass": "db.r7g.large",
        "allocatedStorage": "200",
        "maxAllocatedStorage": 400,
        "multiAz": "TRUE",
        "backupRetentionDays": 35,
        "deletionProtection": "False",
        "performanceInsightsRetentionDays": 62,
        "monitoringIntervalSeconds": 1,
        "slowQueryMs": 0,
        "backendConnectionLimit": 5000,
        "analyticsConnectionLimit": 1,
        "monitoringConnectionLimit": 100,
        "deployRunnerCidrs": "10.0.5.0/24",  # one CIDR as a plain string
        "access": "direct",
        "operatorSecretsEndpoint": False,
        "operatorReservedConcurrency": True,
        "connectHost": "db-tunnel.internal",
        "connectPort": 65535,
        "snapshotAfterSchema": True,
        "snapshotAfterSeed": True,
        "allowDataDestruction": True,
        "allowMajorVersionUpgrade": True,
    }
    assert database_config(**settings) == DatabaseConfig(
        name="ledger_1",
        engine_version="17",
        instance_class="db.r7g.large",
        allocated_storage_gib=200,
        max_allocated_storage_gib=400,
        multi_az=True,
        backup_retention_days=35,
        deletion_protection=False,
        performance_insights_retention_days=62,
        monitoring_interval_seconds=1,
        slow_query_ms=0,
        backend_connection_limit=5000,
        analytics_connection_limit=1,
        monitoring_connection_limit=100,
        deploy_runner_cidrs=("10.0.5.0/24",),
        access="direct",
        operator_secrets_endpoint=False,
        operator_reserved_concurrency=True,
        connect_host="db-tunnel.internal",
        connect_port=65535,
        snapshot_after_schema=True,
        snapshot_after_seed=True,
        allow_data_destruction=True,
        allow_major_version_upgrade=True,
    )


DIRECT = {"access": "direct", "connectHost": "127.0.0.1"}


@pytest.mark.parametrize(
    ("key", "value", "rule", "example"),
    [
        ("connectPort", 0, "must be an integer from 1 to 65535", 5432),
        ("connectPort", 65536, "must be an integer from 1 to 65535", 5432),
        ("connectPort", "5432.0", "must be an integer from 1 to 65535", 5432),
        ("backendConnectionLimit", 0, "must be an integer from 1 to 5000", 50),
        ("backendConnectionLimit", 5001, "must be an integer from 1 to 5000", 50),
        ("analyticsConnectionLimit", 0, "must be an integer from 1 to 5000", 10),
        ("analyticsConnectionLimit", 5001, "must be an integer from 1 to 5000", 10),
        ("monitoringConnectionLimit", 0, "must be an integer from 1 to 100", 5),
        ("monitoringConnectionLimit", 101, "must be an integer from 1 to 100", 5),
        ("slowQueryMs", -1, "must be an integer from 0 to 3600000 ms", 500),
        ("slowQueryMs", 3_600_001, "must be an integer from 0 to 3600000 ms", 500),
        ("backupRetentionDays", 36, "must be an integer from 7 to 35 days", 7),
        ("allocatedStorage", 65537, "must be an integer from 100 to 65536 GiB", 100),
        ("allocatedStorage", True, "must be an integer from 100 to 65536 GiB", 100),
        ("performanceInsightsRetentionDays", 6, "must be an integer from 7 to 731 days", 7),
        ("performanceInsightsRetentionDays", 732, "must be an integer from 7 to 731 days", 7),
        ("performanceInsightsRetentionDays", 30, "must be 7, 731 or a multiple of 31", 7),
        ("monitoringIntervalSeconds", 0, "must be an integer from 1 to 60 seconds", 60),
        ("monitoringIntervalSeconds", 61, "must be an integer from 1 to 60 seconds", 60),
        ("name", "1table", "must be a lowercase PostgreSQL identifier (a-z, 0-9, _)", "swipesavvy_staging"),
        ("name", "a" * 64, "must be a lowercase PostgreSQL identifier (a-z, 0-9, _)", "swipesavvy_staging"),
        ("name", 5, "must be a lowercase PostgreSQL identifier (a-z, 0-9, _)", "swipesavvy_staging"),
        ("instanceClass", "db.t4g", "must be an RDS instance class like db.t4g.medium", "db.t4g.medium"),
        ("engineVersion", True, "must be one of 14, 15, 16, 17", "16"),
        ("connectHost", "host name", "must be a host name or IP address", "127.0.0.1"),
        ("operatorSecretsEndpoint", "no", "must be true or false", "true"),
        ("operatorReservedConcurrency", "yes", "must be true or false", "false"),
        ("snapshotAfterSchema", 1, "must be true or false", "false"),
    ],
)
def test_database_values_just_outside_their_limits_are_refused_naming_the_key(key, value, rule, example):
    shown = repr(value) if isinstance(value, str) else ("true" if value is True else str(value))
    database = {**DIRECT, key: value} if key.startswith("connect") else {key: value}
    assert config_error({"database": database}) == (
        f"swipesavvy:database.{key} = {shown} is invalid: {rule} " + fix_line(f"database.{key}", example)
    )


@pytest.mark.parametrize(
    ("key", "value", "field_name"),
    [
        ("connectPort", 1, "connect_port"),
        ("connectPort", " 15432 ", "connect_port"),
        ("backendConnectionLimit", 1, "backend_connection_limit"),
        ("analyticsConnectionLimit", 5000, "analytics_connection_limit"),
        ("monitoringConnectionLimit", 1, "monitoring_connection_limit"),
        ("slowQueryMs", 3_600_000, "slow_query_ms"),
        ("backupRetentionDays", 7, "backup_retention_days"),
        ("allocatedStorage", 65536, "allocated_storage_gib"),
        ("performanceInsightsRetentionDays", 731, "performance_insights_retention_days"),
        ("performanceInsightsRetentionDays", 7, "performance_insights_retention_days"),
        ("performanceInsightsRetentionDays", 93, "performance_insights_retention_days"),
        ("monitoringIntervalSeconds", 5, "monitoring_interval_seconds"),
    ],
)
def test_database_values_at_their_limits_pass(key, value, field_name):
    database = {**DIRECT, key: value} if key.startswith("connect") else {key: value}
    assert getattr(database_config(**database), field_name) == int(value)


def test_a_connect_port_without_direct_access_is_refused_naming_it():
    assert config_error({"database": {"connectPort": 5432}}) == (
        "swipesavvy:database.connectPort is only used with database.access direct: the operator connects from"
        " inside the VPC (fix: pulumi config rm --path 'swipesavvy:database.connectPort', or pulumi config set"
        " --path 'swipesavvy:database.access' direct)"
    )


def test_direct_access_in_an_existing_vpc_needs_no_runner_or_tunnel():
    config = parse({"network": EXISTING_VPC, "database": {"access": "direct"}})
    assert (config.database.access, config.database.connect_host) == ("direct", None)


def test_an_ipv6_runner_range_is_refused_saying_why():
    settings = {"database": {"deployRunnerCidrs": ["fd00::/64"], "allowPublicDeployRunnerCidrs": True}}
    assert config_error(settings) == (
        "swipesavvy:database.deployRunnerCidrs[0] = 'fd00::/64' is invalid: must be an IPv4 CIDR block (the"
        " database's ingress rules are IPv4) " + fix_line("database.deployRunnerCidrs[0]", "10.0.5.0/24")
    )
    assert config_error({"database": {"deployRunnerCidrs": ["10.0.5.0"]}}).startswith(
        'swipesavvy:database.deployRunnerCidrs = ["10.0.5.0"] is invalid: must be a list of CIDR blocks'
    )


@pytest.mark.parametrize(
    ("database", "message"),
    [
        (
            {"multiAz": False},
            "swipesavvy:database.multiAz = false is invalid: must stay true in production "
            + fix_line("database.multiAz", "true"),
        ),
        (
            {"allowDataDestruction": True},
            "swipesavvy:database.allowDataDestruction = true is invalid: must stay false in production "
            + fix_line("database.allowDataDestruction", "false"),
        ),
    ],
)
def test_production_database_refusals_in_whole(database, message):
    assert config_error({"environment": "production", "database": database}) == message


def test_seed_enabled_in_production_message():
    assert config_error({"environment": "production", "seed": {"enabled": True}}) == (
        "swipesavvy:seed.enabled = true is invalid: mock data is never seeded into production "
        + fix_line("seed.enabled", "false")
    )


def test_seed_defaults_and_fields():
    assert parse({}).seed == SeedConfig(
        enabled=True, scale=1.0, rng_seed=20251228, anchor_date=datetime.date(2025, 12, 28), dataset_version=1
    )
    assert parse({"environment": "production"}).seed.enabled is False
    settings = {"enabled": "false", "scale": "2.5", "rngSeed": 7, "anchorDate": "2024-01-31", "datasetVersion": 3}
    assert parse({"seed": settings}).seed == SeedConfig(
        enabled=False, scale=2.5, rng_seed=7, anchor_date=datetime.date(2024, 1, 31), dataset_version=3
    )


@pytest.mark.parametrize(("scale", "expected"), [(100, 100.0), ("100", 100.0), (0.01, 0.01), (99.99, 99.99)])
def test_seed_scale_includes_both_ends(scale, expected):
    assert parse({"seed": {"scale": scale}}).seed.scale == expected


@pytest.mark.parametrize(
    ("scale", "shown"), [(100.001, "100.001"), (0.0099, "0.0099"), (True, "true"), ("big", "'big'"), ([1], "[1]")]
)
def test_seed_scale_outside_or_not_a_number_is_refused(scale, shown):
    assert config_error({"seed": {"scale": scale}}) == (
        f"swipesavvy:seed.scale = {shown} is invalid: must be a number from 0.01 to 100 "
        + fix_line("seed.scale", "1.0")
    )


@pytest.mark.parametrize("version", [1, 1_000_000, "42"])
def test_dataset_version_from_1_to_a_million_passes(version):
    assert parse({"seed": {"datasetVersion": version}}).seed.dataset_version == int(version)


@pytest.mark.parametrize("version", [0, 1_000_001, -1, 1.0])
def test_dataset_version_outside_is_refused(version):
    assert config_error({"seed": {"datasetVersion": version}}) == (
        f"swipesavvy:seed.datasetVersion = {version} is invalid: must be an integer from 1 to 1000000 "
        + fix_line("seed.datasetVersion", 1)
    )


def test_seed_typo_names_the_keys_it_takes():
    assert config_error({"seed": {"scal": 2}}) == (
        "swipesavvy:seed.scal is not a setting; seed takes anchorDate, datasetVersion, enabled, rngSeed, scale"
        " (fix: pulumi config rm --path 'swipesavvy:seed.scal')"
    )


@pytest.mark.parametrize(("percentage", "expected"), [(0, 0), (100, 100), ("37", 37)])
def test_rollout_percentage_from_0_to_100(percentage, expected):
    flags = {"dark_mode": {"enabled": True, "rolloutPercentage": percentage}}
    assert parse({"featureFlags": flags}).feature_flags == {
        "dark_mode": FeatureFlagSetting(enabled=True, rollout_percentage=expected)
    }


def test_rollout_percentage_below_zero_and_a_flag_typo_are_refused():
    assert config_error({"featureFlags": {"dark_mode": {"enabled": True, "rolloutPercentage": -1}}}) == (
        "swipesavvy:featureFlags.dark_mode.rolloutPercentage = -1 is invalid: must be an integer from 0 to 100"
        " (percent) " + fix_line("featureFlags.dark_mode.rolloutPercentage", 100)
    )
    assert config_error({"featureFlags": {"dark_mode": {"enabled": False, "rolloutPercentage": 101}}}).endswith(
        fix_line("featureFlags.dark_mode.rolloutPercentage", 0)
    )
    assert config_error({"featureFlags": {"dark_mode": {"enable": True}}}) == (
        "swipesavvy:featureFlags.dark_mode.enable is not a setting; featureFlags.dark_mode takes enabled,"
        " rolloutPercentage (fix: pulumi config rm --path 'swipesavvy:featureFlags.dark_mode.enable')"
    )
    assert parse({"featureFlags": {"dark_mode": {}}}).feature_flags["dark_mode"] == FeatureFlagSetting(False, 0)


def test_an_unknown_setting_is_refused_in_whole():
    assert config_error({"databse": {}, "zzz": 1}) == (
        "swipesavvy:databse is not a setting of this program; known settings: environment, network, database, seed,"
        " featureFlags, backend, frontend, monitoring, cost (fix: pulumi config rm swipesavvy:databse)"
    )


@pytest.mark.parametrize(("environment", "production"), [("staging", False), ("production", True)])
def test_is_production_and_tags(environment, production):
    config = parse({"environment": environment})
    assert config.is_production is production
    assert config.tags == {
        "project": "swipesavvy",
        "environment": environment,
        "stack": environment,
        "managed-by": "pulumi",
    }


@pytest.mark.parametrize(
    ("stack", "review"),
    [("pr-1", True), ("pr-120", True), ("pr-0", False), ("pr-1a", False), ("xpr-1", False), ("staging", False)],
)
def test_a_review_stack_is_pr_and_a_number(stack, review):
    settings = {"environment": "staging", "database": {"deletionProtection": False}}
    assert parse_stack_config(stack, settings).is_review is review


def test_backend_defaults_and_fields():
    assert parse(backend_settings()).backend == BackendConfig(
        artifact="examples/backend-release",
        dotfiles=(),
        instance_type="t4g.small",
        instance_count=1,
        root_volume_gib=20,
        health_check_grace_seconds=600,
        log_level="info",
        ami="latest",
    )
    settings = backend_settings(
        instanceType="m7i.large", instanceCount=20, rootVolumeGib=500, healthCheckGraceSeconds=60, logLevel="debug"
    )
    backend = parse(settings).backend
    assert (backend.instance_type, backend.instance_count, backend.root_volume_gib) == ("m7i.large", 20, 500)
    assert (backend.health_check_grace_seconds, backend.log_level) == (60, "debug")
    low = parse(backend_settings(instanceCount=1, rootVolumeGib=8, healthCheckGraceSeconds=720)).backend
    assert (low.instance_count, low.root_volume_gib, low.health_check_grace_seconds) == (1, 8, 720)


@pytest.mark.parametrize("count", [1, 2, 20])
def test_a_grace_longer_than_a_pulumi_up_can_wait_for_the_rollout_is_refused_at_preview(count):
    """The grace is the refresh's warmup: 3,600 s makes a refresh of 70 min, while the rollout's
    wait and its rollback must fit one provider call (22 + 8 min)."""
    assert config_error(backend_settings(instanceCount=count, healthCheckGraceSeconds=3600)) == (
        "swipesavvy:backend.healthCheckGraceSeconds = 3600 is invalid: it is the rollout's instance warmup, so a"
        " rollout would need up to 70 min, more than the 22 min one `pulumi up` waits for it: at most 720 s "
        + fix_line("backend.healthCheckGraceSeconds", 720)
    )
    assert parse(backend_settings(instanceCount=count, healthCheckGraceSeconds=720)).backend is not None


@pytest.mark.parametrize(
    ("instance_type", "architecture"),
    [("t4g.small", "arm64"), ("c7gn.large", "arm64"), ("m7g.xlarge", "arm64"), ("t3.small", "x86_64"),
     ("m7i.large", "x86_64"), ("g5.xlarge", "x86_64"), ("x2gd.large", "arm64")],
)  # fmt: skip
def test_the_architecture_follows_the_instance_family(instance_type, architecture):
    assert parse(backend_settings(instanceType=instance_type)).backend.architecture == architecture


@pytest.mark.parametrize(
    ("key", "value", "rule", "example"),
    [
        ("instanceCount", 0, "must be an integer from 1 to 20", 1),
        ("instanceCount", 21, "must be an integer from 1 to 20", 1),
        ("rootVolumeGib", 7, "must be an integer from 8 to 500 GiB", 20),
        ("rootVolumeGib", 501, "must be an integer from 8 to 500 GiB", 20),
        ("healthCheckGraceSeconds", 59, "must be an integer from 60 to 3600 s", 600),
        ("healthCheckGraceSeconds", 3601, "must be an integer from 60 to 3600 s", 600),
        ("logLevel", "trace", "must be one of error, warn, info, debug", "info"),
        ("instanceType", "T4G.small", "must be an EC2 instance type like t4g.small", "t4g.small"),
        ("instanceType", "t4g", "must be an EC2 instance type like t4g.small", "t4g.small"),
    ],
)
def test_backend_values_outside_their_limits_are_refused_naming_the_key(key, value, rule, example):
    shown = repr(value) if isinstance(value, str) else str(value)
    assert config_error(backend_settings(**{key: value})) == (
        f"swipesavvy:backend.{key} = {shown} is invalid: {rule} " + fix_line(f"backend.{key}", example)
    )


def test_a_nat_gateway_per_zone_is_a_setting_that_needs_the_nat_gateway():
    assert parse({"network": {"natGateway": True, "natGatewayPerZone": True}}).network.nat_gateway_per_zone is True
    assert parse({"network": {"natGateway": True}}).network.nat_gateway_per_zone is False
    assert config_error({"network": {"natGatewayPerZone": True}}) == (
        "swipesavvy:network.natGateway = false is invalid: natGatewayPerZone needs natGateway (a NAT gateway in"
        " each zone) " + fix_line("network.natGateway", "true")
    )
    assert config_error({"network": {**EXISTING_VPC, "natGateway": True, "natGatewayPerZone": True}}) == (
        "swipesavvy:network.natGatewayPerZone = true is invalid: an existing VPC's routes are its own: set it only"
        " for a new VPC " + fix_line("network.natGatewayPerZone", "false")
    )


def test_a_backend_needs_a_nat_gateway_in_a_new_vpc():
    settings = {**backend_settings(), "network": {}}
    assert config_error(settings) == (
        "swipesavvy:network.natGateway = false is invalid: the backend's instances need a route out of the private"
        " subnets (packages, the release, AWS APIs, Datadog) " + fix_line("network.natGateway", "true")
    )
    existing = {**backend_settings(), "network": EXISTING_VPC}
    assert parse(existing).backend.artifact == "examples/backend-release"


def test_an_uploaded_release_is_named_by_its_digest():
    uri = f"s3://swipesavvy-releases/releases/{'a' * 64}.tar.gz"
    backend = parse(backend_settings(artifact=uri)).backend
    assert (backend.artifact, backend.artifact_is_s3) == (uri, True)
    assert parse(backend_settings()).backend.artifact_is_s3 is False
    missing = f"s3://swipesavvy-releases/releases/{'a' * 63}.tar.gz"
    assert config_error(backend_settings(artifact=missing)) == (
        f"swipesavvy:backend.artifact = '{missing}' is invalid: must be a release (a build folder or a .tar.gz"
        " archive) under the project root, or an uploaded release s3://bucket/releases/<sha256>.tar.gz "
        + fix_line("backend.artifact", "examples/backend-release")
    )


def test_a_release_that_is_neither_folder_nor_archive_is_refused(project):
    (project / "release.zip").write_bytes(b"PK")
    assert refusal(project, "backend", artifact="release.zip") == (
        "swipesavvy:backend.artifact = 'release.zip' is invalid: must be a build folder or a .tar.gz archive "
        + fix_line("backend.artifact", "examples/backend-release")
    )
    (project / "broken.tar.gz").write_bytes(b"not gzip")
    assert refusal(project, "backend", artifact="broken.tar.gz").startswith(
        "swipesavvy:backend.artifact = 'broken.tar.gz' is invalid: must be a readable .tar.gz archive ("
    )
    assert refusal(project, "backend", artifact="broken.tar.gz").endswith(
        fix_line("backend.artifact", "examples/backend-release")
    )


def test_a_release_archive_with_dot_prefixed_names_and_installed_dotfiles(project):
    import io

    with tarfile.open(project / "release.tgz", "w:gz") as tar:
        for name in ("./server.js", "./node_modules/pkg/.npmignore", "./lib/index.js"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"//"))
    assert parse_stack_config("staging", section_settings("backend", artifact="release.tgz"), project_root=project)
    with tarfile.open(project / "loose.tgz", "w:gz") as tar:
        for name in ("./server.js", "./node_modules/.env"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"//"))
    assert refusal(project, "backend", artifact="loose.tgz") == (
        "swipesavvy:backend.artifact = 'loose.tgz' is invalid: it holds node_modules/.env, a dotfile (often a secret,"
        " so never shipped unless listed) (fix: remove it from loose.tgz, or if it must ship: pulumi config set"
        " --path 'swipesavvy:backend.dotfiles[0]' node_modules/.env)"
    )


def test_a_listed_dotfile_folder_admits_what_is_under_it_and_nothing_beside(project):
    (project / "site" / ".well-known").mkdir()
    (project / "site" / ".well-known" / ".hidden").write_text("x")
    (project / "site" / ".well-knownx").write_text("x")
    assert refusal(project, "frontend", distDir="site", dotfiles=[".well-known"]).startswith(
        "swipesavvy:frontend.distDir = 'site' is invalid: it holds .well-knownx, a dotfile"
    )


@pytest.mark.parametrize("value", [None, "", "missing", 5])
def test_a_missing_release_path_is_refused(project, value):
    shown = "null" if value is None else (repr(value) if isinstance(value, str) else str(value))
    values = {} if value is None else {"artifact": value}
    assert refusal(project, "backend", **values) == (
        f"swipesavvy:backend.artifact = {shown} is invalid: must be a release (a build folder or a .tar.gz archive)"
        " under the project root, or an uploaded release s3://bucket/releases/<sha256>.tar.gz "
        + fix_line("backend.artifact", "examples/backend-release")
    )


def test_a_site_outside_the_project_names_the_root(project):
    assert refusal(project, "frontend", distDir="../outside") == (
        f"swipesavvy:frontend.distDir = '../outside' is invalid: must be under the project root {project}"
        " (symlinks followed) " + fix_line("frontend.distDir", "examples/frontend-dist")
    )
    (project / "empty").mkdir()
    assert refusal(project, "frontend", distDir="empty") == (
        "swipesavvy:frontend.distDir = 'empty' is invalid: must be a build folder holding index.html "
        + fix_line("frontend.distDir", "examples/frontend-dist")
    )
    assert refusal(project, "frontend", distDir="nope") == (
        "swipesavvy:frontend.distDir = 'nope' is invalid: must be the site's build folder under the project root "
        + fix_line("frontend.distDir", "examples/frontend-dist")
    )


FRONTEND = {"distDir": "examples/frontend-dist"}


def test_frontend_fields():
    frontend = {
        **FRONTEND,
        "domain": "staging.example.com",
        "hostedZoneId": "Z0123456789ABC",
        "priceClass": "PriceClass_All",
    }
    assert parse({"frontend": frontend}).frontend == FrontendConfig(
        dist_dir="examples/frontend-dist",
        dotfiles=(),
        domain="staging.example.com",
        hosted_zone_id="Z0123456789ABC",
        price_class="PriceClass_All",
        waf=False,
    )
    assert parse({"frontend": FRONTEND}).frontend.price_class == "PriceClass_100"
    assert parse({}).frontend is None and parse({}).backend is None


@pytest.mark.parametrize(
    ("key", "value", "rule", "example"),
    [
        ("domain", "Staging.Example.com", "must be a DNS name like staging.swipesavvy.example", "staging.example.com"),
        ("domain", "localhost", "must be a DNS name like staging.swipesavvy.example", "staging.example.com"),
        ("hostedZoneId", "z0123456789abc", "must be a Route 53 hosted zone id like Z0123456789ABC", "Z0123456789ABC"),
        (
            "priceClass",
            "PriceClass_50",
            "must be one of PriceClass_100, PriceClass_200, PriceClass_All",
            "PriceClass_100",
        ),
    ],
)
def test_frontend_values_are_refused_naming_the_key(key, value, rule, example):
    other = {"domain": "staging.example.com", "hostedZoneId": "Z0123456789ABC"}
    assert config_error({"frontend": {**FRONTEND, **other, key: value}}) == (
        f"swipesavvy:frontend.{key} = '{value}' is invalid: {rule} " + fix_line(f"frontend.{key}", example)
    )


MONITORED = {"backend": backend_settings()["backend"], "network": {"natGateway": True}, "frontend": FRONTEND}


def test_monitoring_defaults():
    assert parse({}).monitoring == MonitoringConfig(
        enabled=False,
        notify="",
        aws_integration=False,
        synthetics=False,  # nothing deployed to call
        synthetics_locations=("aws:us-east-1", "aws:eu-central-1"),
        api_token_variable=None,
        slo_target_percent=99.9,
        thresholds={name: rule.default for name, rule in THRESHOLDS.items()},
    )
    assert parse(MONITORED).monitoring.synthetics is True
    assert THRESHOLDS["apiErrorRatePercent"].default == Threshold(2, 5)


def test_monitoring_fields():
    monitoring = {
        "enabled": True,
        "notify": "@slack-alerts @pagerduty-swipesavvy",
        "awsIntegration": True,
        "synthetics": False,
        "syntheticsLocations": "aws:eu-west-1",
        "apiTokenVariable": "SWIPESAVVY_API_TOKEN",
        "sloTargetPercent": 99.999,
        "apiLatencyP95Ms": {"warning": 0, "critical": 60000},
    }
    config = parse({**MONITORED, "monitoring": monitoring}).monitoring
    assert (config.enabled, config.notify, config.aws_integration, config.synthetics) == (
        True,
        "@slack-alerts @pagerduty-swipesavvy",
        True,
        False,
    )
    assert (config.synthetics_locations, config.api_token_variable) == (("aws:eu-west-1",), "SWIPESAVVY_API_TOKEN")
    assert config.slo_target_percent == 99.999
    assert config.thresholds["apiLatencyP95Ms"] == Threshold(0, 60000)
    assert parse({"monitoring": {"sloTargetPercent": 90}}).monitoring.slo_target_percent == 90


@pytest.mark.parametrize(
    ("monitoring", "message"),
    [  # the order refusals show the parsed number (5.0 for 5): what the threshold became
        (
            {"sloTargetPercent": 99.9991},
            "swipesavvy:monitoring.sloTargetPercent = 99.9991 is invalid: must be a number from 90 to 99.999 "
            + fix_line("monitoring.sloTargetPercent", 99.9),
        ),
        (
            {"sloTargetPercent": 89.99},
            "swipesavvy:monitoring.sloTargetPercent = 89.99 is invalid: must be a number from 90 to 99.999 "
            + fix_line("monitoring.sloTargetPercent", 99.9),
        ),
        (
            {"notify": "slack-alerts"},
            "swipesavvy:monitoring.notify = 'slack-alerts' is invalid: must be Datadog notification handles like"
            " @slack-swipesavvy-alerts, separated by spaces "
            + fix_line("monitoring.notify", "@slack-swipesavvy-alerts"),
        ),
        (
            {"syntheticsLocations": ["aws:us-east-1", "us-east-1"]},
            'swipesavvy:monitoring.syntheticsLocations = ["aws:us-east-1", "us-east-1"] is invalid: must be a list'
            " of Datadog managed locations like aws:us-east-1 "
            + fix_line("monitoring.syntheticsLocations[0]", "aws:us-east-1"),
        ),
        (
            {"apiTokenVariable": "api_token"},
            "swipesavvy:monitoring.apiTokenVariable = 'api_token' is invalid: must be the name of a Datadog Synthetics"
            " global variable (uppercase letters, digits, _) "
            + fix_line("monitoring.apiTokenVariable", "SWIPESAVVY_API_TOKEN"),
        ),
        (
            {"enabled": True, "synthetics": True},
            "swipesavvy:monitoring.synthetics = true is invalid: the synthetic tests call the site and its /api: they"
            " need the backend and frontend sections " + fix_line("monitoring.synthetics", "false"),
        ),
        (
            {"apiErrorRatePercent": {"warning": 2, "critical": 100.5}},
            "swipesavvy:monitoring.apiErrorRatePercent.critical = 100.5 is invalid: must be a number from 0 to 100 "
            + fix_line("monitoring.apiErrorRatePercent.critical", 5),
        ),
        (
            {"apiErrorRatePercent": {"warning": -1}},
            "swipesavvy:monitoring.apiErrorRatePercent.warning = -1 is invalid: must be a number from 0 to 100 "
            + fix_line("monitoring.apiErrorRatePercent.warning", 2),
        ),
        (
            {"apiErrorRatePercent": {"warning": 5, "critical": 5}},
            "swipesavvy:monitoring.apiErrorRatePercent.warning = 5.0 is invalid: must be a number from 0 to 100% below"
            " critical (5): the warning comes first " + fix_line("monitoring.apiErrorRatePercent.warning", 2),
        ),
        (
            {"dbFreeStoragePercent": {"warning": 10}},
            "swipesavvy:monitoring.dbFreeStoragePercent.warning = 10.0 is invalid: must be a number from 0 to 100% above"
            " critical (10): the warning comes first " + fix_line("monitoring.dbFreeStoragePercent.warning", 20),
        ),
        (
            {"apiLatencyP95Ms": {"warning": 700}},
            "swipesavvy:monitoring.apiLatencyP95Ms.warning = 700.0 is invalid: must be a number from 0 to 60000 ms below"
            " critical (500): the warning comes first " + fix_line("monitoring.apiLatencyP95Ms.warning", 300),
        ),
        (
            {"apiErrorRatePercent": {"warning": 1, "critcal": 3}},
            "swipesavvy:monitoring.apiErrorRatePercent.critcal is not a setting; monitoring.apiErrorRatePercent takes"
            " critical, warning (fix: pulumi config rm --path 'swipesavvy:monitoring.apiErrorRatePercent.critcal')",
        ),
    ],
)
def test_monitoring_refusals_in_whole(monitoring, message):
    assert config_error({"monitoring": monitoring}) == message


def test_production_monitoring_must_page_someone():
    assert config_error({"environment": "production", "monitoring": {"enabled": True}}) == (
        "swipesavvy:monitoring.notify = '' is invalid: must name who is paged in production (an alert nobody"
        " receives is silence) " + fix_line("monitoring.notify", "@pagerduty-swipesavvy")
    )
    assert parse({"environment": "production", "monitoring": {"enabled": False}}).monitoring.notify == ""
    assert parse({"monitoring": {"enabled": True}}).monitoring.enabled is True


@pytest.mark.parametrize(
    ("name", "warning", "critical"),
    [("dbFreeStoragePercent", 100, 0), ("apiErrorRatePercent", 0, 100), ("ingestionRecordsPerMinute", 10_000_000, 1)],
)
def test_thresholds_take_their_whole_range(name, warning, critical):
    config = parse({"monitoring": {name: {"warning": warning, "critical": critical}}}).monitoring
    assert config.thresholds[name] == Threshold(warning, critical)


def test_cost_defaults_and_limits():
    assert parse({}).cost == CostConfig()
    assert CostConfig().nat_gb_per_month == 50 and CostConfig().custom_metrics == 50
    cost = parse({"cost": {"lambdaAverageSeconds": 900, "natGbPerMonth": 0, "customMetrics": 2**53 - 1}}).cost
    assert (cost.lambda_average_seconds, cost.nat_gb_per_month, cost.custom_metrics) == (900, 0, 2**53 - 1)
    assert config_error({"cost": {"lambdaAverageSeconds": 900.5}}) == (
        "swipesavvy:cost.lambdaAverageSeconds = 900.5 is invalid: must be a number from 0 to 900 "
        + fix_line("cost.lambdaAverageSeconds", 5)
    )
    assert config_error({"cost": {"customMetrics": -1}}) == (
        "swipesavvy:cost.customMetrics = -1 is invalid: must be an integer from 0 to 9007199254740991 "
        + fix_line("cost.customMetrics", 50)
    )
    assert config_error({"cost": {"natGb": 1}}) == (
        "swipesavvy:cost.natGb is not a setting; cost takes accessLogGbPerMonth, cdnGbPerMonth, cdnRequestsPerMonth,"
        " customMetrics, endpointGbPerMonth, enhancedMonitoringKbPerSample, lambdaAverageSeconds,"
        " lambdaInvocationsPerMonth, loadBalancerCapacityUnits, logGbPerMonth, natGbPerMonth, s3GbPerBucket,"
        " s3GetRequestsPerBucket, s3PutRequestsPerBucket, secretApiCallsPerMonth, upgradeLogGbPerMonth"
        " (fix: pulumi config rm --path 'swipesavvy:cost.natGb')"
    )


def test_every_cost_setting_lands_in_its_field():
    settings = {key: index + 1 for index, key in enumerate([*COST_NUMBERS, *COST_INTEGERS])}
    cost = parse({"cost": settings}).cost
    for index, key in enumerate([*COST_NUMBERS, *COST_INTEGERS]):
        field_name = COST_NUMBERS[key][0] if key in COST_NUMBERS else COST_INTEGERS[key]
        assert getattr(cost, field_name) == index + 1, key
    assert len(settings) == 16


REVIEW = {"environment": "staging", "database": {"deletionProtection": False}}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"database": {}},
            "swipesavvy:database.deletionProtection is not allowed in review stack pr-7: a review stack is destroyed"
            " when its pull request closes (fix: pulumi config set --path 'swipesavvy:database.deletionProtection'"
            " false, or generate the file with python -m ops review-config)",
        ),
        (
            {"monitoring": {"enabled": True, "awsIntegration": True, "synthetics": False}},
            "swipesavvy:monitoring.awsIntegration is not allowed in review stack pr-7: Datadog's AWS integration is"
            " one per account, owned by one long-lived stack (fix: pulumi config set --path"
            " 'swipesavvy:monitoring.awsIntegration' false, or generate the file with python -m ops review-config)",
        ),
        (
            {"frontend": {**FRONTEND, "domain": "pr-7.example.com", "hostedZoneId": "Z0123456789ABC"}},
            "swipesavvy:frontend.domain is not allowed in review stack pr-7: a custom domain belongs to one stack; a"
            " review stack uses its CloudFront address (fix: pulumi config rm --path 'swipesavvy:frontend.domain'"
            " and 'swipesavvy:frontend.hostedZoneId', or generate the file with python -m ops review-config)",
        ),
    ],
)
def test_review_stack_refusals_in_whole(settings, message):
    with pytest.raises(ConfigError) as raised:
        parse_stack_config("pr-7", {**REVIEW, **settings})
    assert str(raised.value) == message


def test_a_review_stack_may_have_what_is_off_or_absent():
    settings = {**REVIEW, "monitoring": {"enabled": False, "awsIntegration": True}, "frontend": FRONTEND}
    assert parse_stack_config("pr-7", settings).is_review is True
    settings = {**REVIEW, "monitoring": {"enabled": True, "awsIntegration": False, "synthetics": False}}
    assert parse_stack_config("pr-7", settings).monitoring.enabled is True


def test_a_stack_file_with_an_error_without_a_position(tmp_path, monkeypatch):
    from components.config import read_stack_file

    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text("config:\n  swipesavvy:environment: staging\n")
    assert read_stack_file(path) == {"swipesavvy:environment": "staging"}

    def broken(_text):
        raise yaml.YAMLError("first line\nsecond line")

    monkeypatch.setattr(yaml, "safe_load", broken)
    with pytest.raises(ConfigError) as raised:
        read_stack_file(path)
    assert str(raised.value) == f"{path} is not valid YAML: first line (fix: correct that line)"


def test_a_release_archive_of_the_current_folder_is_no_dotfile(project):
    import io

    with tarfile.open(project / "release.tar.gz", "w:gz") as tar:  # what `tar -czf release.tar.gz .` holds
        tar.addfile(tarfile.TarInfo("."))
        info = tarfile.TarInfo("./server.js")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"//"))
    settings = section_settings("backend", artifact="release.tar.gz")
    assert parse_stack_config("staging", settings, project_root=project).backend.artifact == "release.tar.gz"


def test_an_uploaded_release_is_not_looked_for_on_disk(project):
    uri = f"s3://swipesavvy-releases/releases/{'a' * 64}.tar.gz"
    local = project / "s3:" / "swipesavvy-releases" / "releases" / f"{'a' * 64}.tar.gz"  # where Path(root, uri) points
    local.mkdir(parents=True)
    (local / ".env").write_text("DB_PASSWORD=hunter2")
    settings = section_settings("backend", artifact=uri)
    assert parse_stack_config("staging", settings, project_root=project).backend.artifact == uri


def test_a_dotfile_whose_path_holds_a_comma_is_named_whole_in_the_fix(project):
    (project / "release" / "old,config").mkdir()
    (project / "release" / "old,config" / ".env").write_text("DB_PASSWORD=hunter2")
    assert refusal(project, "backend", artifact="release") == (
        "swipesavvy:backend.artifact = 'release' is invalid: it holds old,config/.env, a dotfile (often a secret, so"
        " never shipped unless listed) (fix: remove it from release, or if it must ship: pulumi config set --path"
        " 'swipesavvy:backend.dotfiles[0]' old,config/.env)"
    )


@pytest.mark.parametrize("deployed", ["backend", "frontend"])
def test_synthetics_need_both_the_backend_and_the_frontend(deployed):
    settings = {"network": {"natGateway": True}, deployed: MONITORED[deployed]}
    assert parse(settings).monitoring.synthetics is False
    assert config_error({**settings, "monitoring": {"enabled": True, "synthetics": True}}).startswith(
        "swipesavvy:monitoring.synthetics = true is invalid: the synthetic tests call the site and its /api"
    )


def test_the_largest_allocation_with_room_to_grow_defaults_to_the_largest_ceiling():
    # 59578 GiB * 1.1 rounds up to 65536 exactly: the ceiling RDS accepts is still there
    assert database_config(allocatedStorage=59578).max_allocated_storage_gib == 65536
    assert database_config(allocatedStorage=59579).max_allocated_storage_gib == 0


@pytest.mark.parametrize("timezone", ["Etc/GMT+12", "Etc/GMT-14"])  # one of them is on another date than UTC
def test_the_anchor_dates_today_is_utcs_whatever_the_machines_timezone(monkeypatch, timezone):
    import time

    monkeypatch.setenv("TZ", timezone)
    time.tzset()
    try:
        today = utc_today()
        assert parse({"seed": {"anchorDate": today.isoformat()}}).seed.anchor_date == today
        tomorrow = (today + datetime.timedelta(days=1)).isoformat()
        assert config_error({"seed": {"anchorDate": tomorrow}}).startswith(
            f"swipesavvy:seed.anchorDate = '{tomorrow}' is invalid: must be a date YYYY-MM-DD from 1971-01-01 to"
            f" today ({today.isoformat()} UTC)"
        )
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("listed", ["./.env", "config/./.env", "config/../.env"])
def test_listed_dotfiles_are_refused_whole_when_not_plain_relative_paths(project, listed):
    assert refusal(project, "frontend", distDir="site", dotfiles=[listed]) == (
        f'swipesavvy:frontend.dotfiles = ["{listed}"] is invalid: must be a list of paths relative to the folder,'
        " like .well-known " + fix_line("frontend.dotfiles[0]", ".env")
    )
