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


def test_a_regions_bundle_is_its_three_certificates_alone():
    bundle = region_bundle("us-east-1")
    assert bundle.count("-----BEGIN CERTIFICATE-----") == 3 and "#" not in bundle
    subjects = [
        openssl(f"-----BEGIN CERTIFICATE-----{block}", "-subject")["subject"]
        for block in bundle.split("-----BEGIN CERTIFICATE-----")[1:]
    ]
    assert [next(line for line in s.split("\n") if line.startswith("CN=")) for s in subjects] == [
        f"CN=Amazon RDS us-east-1 Root CA {kind} G1" for kind in ("ECC384", "RSA2048", "RSA4096")
    ]


def test_a_region_without_cas_is_one_line():
    with pytest.raises(RdsCaError) as raised:
        region_bundle("xx-nowhere-1")
    assert str(raised.value) == (
        "rds-ca-bundle.pem has no RDS CA certificates for xx-nowhere-1 (it has none): renew it as certs/README.md says"
    )
