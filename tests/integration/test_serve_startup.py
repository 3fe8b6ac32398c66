"""`serve` and `db init` as an on-call engineer meets them: a bad setting, config file, migration
or database URL ends at once in one line naming it and the fix, exit 2, never a traceback; a
start-up that fails later exits 3 with any number of workers, never 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from shared.lib.db.pool import mask_password
from tests.helpers import CONFIG_DIR
from tests.testbed.postgres import PostgresServer, with_database
from tests.testbed.service import free_port

# Well under psycopg_pool's 30 s wait: a bad URL must be reported promptly, not after it.
PROMPT_S = 20
# Two workers each importing the app and failing their migrations, then the supervisor's stop.
WORKERS_FAIL_S = 90


def run(
    tmp_path: Path, *argv: str, timeout_s: float = PROMPT_S, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m agent_orchestrator ARGV` from an empty folder (no .env), with only `env`
    of the AGENT_ and DATABASE_ settings."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "DATABASE_URL"))
    }
    inherited.pop("MIGRATION_DATABASE_URL", None)
    defaults = {"AGENT_DATA_DIR": str(tmp_path / "data"), "AGENT_PORT": str(free_port())}
    return subprocess.run(
        [sys.executable, "-m", "agent_orchestrator", *argv],
        env=inherited | defaults | env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single line on stderr of a command that exited 2; nothing else printed."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def config_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, copy)
    return copy


@pytest.mark.parametrize("command", [["serve"], ["serve", "--workers", "2"], ["db", "init"]])
def test_a_port_nobody_listens_on_is_named_at_once_with_the_password_masked(
    tmp_path: Path, command: list[str]
) -> None:
    port = free_port()
    url = f"postgresql://agent:s3cret-pw@127.0.0.1:{port}/agent"
    line = one_line(run(tmp_path, *command, DATABASE_URL=url))
    assert line == (
        f"DATABASE_URL: cannot connect to postgresql://agent:***@127.0.0.1:{port}/agent: "
        f'connection to server at "127.0.0.1", port {port} failed: Connection refused Is the '
        "server running on that host and accepting TCP/IP connections?; check that Postgres "
        "runs at the host and port in DATABASE_URL and is reachable from here (firewall, DNS, "
        "TLS)"
    )


@pytest.mark.parametrize("command", [["serve", "--workers", "2"], ["db", "init"]])
def test_a_database_that_does_not_exist_is_named_with_the_fix(
    tmp_path: Path, postgres_server: PostgresServer, command: list[str]
) -> None:
    name = f"missing_{uuid.uuid4().hex[:8]}"
    url = with_database(postgres_server.admin_url, name)
    line = one_line(run(tmp_path, *command, DATABASE_URL=url))
    assert line.startswith(f"DATABASE_URL: cannot connect to {mask_password(url)}: ")
    assert line.endswith(
        f'database "{name}" does not exist; create that database, or correct the name at the '
        "end of DATABASE_URL"
    )


def test_the_schema_owners_url_is_named_when_it_is_the_bad_one(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    owner = f"postgresql://owner:pw-of-owner@127.0.0.1:{port}/agent"
    line = one_line(run(tmp_path, "serve", DATABASE_URL=database_url, MIGRATION_DATABASE_URL=owner))
    assert line.startswith(
        f"MIGRATION_DATABASE_URL: cannot connect to postgresql://owner:***@127.0.0.1:{port}/agent"
    )
    assert line.endswith("reachable from here (firewall, DNS, TLS)")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_config_folder_without_its_migrations_does_not_start(
    tmp_path: Path, database_url: str, workers: str
) -> None:
    """Mounting one's own config/ without state/ used to start on no schema, 'ready'."""
    config = config_copy(tmp_path)
    shutil.rmtree(config / "state")
    done = run(tmp_path, "serve", DATABASE_URL=database_url, AGENT_CONFIG_DIR=str(config))
    assert one_line(done) == (
        f"{config / 'state'}: the migrations folder is missing; AGENT_CONFIG_DIR must hold "
        "state/ with this release's numbered SQL files: copy config/state/ of the release into "
        "it, or mount only the config files you change (docs/deploy.md)"
    )


@pytest.mark.parametrize(
    ("rename", "problem"),
    [
        (
            "0016_inbox_sessions.sql",
            "expected migration 0016, found 0017_inbox_sessions.sql; versions must run 0001, "
            "0002, ... without gaps",
        ),
        (
            "0016-inbox-sessions.sql",
            "migration files are named NNNN_lower_snake.sql; rename it or move it out of the "
            "folder",
        ),
    ],
)
def test_a_gap_or_a_badly_named_migration_is_one_line_naming_it(
    tmp_path: Path, database_url: str, rename: str, problem: str
) -> None:
    config = config_copy(tmp_path)
    target = "0017_inbox_sessions.sql" if rename.startswith("0016_") else rename
    (config / "state" / rename.replace("-", "_")).rename(config / "state" / target)
    done = run(
        tmp_path, "serve", "--workers", "2", DATABASE_URL=database_url, AGENT_CONFIG_DIR=str(config)
    )
    where = config / "state" if target.startswith("0017") else config / "state" / target
    assert one_line(done) == f"{where}: {problem}"


def test_an_edited_migration_is_one_line_from_serve_and_db_init(
    tmp_path: Path, database_url: str
) -> None:
    initialized = run(tmp_path, "db", "init", timeout_s=60, DATABASE_URL=database_url)
    assert initialized.returncode == 0, initialized.stderr[-3000:]
    config = config_copy(tmp_path)
    view = config / "state" / "0003_approval_views.sql"
    view.write_text(view.read_text() + "\n-- tidied up\n")
    expected = (
        "migration 0003_approval_views.sql was edited after it was applied; restore it and add "
        "a new numbered migration instead"
    )
    for command in (["serve", "--workers", "2"], ["db", "init"]):
        done = run(tmp_path, *command, DATABASE_URL=database_url, AGENT_CONFIG_DIR=str(config))
        assert one_line(done) == expected, command


def test_a_config_file_not_in_utf8_is_one_line_naming_it(tmp_path: Path) -> None:
    principals = tmp_path / "principals.yml"
    shipped = (CONFIG_DIR / "hitl" / "principals.yml").read_text(encoding="utf-8")
    principals.write_bytes((shipped + "# owner: René\n").encode("latin-1"))
    offset = len(shipped.encode("utf-8")) + len("# owner: Ren")
    line_number = shipped.count("\n") + 1
    done = run(tmp_path, "serve", AGENT_PRINCIPALS_FILE=str(principals))
    assert one_line(done) == (
        f"{principals}:{line_number}: the principals file is not UTF-8: byte 0xe9 at offset "
        f"{offset}; fix: save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_workers_that_fail_to_start_exit_3_as_one_worker_does(
    tmp_path: Path, database_url: str, workers: str
) -> None:
    """A migration that fails as it is applied passes the parent's checks and fails in each
    worker: uvicorn stops them all, and `serve` must not exit 0 (restart-on-failure)."""
    config = config_copy(tmp_path)
    (config / "state" / "0017_broken.sql").write_text("SELEC 1;\n")
    done = run(
        tmp_path,
        "serve",
        "--workers",
        workers,
        timeout_s=WORKERS_FAIL_S,
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=str(config),
    )
    assert done.returncode == 3, done.stderr[-3000:]
    assert "migration 0017_broken.sql failed and was not applied" in done.stderr
    if workers == "2":
        last = done.stderr.splitlines()[-1]
        assert last.startswith("serve: worker process ")
        assert last.endswith(
            "failed to start (its error is logged above); every worker stopped, exit 3"
        )
