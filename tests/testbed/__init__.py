"""The test bed: real Postgres, Docker Engine and sshd started (and stopped) for the suite."""
