"""The command policy: decides whether an argv for run_command/exec may run at all, from the
deny rules, shell restrictions and per-environment allow lists in config/hitl."""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.lib.config_errors import read_yaml

COMMAND_POLICY_FILE = Path("hitl") / "command_policy.yml"

# Placeholders that deny patterns use; see the header of config/hitl/command_policy.yml.
_WRAPPER_WORDS = r"(?:sudo|doas|nohup|nice|env|exec|command|time|timeout\s+(?:-\S+\s+)*\S+)"
_PLACEHOLDERS = {
    "{cmd}": (
        r"(?:^|[;&|(`'\"]\s*|\s-[a-zA-Z]*c\s+|\s-exec(?:dir)?\s+|\sxargs\s+(?:-\S+\s+)*)"
        rf"(?:{_WRAPPER_WORDS}\s+(?:-\S+\s+)*)*(?:[\w.~-]*/)*"
    ),
    "{root}": (
        r"['\"]?(?:~/?|/+(?:\*|(?:bin|boot|dev|etc|home|lib|lib32|lib64|opt|proc|root|run"
        r"|sbin|srv|sys|usr|var)/*\*?)?)['\"]?(?=[\s;&|)'\"]|$)"
    ),
}


def expand_pattern(pattern: str) -> str:
    """The regex with {cmd} and {root} replaced; other braces are left to the regex."""
    for placeholder, regex in _PLACEHOLDERS.items():
        pattern = pattern.replace(placeholder, regex)
    return pattern


class CommandVerdict(BaseModel):
    """Whether a command may run; `rule_id` names the rule that refused it."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    rule_id: str | None = None
    reason: str


class DenyRule(BaseModel):
    """Refuses a command when its program matches `argv0` and/or any of its `patterns`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    reason: str = Field(min_length=1)
    patterns: tuple[str, ...] = ()
    argv0: tuple[str, ...] = ()
    _compiled: tuple[re.Pattern[str], ...] = PrivateAttr(default=())

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        for index, pattern in enumerate(patterns):
            try:
                re.compile(expand_pattern(pattern))
            except re.error as exc:
                rule = info.data.get("id", "?")
                raise ValueError(
                    f"rule '{rule}': pattern {index} {pattern!r} is not a valid regex ({exc})"
                ) from None
        return patterns

    @model_validator(mode="after")
    def _matches_something(self) -> Self:
        if not self.patterns and not self.argv0:
            raise ValueError(f"rule '{self.id}' needs `patterns` or `argv0`")
        self._compiled = tuple(re.compile(expand_pattern(p)) for p in self.patterns)
        return self

    def matches(self, *, program: str, texts: tuple[str, ...]) -> bool:
        if self.argv0 and program not in self.argv0:
            return False
        if not self._compiled:
            return True
        return any(regex.search(text) for regex in self._compiled for text in texts)


class Interpreter(BaseModel):
    """Programs (glob names) that run code given inline after one of `inline_flags`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    names: tuple[str, ...] = Field(min_length=1)
    inline_flags: tuple[str, ...] = Field(min_length=1)

    def runs_inline_code(self, program: str, args: list[str]) -> bool:
        if not any(fnmatch.fnmatchcase(program, name) for name in self.names):
            return False
        # Any later argument counts: options may take values (`python -W ignore -c ...`), and
        # refusing an odd script argument is cheaper than missing inline code.
        return any(self._is_inline_flag(arg) for arg in args)

    def _is_inline_flag(self, arg: str) -> bool:
        if arg in self.inline_flags:
            return True
        # Short flags combine (`bash -lc`, `perl -wle`), so look inside single-dash clusters.
        letters = {flag[1] for flag in self.inline_flags if re.fullmatch(r"-[a-zA-Z]", flag)}
        return bool(re.fullmatch(r"-[a-zA-Z]+", arg)) and any(c in letters for c in arg[1:])


class Wrapper(BaseModel):
    """A program that runs another one (sudo, env, timeout...): skipped to find the real one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value_options: tuple[str, ...] = ()
    positionals: int = Field(default=0, ge=0)
    assignments: bool = False


class ShellRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metacharacters: tuple[str, ...] = Field(min_length=1)
    interpreters: tuple[Interpreter, ...] = ()
    wrappers: dict[str, Wrapper] = Field(default_factory=dict)


