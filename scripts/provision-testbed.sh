#!/usr/bin/env bash
# Install the system packages the test bed runs (Docker Engine, busybox, sshd, Prometheus,
# Alertmanager; debootstrap and docker-compose for the deploy tests; Chromium for the inbox's
# browser tests, which Playwright drives through executable_path, never `playwright install`)
# when they are missing and we may (root with apt). Starting them is the tests' job.
set -euo pipefail

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --help 2>&1 | grep -q static || missing+=(busybox-static)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
[ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v docker-compose >/dev/null || missing+=(docker-compose)
[ -x /usr/bin/chromium ] || missing+=(chromium)

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
    echo "testbed: missing ${missing[*]}; install them (sudo apt-get install ${missing[*]})" >&2
    echo "testbed: tests that need them skip locally and fail when CI=true" >&2
    exit 0
fi
echo "testbed: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
