"""A fleet of real OpenSSH daemons on loopback ports, standing in for a fleet of hosts.

Every key, config and log lives under one state directory; host keys are verified by the
clients through a generated known_hosts file, never switched off.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 15.0
START_ATTEMPTS = 3


class SshdUnavailable(RuntimeError):
    """sshd cannot be installed or started on this machine."""


@dataclass(frozen=True)
class SshHost:
    """How a client reaches one instance of the fleet."""

    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_key_pub: str


@dataclass
class _Instance:
    port: int
    config: Path
    log: Path
    pid_file: Path
    host_key: Path
    process: subprocess.Popen[bytes]


class SshdFleet:
    """`count` sshd processes sharing one client key and one known_hosts file."""

    def __init__(
        self,
        *,
        base_dir: Path,
        client_key: Path,
        known_hosts: Path,
        instances: list[_Instance],
    ) -> None:
        self.base_dir = base_dir
        self.client_key = client_key
        self.known_hosts = known_hosts
        self._instances = instances

    @classmethod
    def start(cls, count: int, base_dir: Path, *, extra_path: Sequence[Path] = ()) -> SshdFleet:
        """Generate keys and configs under base_dir and start `count` daemons.

        `extra_path` directories are put in front of PATH for remote commands (test stubs).
        """
        if count < 1:
            raise ValueError(f"an sshd fleet needs at least one instance, got count={count}")
        ensure_sshd_installed()
        base_dir.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation dir
        client_key = base_dir / "client_key"
        _fresh_keypair(client_key)
        authorized_keys = base_dir / "authorized_keys"
        authorized_keys.write_text(_public_key(client_key) + "\n")
        instances: list[_Instance] = []
        try:
            for index in range(count):
                instances.append(
                    _start_instance(
                        base_dir / f"host{index}",
                        authorized_keys=authorized_keys,
                        extra_path=extra_path,
                    )
                )
        except BaseException:
            _stop_instances(instances)
            raise
        known_hosts = base_dir / "known_hosts"
        known_hosts.write_text(
            "".join(f"[{LOOPBACK}]:{i.port} {_public_key(i.host_key)}\n" for i in instances)
        )
        return cls(
            base_dir=base_dir, client_key=client_key, known_hosts=known_hosts, instances=instances
        )

    @property
    def hosts(self) -> list[SshHost]:
        user = getpass.getuser()
        return [
            SshHost(
                host=LOOPBACK,
                port=i.port,
                user=user,
                client_key=self.client_key,
                known_hosts=self.known_hosts,
                host_key_pub=_public_key(i.host_key),
            )
            for i in self._instances
        ]

    @property
    def pids(self) -> list[int]:
        return [i.process.pid for i in self._instances]

    def log_of(self, port: int) -> str:
        """The daemon log of the instance on `port` (for assertion messages)."""
        for instance in self._instances:
            if instance.port == port:
                return instance.log.read_text(errors="replace")
        raise KeyError(
            f"no sshd instance on port {port} (ports: {[i.port for i in self._instances]})"
        )

    def stop(self) -> None:
        """Stop every daemon and its per-connection children, by PID."""
        _stop_instances(self._instances)
        self._instances = []

    def __enter__(self) -> SshdFleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def stop_leftovers(base_dir: Path) -> None:
    """Stop daemons a crashed run left under base_dir, found by their PidFile and config."""
    for pid_file in base_dir.glob("*/sshd.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        # sshd rewrites its title ("sshd: /usr/sbin/sshd -D -f CONFIG ..."): match a substring.
        if str(pid_file.with_name("sshd_config")).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def write_wrong_known_hosts(path: Path, *, port: int, host: str = LOOPBACK) -> Path:
    """Write a known_hosts whose only entry for host:port is a freshly made, wrong key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    impostor = path.parent / f"{path.name}.impostor_key"
    _fresh_keypair(impostor)
    path.write_text(f"[{host}]:{port} {_public_key(impostor)}\n")
    return path


