"""Secrets on the command line: refused, with the way to give them instead.

``ps`` shows every process's command line to every local user, so no command takes a token as an
option value: each names a file (``--admin-token-file``, ``--enroll-token-file``) or reads the
environment, by the one rule of ``dipn.serving.config.token_from``. The options that used to take
the token itself stay known to the parser only to refuse it with that reason (instead of
argparse's "unrecognized arguments", which would not say where the token goes).
"""

from __future__ import annotations

import argparse
from typing import Any

SECRET_ON_ARGV = ("{option} would put the token on the command line, where ps shows it to every local user; "
                  "set {env} or give a file with {option}-file")


def env_of(option: str) -> str:
    """``--admin-token`` -> ``DIPN_ADMIN_TOKEN``: the variable that holds what the option would."""
    return "DIPN_" + option.lstrip("-").upper().replace("-", "_")


class _Refused(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:  # fmt: skip
        option = option_string or self.dest
        parser.error(SECRET_ON_ARGV.format(option=option, env=env_of(option)))


def refuse_on_argv(parser: argparse.ArgumentParser, *options: str) -> None:
    """Make ``options`` (``--admin-token``, ...) refuse any value with a one-line error naming the
    environment variable and the ``-file`` option to use; hidden from ``--help``."""
    for option in options:
        parser.add_argument(option, action=_Refused, help=argparse.SUPPRESS)
