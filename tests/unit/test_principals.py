"""Principals: API keys are stored as hashes, authenticate to the right roles, and a bad file
stops start-up naming the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lib.config_errors import ConfigError
from shared.lib.principals import Principal, PrincipalDirectory, hash_api_key

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "hitl" / "principals.yml"


@pytest.fixture(scope="module")
def directory() -> PrincipalDirectory:
    return PrincipalDirectory.load(SHIPPED)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "principals.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_hash_api_key_is_hex_sha256() -> None:
    assert hash_api_key("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize(
    ("key", "name", "roles"),
    [
        ("demo-operator-key", "alice", {"operator"}),
        ("demo-approver-key", "bob", {"approver"}),
        ("demo-ops-lead-key", "carol", {"ops-lead", "approver"}),
        ("demo-admin-key", "dave", {"admin", "ops-lead", "approver"}),
        ("demo-approver2-key", "erin", {"approver"}),
    ],
)
def test_demo_keys_authenticate_to_their_principal(
    directory: PrincipalDirectory, key: str, name: str, roles: set[str]
) -> None:
    assert directory.authenticate(key) == Principal(name=name, roles=frozenset(roles))


@pytest.mark.parametrize("key", ["", "demo-admin-key ", "DEMO-ADMIN-KEY", "wrong"])
def test_wrong_key_authenticates_nobody(directory: PrincipalDirectory, key: str) -> None:
    assert directory.authenticate(key) is None


def test_shipped_file_holds_no_plaintext_key() -> None:
    entries = [
        line for line in SHIPPED.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    assert not [line for line in entries if "demo-" in line and "-key" in line]


def test_has_any_checks_role_overlap() -> None:
    carol = Principal(name="carol", roles=frozenset({"ops-lead", "approver"}))
    assert carol.has_any({"admin", "ops-lead"})
    assert not carol.has_any({"admin"})
    assert not carol.has_any([])


def test_loads_a_custom_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"version: 1\nprincipals:\n  zoe:\n    roles: [admin]\n"
        f"    api_key_sha256: {hash_api_key('zoe-secret')}\n",
    )
    directory = PrincipalDirectory.load(path)
    assert directory.authenticate("zoe-secret") == Principal(name="zoe", roles=frozenset({"admin"}))
    assert [principal.name for principal in directory.principals] == ["zoe"]


@pytest.mark.parametrize(
    ("entry", "line", "field"),
    [
        (
            f"    roles: [approver, root]\n    api_key_sha256: {hash_api_key('k')}\n",
            5,
            "principals.bob.roles[1]",
        ),
        ("    roles: [approver]\n    api_key_sha256: plaintext-key\n", 6, None),
        (f"    roles: []\n    api_key_sha256: {hash_api_key('k')}\n", 5, "principals.bob.roles"),
        (
            f"    roles: [approver]\n    api_key_sha256: {hash_api_key('k')}\n    team: x\n",
            7,
            "principals.bob.team",
        ),
    ],
)
def test_bad_entry_names_file_line_and_field(
    tmp_path: Path, entry: str, line: int, field: str | None
) -> None:
    path = write(tmp_path, f"# principals\nversion: 1\nprincipals:\n  bob:\n{entry}")
    with pytest.raises(ConfigError) as caught:
        PrincipalDirectory.load(path)
    assert caught.value.path == path
    assert caught.value.line == line
    assert caught.value.field == (field or "principals.bob.api_key_sha256")
    assert str(path) in str(caught.value)


def test_shared_key_is_refused(tmp_path: Path) -> None:
    digest = hash_api_key("same")
    path = write(
        tmp_path,
        "version: 1\nprincipals:\n"
        f"  bob:\n    roles: [approver]\n    api_key_sha256: {digest}\n"
        f"  erin:\n    roles: [approver]\n    api_key_sha256: {digest}\n",
    )
    with pytest.raises(ConfigError, match="share one API key") as caught:
        PrincipalDirectory.load(path)
    assert (caught.value.line, caught.value.field) == (8, "principals.erin.api_key_sha256")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the principals file"):
        PrincipalDirectory.load(tmp_path / "absent.yml")


def test_a_file_not_in_utf8_names_the_file_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "principals.yml"
    path.write_bytes("version: 1\nprincipals:\n  rené:\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        PrincipalDirectory.load(path)
    assert str(caught.value) == (
        f"{path}:3: the principals file is not UTF-8: byte 0xe9 at offset 28; "
        "fix: save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    )