class EnvironmentCommands(BaseModel):
    """An environment's allow list: argv prefixes (exact words or globs) that may run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: tuple[tuple[str, ...], ...] | None = None

    def permits(self, argv: list[str]) -> bool:
        return self.allow is None or any(_has_prefix(argv, prefix) for prefix in self.allow)


class CommandPolicy(BaseModel):
    """Deny rules, shell restrictions and allow lists, validated once at start-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    max_length: int = Field(default=8192, ge=64)
    shell: ShellRules
    deny: tuple[DenyRule, ...] = ()
    environments: dict[str, EnvironmentCommands] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for rule in self.deny:
            if rule.id in seen:
                raise ValueError(f"deny rule id '{rule.id}' is used twice; ids must be unique")
            seen.add(rule.id)
        return self

    def evaluate(
        self, argv: list[str], *, environment: str | None, allows_shell: bool = False
    ) -> CommandVerdict:
        """The verdict on `argv`; the first refusal wins, in the order the file describes."""
        malformed = self._malformed(argv)
        if malformed:
            return malformed
        program, effective = self._unwrap(argv)
        texts = (" ".join([program, *effective[1:]]), " ".join(argv), shlex.join(argv))
        for rule in self.deny:
            if rule.matches(program=program, texts=texts):
                return _refused(rule.id, rule.reason)
        if not allows_shell:
            refusal = self._shell_refusal(argv)
            if refusal:
                return refusal
        return self._allow_list_verdict(argv, environment)

    def _malformed(self, argv: list[str]) -> CommandVerdict | None:
        if not argv or not argv[0].strip():
            return _refused("empty-command", "the command is empty; give the program first")
        if any("\x00" in arg for arg in argv):
            return _refused("nul-byte", "an argument contains a NUL byte")
        if sum(len(arg) + 1 for arg in argv) > self.max_length:
            return _refused(
                "command-too-long", f"the command is longer than {self.max_length} characters"
            )
        return None

    def _shell_refusal(self, argv: list[str]) -> CommandVerdict | None:
        # Every position is checked, so `find -exec sh -c` and `xargs bash -c` are caught too.
        for index, arg in enumerate(argv):
            program = PurePosixPath(arg).name
            for interpreter in self.shell.interpreters:
                if interpreter.runs_inline_code(program, argv[index + 1 :]):
                    return _refused(
                        "shell-interpreter",
                        f"'{program}' with inline code is a shell; this operation does not "
                        "allow one. Run the program directly as an argv",
                    )
        for arg in argv:
            found = [m for m in self.shell.metacharacters if m in arg]
            if found:
                return _refused(
                    "shell-metacharacters",
                    f"argument {arg!r} contains shell syntax {found[0]!r}; commands run without "
                    "a shell, so pass plain arguments (no pipes, redirects or chaining)",
                )
        return None

    def _allow_list_verdict(self, argv: list[str], environment: str | None) -> CommandVerdict:
        rules = self.environments.get(environment or "")
        if rules is None or rules.allow is None:
            return CommandVerdict(allowed=True, reason="no rule refuses it")
        if rules.permits(argv):
            return CommandVerdict(allowed=True, reason=f"allowed in {environment}")
        prefixes = "; ".join(" ".join(prefix) for prefix in rules.allow)
        return _refused(
            "environment-allow-list",
            f"{environment} only allows commands starting with: {prefixes}",
        )

    def _unwrap(self, argv: list[str]) -> tuple[str, list[str]]:
        """The real program's base name and argv, past sudo/env/timeout and friends."""
        rest = list(argv)
        while rest:
            wrapper = self.shell.wrappers.get(PurePosixPath(rest[0]).name)
            if wrapper is None or len(rest) == 1:
                break
            rest = _skip_wrapper(rest[1:], wrapper)
        if not rest:
            return PurePosixPath(argv[0]).name, list(argv)
        return PurePosixPath(rest[0]).name, rest


def _skip_wrapper(args: list[str], wrapper: Wrapper) -> list[str]:
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in wrapper.value_options:
            index += 2
        elif arg.startswith("-") or (wrapper.assignments and re.match(r"^\w+=", arg)):
            index += 1
        else:
            break
    return args[index + wrapper.positionals :]


def _has_prefix(argv: list[str], prefix: tuple[str, ...]) -> bool:
    if len(argv) < len(prefix):
        return False
    return all(_word_matches(arg, word) for arg, word in zip(argv, prefix, strict=False))


def _word_matches(arg: str, word: str) -> bool:
    if not any(ch in word for ch in "*?["):
        return arg == word
    # A glob such as /proc/* must not let `..` climb out of the directory it names.
    return ".." not in PurePosixPath(arg).parts and fnmatch.fnmatchcase(arg, word)


def _refused(rule_id: str, reason: str) -> CommandVerdict:
    return CommandVerdict(allowed=False, rule_id=rule_id, reason=reason)


def load_command_policy(*, config_dir: Path, path: Path | None = None) -> CommandPolicy:
    """The policy from `path` (relative to `config_dir`), by default hitl/command_policy.yml."""
    file = config_dir / (path or COMMAND_POLICY_FILE)
    document = read_yaml(file, what="command policy")
    return document.validate(CommandPolicy, context="config/hitl/command_policy.yml")
