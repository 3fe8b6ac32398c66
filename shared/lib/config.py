"""The agent's declarative configuration, loaded and validated once, and who the agent is."""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass, field

from psycopg.conninfo import conninfo_to_dict

from shared.lib.alerts.strategies import RecoveryStrategies, load_recovery_strategies
from shared.lib.approvals.policy import ApprovalPolicy
from shared.lib.catalog.loader import load_catalog
from shared.lib.catalog.models import Catalog
from shared.lib.commands.policy import CommandPolicy, load_command_policy
from shared.lib.notifications.config import load_notifications
from shared.lib.notifications.models import NotificationsConfig
from shared.lib.planning.vocabulary import Vocabulary, load_vocabulary
from shared.lib.principals import PrincipalDirectory
from shared.lib.risk.policy import RiskPolicy
from shared.lib.settings import Settings
from shared.lib.targets.models import SelfIdentity
from shared.lib.targets.resolver import TargetResolver, load_targets
from shared.lib.trackers.config import TrackerConfig, load_trackers


@dataclass(frozen=True)
class AgentConfig:
    """Every declarative file, validated; a bad one stops start-up naming file, line, field."""

    catalog: Catalog
    targets: TargetResolver
    commands: CommandPolicy
    risk: RiskPolicy
    approvals: ApprovalPolicy
    principals: PrincipalDirectory
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    recovery: RecoveryStrategies = field(default_factory=RecoveryStrategies)
    identity: SelfIdentity = field(default_factory=SelfIdentity)
    vocabulary: Vocabulary | None = None
    trackers: TrackerConfig = field(default_factory=TrackerConfig)

    def for_database(self, database_url: str) -> AgentConfig:
        """The same config once the database is known (an embedded one gets its port at start):
        that database joins what the agent protects as itself."""
        identity = self.identity.model_copy(
            update={"database_endpoints": database_endpoints(database_url)}
        )
        return dataclasses.replace(
            self, identity=identity, targets=self.targets.with_identity(identity)
        )


def self_identity(settings: Settings, database_url: str | None) -> SelfIdentity:
    containers = {name.strip() for name in settings.self_containers.split(",") if name.strip()}
    if os.path.exists("/.dockerenv"):
        containers.add(socket.gethostname())  # inside a container, the hostname is its id
    hosts = {name.strip() for name in settings.self_hosts.split(",") if name.strip()}
    hosts |= {socket.gethostname(), socket.getfqdn()}
    return SelfIdentity(
        container_names=frozenset(containers),
        hostnames=frozenset(hosts),
        database_endpoints=database_endpoints(database_url),
    )


def database_endpoints(database_url: str | None) -> frozenset[str]:
    """Where the database answers, as `host:port` per host the URL lists; a Unix socket (the
    embedded server) as `socket-directory:port`. Parsed as libpq does, `?host=` included."""
    if not database_url:
        return frozenset()
    params = conninfo_to_dict(database_url)
    hosts = str(params.get("host") or "").split(",")
    ports = str(params.get("port") or "").split(",")
    endpoints = set()
    for index, host in enumerate(hosts):
        if not host:
            continue  # libpq's compiled-in default socket: nothing an alert could name
        port = ports[index] if len(ports) == len(hosts) else ports[0]
        shown = f"[{host}]" if ":" in host else host
        endpoints.add(f"{shown}:{port or 5432}")
    return frozenset(endpoints)


def load_agent_config(settings: Settings, *, database_url: str | None = None) -> AgentConfig:
    config_dir = settings.config_dir
    catalog = load_catalog(config_dir=config_dir)
    identity = self_identity(settings, database_url or settings.database_url)
    return AgentConfig(
        catalog=catalog,
        targets=load_targets(
            config_dir=config_dir, path=settings.environments_file, identity=identity
        ),
        commands=load_command_policy(config_dir=config_dir),
        risk=RiskPolicy.load(config_dir / "hitl" / "risk_policy.yml", catalog=catalog),
        approvals=ApprovalPolicy.load(config_dir / "hitl" / "approval_policy.yml"),
        principals=PrincipalDirectory.load(settings.principals_path),
        notifications=load_notifications(
            settings.notifications_path, required=settings.notifications_file is not None
        ),
        recovery=load_recovery_strategies(config_dir=config_dir, catalog=catalog),
        identity=identity,
        vocabulary=load_vocabulary(config_dir=config_dir, catalog=catalog),
        trackers=load_trackers(settings.trackers_path, required=settings.trackers_file is not None),
    )
