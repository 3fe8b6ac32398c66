"""What a lease records of a plan's operations on a target, and when another request's
operations merge into the owner's instead of waiting for it."""

from __future__ import annotations

import pytest

from shared.lib.workflows.leases import covers, operation_key, operations_text


def test_the_text_is_sorted_and_marks_what_runs_only_on_a_condition() -> None:
    assert operations_text([("restart", False)]) == "restart"
    assert operations_text([("restart", True)]) == "restart?"
    assert operations_text([("stop", False), ("restart", True)]) == "restart?,stop"
    # Run once on a condition and once without: it runs for sure.
    assert operations_text([("restart", True), ("restart", False)]) == "restart"


@pytest.mark.parametrize(
    ("held", "wanted", "merged"),
    [
        ("restart", "restart", True),  # the same request twice
        ("restart?", "restart?", True),  # the same alert's recovery twice
        ("restart", "restart?", True),  # an alert's recovery, the operator's restart already asked
        ("restart?", "restart", False),  # an explicit restart must not ride on a skippable one
        ("restart", "stop", False),
        ("restart", "restart,stop", False),
        ("restart,stop?", "restart?,stop?", True),
        ("restart,stop?", "restart,stop", False),
    ],
)
def test_an_owner_covers_a_request_only_if_it_runs_at_least_as_surely(
    held: str, wanted: str, merged: bool
) -> None:
    assert covers(held, wanted) is merged


def test_parameters_are_part_of_the_operation_a_lease_compares() -> None:
    assert operation_key("restart", {}) == "restart"  # leases taken before keep their meaning
    first = operation_key("run_command", {"argv": ["rm", "-rf", "/tmp/a"], "timeout_s": 5})
    reordered = operation_key("run_command", {"timeout_s": 5, "argv": ["rm", "-rf", "/tmp/a"]})
    other = operation_key("run_command", {"argv": ["rm", "-rf", "/tmp/b"], "timeout_s": 5})
    assert first == reordered and first != other and first.startswith("run_command#")
    assert covers(operations_text([(first, False)]), operations_text([(reordered, False)]))
    assert not covers(operations_text([(first, False)]), operations_text([(other, False)]))
