"""One machine written two ways: a short host name and its fully qualified one name the same
host, so the agent's own host is recognised whichever way a label or a config writes it."""

from __future__ import annotations

import pytest

from shared.lib.targets.addresses import names_host

OWN = frozenset({"agent-host-1", "ops-box.corp.example"})


@pytest.mark.parametrize(
    ("host", "named"),
    [
        ("agent-host-1", True),
        ("agent-host-1.example.com", True),  # the FQDN of a short name
        ("ops-box", True),  # the short name of an FQDN
        ("ops-box.corp.example", True),
        ("ops-box.other.example", False),  # another domain is another machine
        ("agent-host-10", False),
        ("web.example.com", False),
        ("10.0.0.1", False),
    ],
)
def test_a_short_and_a_full_name_of_one_host_match(host: str, named: bool) -> None:
    assert names_host(host, OWN) is named


def test_addresses_and_loopback_names_match_only_whole() -> None:
    assert names_host("10.0.0.1", frozenset({"10.0.0.1"}))
    assert not names_host("10.0.0.2", frozenset({"10"}))
    assert not names_host("localhost.localdomain", frozenset({"localhost"}))
