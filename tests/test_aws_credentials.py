"""Missing, partial or expired AWS credentials: one line saying how to provide them, from every
command and provider that calls AWS (Secrets Manager, the operator function, CloudFront)."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    UnauthorizedSSOTokenError,
)
from test_ops_stack_cli import OPERATOR_ARN, STACK, one_line_error, pulumi, run  # noqa: F401  (pulumi: a fixture)

from components import invalidation, retired_assets
from dbops.aws_credentials import HOW_TO_PROVIDE, credentials_problem
from dbops.db_credentials import CredentialsUnavailable, read_password
from ops.cli import EXIT_UNAVAILABLE

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0123-AbCdEf"
FIX = (
    "(fix: `aws configure` for access keys, or `aws sso login --profile NAME` and AWS_PROFILE=NAME for SSO; "
    "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment)"
)


def _client_error(code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "The security token included in the request is expired"}}, "Op"
    )


@pytest.mark.parametrize(
    ("error", "what"),
    [
        (NoCredentialsError(), "no AWS credentials found"),
        (PartialCredentialsError(provider="env", cred_var="aws_secret_access_key"), "incomplete AWS credentials in env (missing aws_secret_access_key)"),
        (ProfileNotFound(profile="nope"), "AWS profile nope does not exist"),
        (UnauthorizedSSOTokenError(), "the AWS SSO session has expired or is invalid"),
        (_client_error("ExpiredTokenException"), "AWS refused the credentials: ExpiredTokenException (expired or unknown)"),
        (_client_error("ExpiredToken"), "AWS refused the credentials: ExpiredToken (expired or unknown)"),
        (_client_error("UnrecognizedClientException"), "AWS refused the credentials: UnrecognizedClientException (expired or unknown)"),
    ],
)  # fmt: skip
def test_each_credential_problem_is_one_line_with_the_way_to_fix_it(error, what):
    assert HOW_TO_PROVIDE in FIX
    assert credentials_problem(error) == f"{what} {FIX}"


def test_other_errors_are_not_credential_problems():
    assert credentials_problem(_client_error("ResourceNotFoundException")) is None
    assert credentials_problem(ValueError("x")) is None


def test_reading_a_secret_without_credentials(no_credentials):
    with pytest.raises(CredentialsUnavailable) as raised:
        read_password(SECRET_ARN)
    assert str(raised.value) == f"cannot read secret {SECRET_ARN}: no AWS credentials found {FIX}"


def test_reading_a_secret_with_a_profile_that_does_not_exist(no_credentials):
    no_credentials.setenv("AWS_PROFILE", "nope")
    with pytest.raises(CredentialsUnavailable) as raised:
        read_password(SECRET_ARN)
    assert str(raised.value) == f"cannot read secret {SECRET_ARN}: AWS profile nope does not exist {FIX}"


def test_reading_a_secret_with_partial_credentials(no_credentials):
    no_credentials.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    with pytest.raises(CredentialsUnavailable) as raised:
        read_password(SECRET_ARN)
    assert str(raised.value) == (
        f"cannot read secret {SECRET_ARN}: incomplete AWS credentials in env (missing AWS_SECRET_ACCESS_KEY) {FIX}"
    )


CONNECTION = {"host": "db.invalid", "port": 5432, "dbname": "swipesavvy_staging", "user": "postgres",
              "sslmode": "require", "password_secret_arn": SECRET_ARN}  # fmt: skip


@pytest.mark.parametrize("operator_arn", [None, OPERATOR_ARN])
def test_stack_commands_without_credentials_say_how_to_provide_them(
    capsys,
    pulumi,  # noqa: F811
    no_credentials,
    operator_arn,
):
    outputs = {"db_connection": CONNECTION} | ({"db_operator_arn": operator_arn} if operator_arn else {})
    pulumi.set_outputs(outputs)
    code, _, err = run(capsys, "db", "migrate", "--stack", STACK)
    assert code == EXIT_UNAVAILABLE
    target = f"secret {SECRET_ARN}" if operator_arn is None else f"operator {OPERATOR_ARN}"
    verb = "read" if operator_arn is None else "invoke"
    assert one_line_error(err) == f"error: cannot {verb} {target}: no AWS credentials found {FIX}"


def test_the_cloudfront_invalidation_without_credentials(no_credentials):
    props = {"distribution_id": "E123", "release": "r" * 64, "paths": ["/*"]}
    with pytest.raises(invalidation.InvalidationFailed) as raised:
        invalidation.CloudFrontInvalidationProvider().create(props)
    assert str(raised.value) == f"cannot invalidate CloudFront distribution E123: no AWS credentials found {FIX}"


def test_deleting_retired_site_files_without_credentials(no_credentials):
    olds = {"bucket": "swipesavvy-site", "region": "us-east-1", "assets": [], "keep_days": 7}
    olds["retired"] = {"assets/app.1a2b3c4d.js": "2026-11-01T00:00:00+00:00"}  # long expired
    with pytest.raises(retired_assets.AssetDeleteFailed) as raised:
        retired_assets.RetiredSiteAssetsProvider().update("swipesavvy-site", olds, {**olds, "retired": None})
    assert str(raised.value) == f"cannot delete retired site files from swipesavvy-site: no AWS credentials found {FIX}"


def test_refreshing_prices_without_credentials(capsys, no_credentials):
    from ops.cost_cli import price_table_path

    before = price_table_path("us-east-1").read_text()
    code, _, err = run(capsys, "cost", "--refresh-prices", "--region", "us-east-1")
    assert code == EXIT_UNAVAILABLE
    assert one_line_error(err) == f"error: cannot read the AWS Price List API: no AWS credentials found {FIX}"
    assert price_table_path("us-east-1").read_text() == before