def free_loopback_port() -> int:
    """A port nothing listens on right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_sshd_installed() -> None:
    """Install openssh-server when missing and we are root on Debian; else raise."""
    if SSHD.exists() and shutil.which("ssh-keygen"):
        return
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists() or not shutil.which("apt-get"):
        raise SshdUnavailable(f"{SSHD} is missing and openssh-server cannot be installed here")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "openssh-server"],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SshdUnavailable(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    if not SSHD.exists():
        raise SshdUnavailable(f"openssh-server installed but {SSHD} is still missing")


def _start_instance(state: Path, *, authorized_keys: Path, extra_path: Sequence[Path]) -> _Instance:
    state.mkdir(parents=True, exist_ok=True)
    host_key = state / "ssh_host_ed25519_key"
    _fresh_keypair(host_key)
    failures: list[str] = []
    for _ in range(START_ATTEMPTS):  # a freed port can be taken before sshd binds it
        port = free_loopback_port()
        config = state / "sshd_config"
        log = state / "sshd.log"
        pid_file = state / "sshd.pid"
        log.unlink(missing_ok=True)
        config.write_text(
            _sshd_config(
                port=port,
                host_key=host_key,
                authorized_keys=authorized_keys,
                pid_file=pid_file,
                extra_path=extra_path,
            )
        )
        process = subprocess.Popen(
            [str(SSHD), "-D", "-f", str(config), "-E", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        instance = _Instance(
            port=port, config=config, log=log, pid_file=pid_file, host_key=host_key, process=process
        )
        problem = _wait_ready(instance)
        if problem is None:
            return instance
        _stop_instances([instance])
        failures.append(problem)
    raise SshdUnavailable(f"sshd in {state} did not start: {'; '.join(failures)}")


def _sshd_config(
    *,
    port: int,
    host_key: Path,
    authorized_keys: Path,
    pid_file: Path,
    extra_path: Sequence[Path],
) -> str:
    lines = [
        f"Port {port}",
        f"ListenAddress {LOOPBACK}",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized_keys}",
        f"PidFile {pid_file}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UsePAM no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "LogLevel VERBOSE",
        # Benchmarks open many channels per connection and many connections at once.
        "MaxSessions 100",
        "MaxStartups 200",
    ]
    # bash sources ~/.bashrc for commands run by sshd when it is a top-level shell; on a
    # developer's or CI's machine that rc file is heavy (pyenv init: ~200 ms per command).
    # SHLVL=1 makes the remote bash a nested shell, so a command costs what it costs on a server.
    setenv = ["SHLVL=1"]
    if extra_path:
        standard = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        setenv.append(f"PATH={':'.join(str(p) for p in extra_path)}:{standard}")
    lines.append(f"SetEnv {' '.join(setenv)}")
    return "\n".join(lines) + "\n"


def _wait_ready(instance: _Instance) -> str | None:
    """None once the port answers with an SSH banner; else why it never did."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            stderr = (
                instance.process.stderr.read().decode(errors="replace")
                if instance.process.stderr
                else ""
            )
            log = instance.log.read_text(errors="replace") if instance.log.exists() else ""
            output = (stderr + log).strip()[-500:]
            return f"exited with {instance.process.returncode} on port {instance.port}: {output}"
        if _banner(instance.port).startswith("SSH-"):
            return None
        time.sleep(0.05)
    return f"port {instance.port} gave no SSH banner within {READY_TIMEOUT_S:.0f} s"


def _banner(port: int) -> str:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as sock:
            return sock.recv(64).decode(errors="replace")
    except OSError:
        return ""


def _stop_instances(instances: Sequence[_Instance]) -> None:
    for instance in instances:
        # Per-connection daemons first, while the listener is alive to reap them; they would
        # otherwise outlive it as orphans.
        children = _children_of(instance.process.pid)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
            Path(f"/proc/{pid}").exists() for pid in children
        ):
            time.sleep(0.02)
        if instance.process.poll() is None:
            instance.process.terminate()
        try:
            instance.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait(timeout=5)
        if instance.process.stderr:
            instance.process.stderr.close()
        instance.pid_file.unlink(missing_ok=True)


def _children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # fields[0] is the state, fields[1] the parent PID
            children.append(int(stat.parent.name))
    return children


def _fresh_keypair(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".pub").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _public_key(private_key: Path) -> str:
    """`type base64` of the key's .pub file, without the comment."""
    algorithm, blob = private_key.with_name(private_key.name + ".pub").read_text().split()[:2]
    return f"{algorithm} {blob}"
