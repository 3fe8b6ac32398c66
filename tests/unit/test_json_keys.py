"""A JSON key given twice, found wherever it is nested; anything else is left to the route."""

from __future__ import annotations

from agent_orchestrator.system.json_keys import MAX_PROBLEMS, repeated_keys, unreadable


def locations(body: bytes) -> list[tuple[str | int, ...]]:
    return [tuple(problem["loc"]) for problem in repeated_keys(body)]


def test_a_key_given_twice_is_named_with_its_path_and_values() -> None:
    [problem] = repeated_keys(b'{"plan": {"steps": []}, "reason": "ok", "plan": null}')
    assert problem["loc"] == ("body", "plan")
    assert problem["type"] == "duplicate_key"
    assert problem["input"] == [{"steps": []}, None]
    assert "given 2 times" in problem["msg"]


def test_nested_objects_and_arrays_are_searched_an_object_before_its_members() -> None:
    body = (
        b'{"steps": [{"operation": "logs"}, {"params": {"tail": 1, "tail": 2}, "target": "a",'
        b' "target": "b"}], "x": [[{"k": 1, "k": 1}]]}'
    )
    assert locations(body) == [
        ("body", "steps", 1, "target"),
        ("body", "steps", 1, "params", "tail"),
        ("body", "x", 0, 0, "k"),
    ]
    assert locations(b'[{"a": 1}, {"a": 1, "a": 2}]') == [("body", 1, "a")]


def test_bodies_without_a_repeated_key_or_not_json_pass() -> None:
    for body in (
        b'{"request": "restart web on dev", "steps": [{"a": 1}, {"a": 1}]}',
        b"reason=a&reason=b",  # a form: not JSON, the route reads it as it always has
        b'{"plan": ',  # broken JSON: the route's own 422
        b'{"a": "\xff", "a": 1}',  # not UTF-8: likewise
        b"[" * 100_000 + b"]" * 100_000,  # past the parser's nesting limit: likewise
    ):
        assert repeated_keys(body) == [], body[:40]


def test_deep_nesting_within_the_parsers_limit_is_walked_without_recursion() -> None:
    depth = 900
    body = b'{"a": ' * depth + b'{"k": 1, "k": 2}' + b"}" * depth
    assert locations(body) == [("body", *["a"] * depth, "k")]


def test_the_answer_is_bounded() -> None:
    body = "[" + ", ".join('{"k": 1, "k": 2}' for _ in range(1000)) + "]"
    assert len(repeated_keys(body.encode())) == MAX_PROBLEMS


def test_a_body_the_parser_would_answer_with_a_bare_400_is_named() -> None:
    not_utf8 = unreadable(b'{"request": "restart \xe9 web"}')
    assert not_utf8 is not None and "byte 0xe9 at offset 21" in not_utf8["msg"]
    too_deep = unreadable(b"[" * 100_000 + b"]" * 100_000)
    assert too_deep is not None and "deeper than the JSON parser reads" in too_deep["msg"]
    assert unreadable(b"[" * 600 + b"]" * 600) is None  # deep, but within the parser's limit
    assert unreadable(b'{"plan": ') is None  # broken syntax: the route's own 422 says where
