"""The tracker client a configuration names."""

from __future__ import annotations

from shared.lib.trackers.config import GitHubTracker, JiraTracker, LinearTracker, TrackerConfig
from shared.lib.trackers.protocol import IssueTracker

# Each client is imported only when configured: PyGithub and jira add about 0.3 s to start-up.


def build_tracker(config: TrackerConfig) -> IssueTracker | None:
    spec, timeout_s = config.tracker, config.delivery.timeout_s
    if isinstance(spec, GitHubTracker):
        from shared.lib.trackers.github import GitHubIssues

        return GitHubIssues(spec, token=config.token, timeout_s=timeout_s)
    if isinstance(spec, LinearTracker):
        from shared.lib.trackers.linear import LinearIssues

        return LinearIssues(spec, token=config.token, timeout_s=timeout_s)
    if isinstance(spec, JiraTracker):
        from shared.lib.trackers.jira import JiraIssues

        return JiraIssues(spec, token=config.token, timeout_s=timeout_s)
    return None
