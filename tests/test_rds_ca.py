"""The shipped RDS CA bundle (certs/rds-ca-bundle.pem, components/rds_ca.py): what every
certificate in it is, read with ``openssl``, against what AWS documents (RDS user guide,
"Using SSL/TLS to encrypt a connection to a DB instance", Certificate authorities:
rds-ca-rsa2048-g1, rds-ca-rsa4096-g1, rds-ca-ecc384-g1, per region)."""

from __future__ import annotations

import datetime
import subprocess

import pytest

from components.rds_ca import BUNDLE, KINDS, SUBJECT, RdsCaError, labelled_certificates, region_bundle

# The regions the RDS trust store served G1 CAs for when the bundle was taken (certs/README.md).
REGIONS = [
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ca-central-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "me-central-1",
    "me-south-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
]
# The shortest-lived of them, rds-ca-rsa2048-g1, is valid for 40 years from 2021.
VALID_UNTIL_AT_LEAST = datetime.datetime(2061, 1, 1, tzinfo=datetime.UTC)


def openssl(pem: str, *fields: str) -> dict[str, str]:
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-nameopt", "sep_multiline,utf8", *fields],
        input=pem,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    read, key = {}, None
    for line in out.splitlines():
        if not line.startswith(" "):
            key, _, value = line.partition("=")
            read[key] = value
        else:
            read[key] += "\n" + line.strip()
    return read


@pytest.fixture(scope="module")
def certificates() -> list[tuple[str, str]]:
    return labelled_certificates(BUNDLE.read_text(encoding="ascii"))


def test_every_certificate_is_the_rds_root_ca_its_line_names(certificates):
    assert len(certificates) == len(REGIONS) * len(KINDS) == BUNDLE.read_text().count("-----BEGIN CERTIFICATE-----")
    for label, pem in certificates:
        assert SUBJECT.fullmatch(label), label
        read = openssl(pem, "-subject", "-issuer", "-enddate")
        subject = read["subject"].split("\n")
        assert f"CN={label}" in subject and "O=Amazon Web Services, Inc." in subject, label
        assert read["issuer"] == read["subject"], label  # a root: nothing else to trust
        expires = datetime.datetime.strptime(read["notAfter"], "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.UTC)
        assert expires >= VALID_UNTIL_AT_LEAST, label


def test_every_region_has_its_three_cas(certificates):
    found = {(m["region"], m["kind"]) for m in (SUBJECT.fullmatch(label) for label, _ in certificates)}
    assert found == {(region, kind) for region in REGIONS for kind in KINDS}


def test_an_instance_gets_its_regions_root_of_the_databases_ca_alone():
    """The database names rds-ca-rsa2048-g1 (components/data/database.py): in us-east-1 its
    root is "Amazon RDS us-east-1 Root CA RSA2048 G1"."""
    bundle = region_bundle("us-east-1")
    assert bundle.count("-----BEGIN CERTIFICATE-----") == 1 and "#" not in bundle
    assert "CN=Amazon RDS us-east-1 Root CA RSA2048 G1" in openssl(bundle, "-subject")["subject"].split("\n")
    both = region_bundle("eu-west-1", ("rds-ca-rsa2048-g1", "rds-ca-ecc384-g1"))
    assert both.count("-----BEGIN CERTIFICATE-----") == 2  # a CA move ships the old and the new


def test_a_region_without_the_ca_is_one_line():
    with pytest.raises(RdsCaError) as raised:
        region_bundle("xx-nowhere-1")
    assert str(raised.value) == (
        "rds-ca-bundle.pem has no root of rds-ca-rsa2048-g1 for xx-nowhere-1: renew it as certs/README.md says"
    )


def test_libpq_verifies_the_server_with_the_bundle_pgsslrootcert_names(rds_like_server, monkeypatch):
    """The operator function sets PGSSLROOTCERT to the bundle in its archive and connects with
    sslmode verify-full (components/data/operator.py): libpq then trusts RDS's CAs alone, so a
    server whose certificate they did not sign (this one's is self-signed) is refused, which
    ``require`` without a CA file accepts."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    dsn = conninfo_to_dict(rds_like_server.master_dsn("postgres"))
    monkeypatch.setenv("PGSSLROOTCERT", str(BUNDLE.with_name("absent.pem")))  # require: no CA file, no check
    with psycopg.connect(make_conninfo(**dsn), connect_timeout=10) as connection:
        assert connection.info.parameter_status("server_version")
    monkeypatch.setenv("PGSSLROOTCERT", str(BUNDLE))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(make_conninfo(**{**dsn, "sslmode": "verify-full"}), connect_timeout=10)
