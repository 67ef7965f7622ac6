"""Private state, whatever the umask: the one place that decides the mode of what tradectl writes.

The state directory (journal, its WAL and SHM, locks, the control socket) is the daemon's
memory of what it sent: another local user who can read it sees every order and fill, and one
who can write it can make the daemon forget an order and send it twice. So the directory is
created 0700 and every file in it 0600, by explicit ``chmod`` rather than by trusting the
process umask (a umask of 000 made them 0777 and 0666). An existing state directory that other
users can read or write is refused with the ``chmod`` that fixes it; the environment setting
``TRADECTL_ALLOW_LOOSE_STATE_DIR=1`` accepts it with a warning instead.

Records (Parquet batches for analysts) are 0600 too, or 0640 with their directories 0750 when
``TRADECTL_RECORDS_GROUP`` names the group whose members may read them. See docs/security.md.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tradectl.schemas.strict_modes import TrustPolicy

log = logging.getLogger("tradectl.security")

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
ALLOW_LOOSE_STATE_ENV = "TRADECTL_ALLOW_LOOSE_STATE_DIR"
RECORDS_GROUP_ENV = "TRADECTL_RECORDS_GROUP"


class LoosePermissions(OSError):
    """A path other users could read or change; the message says how to fix it."""


@dataclass(frozen=True)
class FileModes:
    """The modes (and group) for a tree of files tradectl writes."""

    dir_mode: int = PRIVATE_DIR_MODE
    file_mode: int = PRIVATE_FILE_MODE
    group: int | None = None


PRIVATE = FileModes()


def records_modes(environ: Mapping[str, str] | None = None) -> FileModes:
    """0700/0600, or 0750/0640 owned by ``$TRADECTL_RECORDS_GROUP`` for a group of readers."""
    env = os.environ if environ is None else environ
    name = env.get(RECORDS_GROUP_ENV, "").strip()
    if not name:
        return PRIVATE
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        raise LoosePermissions(
            f"{RECORDS_GROUP_ENV}={name}: no such group; create it or unset the setting"
        ) from None
    return FileModes(dir_mode=0o750, file_mode=0o640, group=gid)


def _apply(path: Path | int, mode: int, group: int | None) -> None:
    if isinstance(path, int):
        os.fchmod(path, mode)
        if group is not None:
            os.fchown(path, -1, group)
        return
    os.chmod(path, mode)
    if group is not None:
        os.chown(path, -1, group)


def make_dirs(path: Path, modes: FileModes = PRIVATE) -> None:
    """Create ``path`` and any missing parents with ``modes.dir_mode``; an existing directory is
    left as it is (the state directory is checked by ``ensure_state_dir`` instead)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=modes.dir_mode)
        except FileExistsError:
            continue
        _apply(directory, modes.dir_mode, modes.group)


def open_private(path: Path, flags: int, modes: FileModes = PRIVATE) -> int:
    """``os.open`` that leaves the file at ``modes.file_mode`` even if it existed with another."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, modes.file_mode)
    try:
        _apply(fd, modes.file_mode, modes.group)
    except OSError:
        os.close(fd)
        raise
    return fd


def make_private(path: Path) -> None:
    """Set an existing file (SQLite's WAL and SHM, the control socket) to 0600; absent is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, PRIVATE_FILE_MODE)


def _operators_gid() -> int | None:
    return TrustPolicy.from_environment().operators_gid


def state_dir_modes(operators_gid: int | None = None) -> FileModes:
    """0700; 0710 with the operators group, whose members then reach the control socket (and
    nothing else: the journal stays 0600)."""
    if operators_gid is None:
        return PRIVATE
    return FileModes(dir_mode=0o710, group=operators_gid)


def make_control_socket_private(path: Path, operators_gid: int | None = None) -> None:
    """The control socket: 0600, or 0660 for the operators group (each caller is still checked
    with SO_PEERCRED by the daemon)."""
    if operators_gid is None:
        make_private(path)
    else:
        _apply(path, 0o660, operators_gid)


def loose_state_dir_problem(
    path: Path, euid: int | None = None, operators_gid: int | None = None
) -> str | None:
    """Why ``path`` is not a private state directory, with the command that fixes it; None
    when it is (a directory owned by this user, no access for group or others, except search
    access for the operators group)."""
    uid = os.geteuid() if euid is None else euid
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        return f"state directory {path} is not a directory"
    if uid != 0 and info.st_uid != uid:
        return (
            f"state directory {path} belongs to uid {info.st_uid}, not to this user (uid {uid}): "
            f"another user controls the journal; fix with `chown -R {uid} {path}` or use "
            "another --state-dir"
        )
    allowed = 0o010 if operators_gid is not None and info.st_gid == operators_gid else 0
    loose = stat.S_IMODE(info.st_mode) & 0o077 & ~allowed
    if loose:
        return (
            f"state directory {path} is mode {stat.S_IMODE(info.st_mode):04o}: other users can "
            f"{_what(loose)} the journal of every order; fix with `chmod 700 {path}`"
        )
    return None


def _what(bits: int) -> str:
    can_write = bits & 0o022
    can_read = bits & 0o044
    if can_write and can_read:
        return "read and change"
    return "change" if can_write else "read"


def ensure_state_dir(path: Path, environ: Mapping[str, str] | None = None) -> None:
    """Create the state directory 0700, or check an existing one; raises LoosePermissions."""
    if not path.exists():
        make_dirs(path, state_dir_modes(_operators_gid()))
        return
    check_state_dir(path, environ)


def check_state_dir(path: Path, environ: Mapping[str, str] | None = None) -> None:
    """Refuse an existing state directory that other users can read or write (LoosePermissions),
    unless ``TRADECTL_ALLOW_LOOSE_STATE_DIR=1``, which only warns."""
    problem = loose_state_dir_problem(path, operators_gid=_operators_gid())
    if problem is None:
        return
    env = os.environ if environ is None else environ
    if env.get(ALLOW_LOOSE_STATE_ENV) == "1":
        log.warning("%s (accepted because %s=1)", problem, ALLOW_LOOSE_STATE_ENV)
        return
    raise LoosePermissions(
        f"{problem} (or set {ALLOW_LOOSE_STATE_ENV}=1 to accept it with a warning)"
    )


def exposed_secret_problem(path: Path) -> str | None:
    """Why a credentials file is not secret (other users can read or change it), with the
    ``chmod`` that fixes it; None when only its owner can. Like ssh with a private key."""
    loose = stat.S_IMODE(path.stat().st_mode) & 0o077
    if not loose:
        return None
    return (
        f"credentials file {path} is readable or writable by other users: refused; "
        f"fix with `chmod 600 {path}`"
    )
