"""The tracker client a configuration names."""

from __future__ import annotations

from shared.lib.trackers.config import GitHubTracker, JiraTracker, LinearTracker, TrackerConfig
from shared.lib.trackers.github import GitHubIssues
from shared.lib.trackers.jira import JiraIssues
from shared.lib.trackers.linear import LinearIssues
from shared.lib.trackers.protocol import IssueTracker


def build_tracker(config: TrackerConfig) -> IssueTracker | None:
    spec, timeout_s = config.tracker, config.delivery.timeout_s
    if isinstance(spec, GitHubTracker):
        return GitHubIssues(spec, token=config.token, timeout_s=timeout_s)
    if isinstance(spec, LinearTracker):
        return LinearIssues(spec, token=config.token, timeout_s=timeout_s)
    if isinstance(spec, JiraTracker):
        return JiraIssues(spec, token=config.token, timeout_s=timeout_s)
    return None
