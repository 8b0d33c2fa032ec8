"""RDS's certificate authorities, shipped with the program instead of fetched at boot.

``certs/rds-ca-bundle.pem`` holds the root certificate of each RDS CA (rds-ca-rsa2048-g1,
rds-ca-rsa4096-g1, rds-ca-ecc384-g1: RDS user guide, "Using SSL/TLS to encrypt a connection
to a DB instance", Certificate authorities) for every commercial region, each after a
``# <subject>`` line; certs/README.md says where it comes from and how to renew it. The
database names its CA (``SERVER_CA``: RDS's default differs by region and over time). The
operator function ships the whole file; an instance gets its region's root of that CA alone
(user data holds at most 16 KB; to move to another CA, ship both first). Plain Python, no
Pulumi.
"""

from __future__ import annotations

import re
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent.parent / "certs" / "rds-ca-bundle.pem"
# Where an instance keeps its region's bundle (the backend's DB_SSLROOTCERT and the agent's
# postgres check): under /etc, root's and world-readable, which the service's sandbox reads.
INSTANCE_BUNDLE = "/etc/swipesavvy/rds-ca-bundle.pem"
SUBJECT = re.compile(r"Amazon RDS (?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d) Root CA (?P<kind>RSA2048|RSA4096|ECC384) G1")
# The CA identifiers RDS documents, and the key kind in their root certificates' subjects.
CAS = {"rds-ca-ecc384-g1": "ECC384", "rds-ca-rsa2048-g1": "RSA2048", "rds-ca-rsa4096-g1": "RSA4096"}
KINDS = tuple(CAS.values())
SERVER_CA = "rds-ca-rsa2048-g1"  # the database's (aws.rds.Instance ca_cert_identifier)
_LABELLED = re.compile(
    r"^# (?P<subject>.+)\n(?P<pem>-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n)", re.M
)


class RdsCaError(ValueError):
    """One line naming the region or the file, and the fix."""


def labelled_certificates(text: str) -> list[tuple[str, str]]:
    """``(subject line, PEM block)`` of every certificate in the bundle, in its order."""
    return [(m["subject"], m["pem"]) for m in _LABELLED.finditer(text)]


def region_bundle(region: str, cas: tuple[str, ...] = (SERVER_CA,), bundle: Path = BUNDLE) -> str:
    """The PEM blocks of ``region``'s roots of ``cas``: what RDS signs that region's servers with."""
    blocks = {}
    for subject, pem in labelled_certificates(bundle.read_text(encoding="ascii")):
        match = SUBJECT.fullmatch(subject)
        if match and match["region"] == region:
            blocks[match["kind"]] = pem
    missing = [ca for ca in cas if CAS[ca] not in blocks]
    if missing:
        raise RdsCaError(
            f"{bundle.name} has no root of {', '.join(missing)} for {region}: renew it as certs/README.md says"
        )
    return "".join(blocks[CAS[ca]] for ca in cas)
