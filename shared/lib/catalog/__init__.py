"""The operation catalog: the only operations the agent may plan and run."""

from shared.lib.catalog.loader import CATALOG_FILE, load_catalog
from shared.lib.catalog.models import (
    Catalog,
    InvalidParamsError,
    OperationSpec,
    ParameterSpec,
    UnknownOperationError,
)
from shared.lib.risk.models import RiskTier

__all__ = [
    "CATALOG_FILE",
    "Catalog",
    "InvalidParamsError",
    "OperationSpec",
    "ParameterSpec",
    "RiskTier",
    "UnknownOperationError",
    "load_catalog",
]
