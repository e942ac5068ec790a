"""``iva users``: manage the people who may sign in, in the user store of the settings.

    iva users add USERNAME [--role agent|supervisor] [--password-stdin]
    iva users list
    iva users passwd USERNAME [--password-stdin]
    iva users disable USERNAME
    iva users enable USERNAME

The store is ``users_database_path`` or ``<data_dir>/users.sqlite3`` (``IVA_DATA_DIR``), the file
a running server reads on every request, so changes apply at once: a new password or a disabled
user ends that user's sessions. Exit codes: 0 done, 1 refused (unknown or duplicate user, weak
password), 2 bad configuration.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from review.users import MIN_PASSWORD_LENGTH, ROLES, UserStore, UserStoreError

__all__ = ["add_users_commands", "users_database_file"]


class _Refused(Exception):
    """The command cannot do what was asked; the message says why."""


def add_users_commands(subparsers: Any) -> None:
    """Add ``users`` and its subcommands to the ``iva`` parser's subparsers."""
    users = subparsers.add_parser(
        "users", help="manage who may sign in to the agent desk and review pages",
        description="Add, list, disable people and change their passwords, in the user store "
        "of IVA_DATA_DIR (users.sqlite3). A running server sees changes at once.")
    sub = users.add_subparsers(dest="users_command", required=True, metavar="USERS_COMMAND")

    add = sub.add_parser("add", help="add a person who may sign in",
                         description="Add a user; the password is asked twice, or read from one "
                         f"line of standard input with --password-stdin ({MIN_PASSWORD_LENGTH}+"
                         " characters). Usernames are unique whatever their case.")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, default="agent",
                     help="agent: the desk and their own calls; supervisor: everything "
                     "(default agent)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input instead of asking")
    add.set_defaults(func=_add)

    listing = sub.add_parser("list", help="list users, their roles and whether they are disabled")
    listing.set_defaults(func=_list)

    passwd = sub.add_parser("passwd", help="set a user's password (ends their sessions)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input instead of asking")
    passwd.set_defaults(func=_passwd)

    disable = sub.add_parser("disable", help="stop a user from signing in (ends their sessions)")
    disable.add_argument("username")
    disable.set_defaults(func=_disable)

    enable = sub.add_parser("enable", help="let a disabled user sign in again")
    enable.add_argument("username")
    enable.set_defaults(func=_enable)


def users_database_file(settings: Any) -> Path:
    """Where the settings keep users: ``users_database_path`` or ``<data_dir>/users.sqlite3``."""
    configured = getattr(settings, "users_database_path", None)
    return Path(configured) if configured else Path(settings.data_dir) / "users.sqlite3"


def _add(args: argparse.Namespace) -> int:
    def act(store: UserStore) -> str:
        password = _new_password(args.password_stdin)
        user = store.add(args.username, password, args.role)
        return f"user {user.username} added ({user.role})"
    return _run("add", act)


def _list(args: argparse.Namespace) -> int:
    def act(store: UserStore) -> str:
        users = store.list()
        if not users:
            return "no users yet (the server creates the first supervisor when it starts)"
        width = max(8, *(len(u.username) for u in users))
        lines = [f"{'USERNAME':<{width}}  {'ROLE':<10}  {'CREATED':<25}  STATE"]
        lines += [f"{u.username:<{width}}  {u.role:<10}  {u.created_at:<25}  "
                  f"{'disabled' if u.disabled else 'active'}" for u in users]
        return "\n".join(lines)
    return _run("list", act)


def _passwd(args: argparse.Namespace) -> int:
    def act(store: UserStore) -> str:
        if store.get(args.username) is None:
            raise _Refused(f"no user {args.username!r}")
        store.set_password(args.username, _new_password(args.password_stdin))
        return f"password of {args.username} changed; their sessions have ended"
    return _run("passwd", act)


def _disable(args: argparse.Namespace) -> int:
    def act(store: UserStore) -> str:
        store.disable(args.username)
        return f"user {args.username} disabled"
    return _run("disable", act)


def _enable(args: argparse.Namespace) -> int:
    def act(store: UserStore) -> str:
        store.enable(args.username)
        return f"user {args.username} enabled"
    return _run("enable", act)


def _run(command: str, act: Callable[[UserStore], str]) -> int:
    """Open the store of the settings, do ``act`` and report; the exit code."""
    from pydantic import ValidationError

    from voice.settings import load_settings

    try:
        path = users_database_file(load_settings())
        store = UserStore(path)
    except (ValidationError, FileNotFoundError, UserStoreError, OSError) as exc:
        sys.stderr.write(f"iva users {command}: bad configuration:\n{exc}\n")
        return 2
    try:
        with store:
            message = act(store)
    except (_Refused, UserStoreError) as exc:
        sys.stderr.write(f"iva users {command}: {exc}\n")
        return 1
    sys.stdout.write(message + "\n")
    return 0


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise _Refused("no password on standard input")
        return password
    try:
        password = getpass.getpass("New password: ")
        again = getpass.getpass("Repeat it: ")
    except (EOFError, KeyboardInterrupt):
        raise _Refused("no password given; nothing changed") from None
    if again != password:
        raise _Refused("the two passwords differ; nothing changed")
    return password
