"""StrictModes for input files: refuse a rule file that someone else could have written.

tradectl trades whatever its rule files say, so a rule file is as sensitive as an ssh
``authorized_keys`` file, and is checked the way sshd's StrictModes checks that one. A file, and
every directory from it up to the rules root, must be:

* owned by the user tradectl runs as, by root, or by a member of the operators group;
* not writable by others;
* not writable by its group, unless that group is the operators group
  (``$TRADECTL_OPERATORS_GROUP``) or the owner's own private group with no other members
  (the user-private-group scheme of Debian and Fedora, under which a umask of 002 is usual).

Symbolic links are resolved and their targets checked. ``untrusted_input_problems`` works for
any input file (rules today; the targets files of signal rules later). See docs/security.md.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

OPERATORS_GROUP_ENV = "TRADECTL_OPERATORS_GROUP"


@dataclass(frozen=True)
class TrustPolicy:
    """Who may have written an input file: this user, root, and the operators group."""

    uid: int
    operators_gid: int | None = None
    operators_group: str = ""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> TrustPolicy:
        env = os.environ if environ is None else environ
        name = env.get(OPERATORS_GROUP_ENV, "").strip()
        gid: int | None = None
        if name:
            try:
                gid = grp.getgrnam(name).gr_gid
            except KeyError:
                gid = None
        return cls(uid=os.geteuid(), operators_gid=gid, operators_group=name)

    def trusts_owner(self, uid: int) -> bool:
        if uid in (self.uid, 0):
            return True
        return self.operators_gid is not None and _is_member(uid, self.operators_gid)

    def trusts_group_write(self, gid: int, owner: int) -> bool:
        if self.operators_gid is not None and gid == self.operators_gid:
            return True
        return _is_private_group(gid, owner)


@dataclass(frozen=True)
class PathProblem:
    path: Path
    message: str


def _user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _user_and_group(uid: int, gid: int) -> tuple[pwd.struct_passwd, grp.struct_group] | None:
    try:
        return pwd.getpwuid(uid), grp.getgrgid(gid)
    except KeyError:
        return None


def _is_member(uid: int, gid: int) -> bool:
    found = _user_and_group(uid, gid)
    if found is None:
        return False
    user, group = found
    return user.pw_gid == gid or user.pw_name in group.gr_mem


def _is_private_group(gid: int, owner: int) -> bool:
    found = _user_and_group(owner, gid)
    if found is None:
        return False
    user, group = found
    return user.pw_gid == gid and set(group.gr_mem) <= {user.pw_name}


def _chain(target: Path, root: Path) -> list[Path]:
    """The target and its directories up to ``root`` (all resolved); when a link leads out of
    the root: the target, its directory and the root."""
    if root not in target.parents:
        return list(dict.fromkeys([target, target.parent, root]))
    chain = [target]
    for parent in target.parents:
        chain.append(parent)
        if parent == root:
            break
    return chain


def _problem(path: Path, policy: TrustPolicy) -> str | None:
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not policy.trusts_owner(info.st_uid):
        owner = _user_name(info.st_uid) or str(info.st_uid)
        me = _user_name(policy.uid) or str(policy.uid)
        return (
            f"owned by {owner}, who is not this user ({me}), root or in the operators group: "
            f"refused; fix with `chown {me} {path}`"
        )
    if mode & 0o002:
        return f"writable by every user (mode {mode:04o}): refused; fix with `chmod o-w {path}`"
    if mode & 0o020 and not policy.trusts_group_write(info.st_gid, info.st_uid):
        try:
            group = grp.getgrgid(info.st_gid).gr_name
        except KeyError:
            group = str(info.st_gid)
        named = (
            f"{OPERATORS_GROUP_ENV} is {policy.operators_group!r}"
            if policy.operators_group
            else f"{OPERATORS_GROUP_ENV} is not set"
        )
        return (
            f"writable by group {group} (mode {mode:04o}), which is not the operators group "
            f"({named}): refused; fix with `chmod g-w {path}` or `chgrp OPERATORS {path}` "
            f"with {OPERATORS_GROUP_ENV}=OPERATORS"
        )
    return None


def untrusted_input_problems(
    file: Path, root: Path | None = None, policy: TrustPolicy | None = None
) -> list[PathProblem]:
    """Why ``file`` (or a directory on the way to it from ``root``, its own directory when no
    root is given) could have been written by someone tradectl should not take orders from;
    empty when it is trusted. A path that cannot be inspected is a problem too."""
    trust = policy if policy is not None else TrustPolicy.from_environment()
    try:
        target = file.resolve(strict=True)
        top = (root if root is not None else file.parent).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        return [PathProblem(file, f"cannot check who may write it: {exc}")]
    problems: list[PathProblem] = []
    for path in _chain(target, top):
        try:
            message = _problem(path, trust)
        except OSError as exc:
            message = f"cannot check who may write it: {exc.strerror or exc}"
        if message is not None:
            problems.append(PathProblem(path, message))
    return problems
