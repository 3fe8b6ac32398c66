"""Reads config/catalog.yml into a validated Catalog, or stops start-up saying what to fix."""

from __future__ import annotations

from pathlib import Path

from shared.lib.catalog.models import Catalog
from shared.lib.config_errors import read_yaml

CATALOG_FILE = "catalog.yml"


def load_catalog(*, config_dir: Path, path: Path | None = None) -> Catalog:
    """The catalog from `path` (relative to `config_dir`), by default `catalog.yml` there."""
    file = config_dir / (path or CATALOG_FILE)
    document = read_yaml(file, what="operation catalog")
    return document.validate(Catalog, context="config/catalog.yml")
