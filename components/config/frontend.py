"""``swipesavvy:frontend``: the site, its domain and its CloudFront distribution."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config.project_files import _dotfiles, _project_path, _refuse_unshippable
from components.config.section import _fail, _Section

PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_HOSTED_ZONE = re.compile(r"^Z[A-Z0-9]{5,31}$")
# CloudFront policy ids are UUIDs (the managed ones: 658327ea-f89d-4fab-a63d-7e88639e58f6).
_CLOUDFRONT_POLICY_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


@dataclass(frozen=True)
class FrontendConfig:
    """The reporting dashboard (runbook phase 4): a static build on S3 behind CloudFront."""

    dist_dir: str  # the build folder, relative to the project root; must hold index.html
    dotfiles: tuple[str, ...] = ()  # dotfiles (or folders) the site may serve: see _shipped_problem
    domain: str | None = None  # e.g. staging.swipesavvy.example: ACM certificate + alias records
    hosted_zone_id: str | None = None  # the Route 53 zone of ``domain``
    price_class: str = "PriceClass_100"
    waf: bool = False  # an AWS WAF web ACL on the distribution; on by default, and required, in production
    # Another stack's response-headers policy (review stacks: staging's), instead of one of its
    # own: response-headers policies are an account-wide CloudFront quota.
    existing_response_headers_policy_id: str | None = None


def parse_frontend(
    raw: Any,
    project_root: Path,
    environment: str = "staging",  # pragma: no mutate (only "production" differs; any other name acts alike)
) -> FrontendConfig | None:
    if raw is None:
        return None
    s = _Section("frontend", raw)
    d = FrontendConfig(dist_dir="")  # pragma: no mutate (d supplies defaults only; distDir is required)
    dist_dir = _project_path(
        s, "distDir", project_root, "must be the site's build folder under the project root", "examples/frontend-dist"
    )
    if not (project_root / dist_dir / "index.html").is_file():
        raise _fail(s.path("distDir"), dist_dir, "must be a build folder holding index.html", "examples/frontend-dist")
    dotfiles = _dotfiles(s)
    _refuse_unshippable(s, "distDir", dist_dir, project_root, dotfiles)
    domain = s.text(
        "domain", None, _DOMAIN, "must be a DNS name like staging.swipesavvy.example", "staging.example.com"
    )
    zone = s.text(
        "hostedZoneId", None, _HOSTED_ZONE, "must be a Route 53 hosted zone id like Z0123456789ABC", "Z0123456789ABC"
    )
    if bool(domain) != bool(zone):
        missing, example = ("hostedZoneId", "Z0123456789ABC") if domain else ("domain", "staging.example.com")
        raise _fail(
            s.path(missing), None, "domain and hostedZoneId are set together (a custom domain needs its zone)", example
        )
    config = FrontendConfig(
        dist_dir=dist_dir,
        dotfiles=dotfiles,
        domain=domain,
        hosted_zone_id=zone,
        price_class=s.choice("priceClass", d.price_class, PRICE_CLASSES),
        waf=s.boolean("waf", environment == "production"),
        existing_response_headers_policy_id=s.text(
            "existingResponseHeadersPolicyId",
            None,
            _CLOUDFRONT_POLICY_ID,
            "must be a CloudFront response-headers policy id (a lowercase UUID, staging's"
            " site_response_headers_policy_id output)",
            "67f7725c-6f97-4210-82d7-5512b31e9d03",
        ),
    )
    if not config.waf and environment == "production":
        raise _fail(
            s.path("waf"), False, "production's distribution always has its web ACL (AWS FSBP CloudFront.6)", "true"
        )
    s.finish()
    return config
