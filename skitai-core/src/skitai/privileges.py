"""Dropping root privileges once the master has bound its ports and read its certificates.

Root is needed for ports below 1024 and for keys only root may read, and for nothing else: a
server that keeps it turns any bug in an app into a root compromise. So the master drops it
before it serves or forks, and the workers are never root.
"""
from __future__ import annotations

import os
import pwd
import sys


class PrivilegeError(RuntimeError):
    """The user to drop to does not exist, or the drop did not take."""


def target_user(fallback_user: str | None) -> str | None:
    """Whom a root process should become: the user who ran sudo, else `--fallback-user`."""
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user and sudo_user != "root":
        return sudo_user
    return fallback_user


def drop_privileges(fallback_user: str | None) -> str | None:
    """When running as root, become `target_user(fallback_user)`; returns the name dropped to.

    Without a user to become, the process stays root and says so on stderr: refusing to start
    would break containers that legitimately run as root.
    """
    if os.geteuid() != 0:
        return None
    name = target_user(fallback_user)
    if name is None:
        print("skitai: WARNING: running as root; start it with sudo or give --fallback-user USER "
              "to drop root privileges after binding", file=sys.stderr, flush=True)
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise PrivilegeError(f"cannot drop root privileges to {name!r}: no such user") from None
    become(entry)
    library = os.path.dirname(os.__file__)
    if not os.access(library, os.R_OK | os.X_OK):
        print(f"skitai: WARNING: {name} cannot read the Python library in {library}: modules imported "
              f"from now on will fail; install Python where {name} can read it", file=sys.stderr, flush=True)
    return name


def become(entry: pwd.struct_passwd) -> None:
    """Groups first, then the user: once the uid is gone the process may no longer change its
    groups, so any other order would leave root's groups behind."""
    os.initgroups(entry.pw_name, entry.pw_gid)
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if entry.pw_uid != 0 and _regains_root():
        raise PrivilegeError(f"dropped root privileges to {entry.pw_name!r} but could take them back")
    os.environ.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)


def _regains_root() -> bool:
    try:
        os.setuid(0)
    except PermissionError:
        return False
    return True
