"""Target resolution: logical service names to concrete Docker and SSH targets, from config."""

from shared.lib.targets.models import (
    AmbiguousTargetError,
    EnvironmentsFile,
    SelfIdentity,
    UnknownEnvironmentError,
    UnknownTargetError,
)
from shared.lib.targets.resolver import (
    ENVIRONMENTS_FILE,
    ConcreteTarget,
    TargetResolver,
    load_targets,
)

__all__ = [
    "ENVIRONMENTS_FILE",
    "AmbiguousTargetError",
    "ConcreteTarget",
    "EnvironmentsFile",
    "SelfIdentity",
    "TargetResolver",
    "UnknownEnvironmentError",
    "UnknownTargetError",
    "load_targets",
]
