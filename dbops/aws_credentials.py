"""Missing, partial or expired AWS credentials as one line saying how to provide them.

boto3 reports them as ``Unable to locate credentials``, a class name, or an error code from
the service; every place that calls AWS (the operator commands, the dynamic providers) turns
them into this line instead. No Pulumi.
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    LoginError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    RefreshWithMFAUnsupportedError,
    SSOError,
    TokenRetrievalError,
)

HOW_TO_PROVIDE = (
    "`aws configure` for access keys, or `aws sso login --profile NAME` and AWS_PROFILE=NAME for SSO; "
    "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
)
# What AWS answers a request signed with an expired, revoked or unknown credential.
REJECTED_CREDENTIAL_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException", "RequestExpired"}
)


def credentials_problem(error: BaseException) -> str | None:
    """The line for ``error`` when it is about the caller's AWS credentials, else None."""
    if isinstance(error, NoCredentialsError):
        what = "no AWS credentials found"
    elif isinstance(error, PartialCredentialsError):
        what = f"incomplete AWS credentials in {error.kwargs['provider']} (missing {error.kwargs['cred_var']})"
    elif isinstance(error, ProfileNotFound):
        what = f"AWS profile {error.kwargs['profile']} does not exist"
    elif isinstance(error, (SSOError, TokenRetrievalError, LoginError)):
        what = "the AWS SSO session has expired or is invalid"
    elif isinstance(error, (CredentialRetrievalError, RefreshWithMFAUnsupportedError)):
        what = f"AWS credentials could not be obtained ({error})"
    elif isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in REJECTED_CREDENTIAL_CODES:
        what = f"AWS refused the credentials: {error.response['Error']['Code']} (expired or unknown)"
    else:
        return None
    return f"{what} (fix: {HOW_TO_PROVIDE})"
