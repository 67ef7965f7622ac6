"""StrictModes for rule files: a rule file, or a directory on the way to it, that someone else
could write is refused the same way by validate, plan, apply and the daemon, with the path and
the command that fixes it. Symbolic links are followed and their targets checked."""

from __future__ import annotations

import grp
import os
import shutil
from pathlib import Path

from tradectl.schemas.loader import load_rule_set
from tradectl.schemas.strict_modes import TrustPolicy, untrusted_input_problems

from .support import REPO, tradectl

STRANGER = 4242


def rules_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(REPO / "rules", directory)
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)
    return directory


def test_the_repos_own_rules_and_pytest_dirs_are_trusted(tmp_path: Path) -> None:
    assert load_rule_set([REPO / "rules"]).ok
    assert load_rule_set([rules_copy(tmp_path)]).ok


def test_a_world_writable_rule_file_is_refused_with_the_chmod(tmp_path: Path) -> None:
    rules = rules_copy(tmp_path)
    (rules / "core.yaml").chmod(0o666)
    [error] = load_rule_set([rules]).errors
    assert error.file == str((rules / "core.yaml").resolve())
    assert f"chmod o-w {(rules / 'core.yaml').resolve()}" in error.message


def test_a_group_writable_directory_is_refused_unless_it_is_the_operators_group(
    tmp_path: Path,
) -> None:
    rules = rules_copy(tmp_path)
    stranger_group = 4343
    os.chown(rules, -1, stranger_group)
    rules.chmod(0o775)
    problems = untrusted_input_problems(rules / "core.yaml", rules, TrustPolicy(uid=0))
    assert [problem.path for problem in problems] == [rules.resolve()]
    assert f"chmod g-w {rules.resolve()}" in problems[0].message
    operators = TrustPolicy(uid=0, operators_gid=stranger_group, operators_group="ops")
    assert untrusted_input_problems(rules / "core.yaml", rules, operators) == []


def test_a_file_owned_by_another_user_is_refused_with_the_chown(tmp_path: Path) -> None:
    rules = rules_copy(tmp_path)
    os.chown(rules / "entries.yaml", STRANGER, -1)
    [error] = load_rule_set([rules]).errors
    assert "owned by 4242, who is not this user (root)" in error.message
    assert f"chown root {(rules / 'entries.yaml').resolve()}" in error.message
    member_of_ops = TrustPolicy(uid=1000, operators_gid=os.getegid(), operators_group="ops")
    assert member_of_ops.trusts_owner(0)
    assert not member_of_ops.trusts_owner(STRANGER)


def test_a_symlink_is_followed_and_its_target_checked(tmp_path: Path) -> None:
    rules = rules_copy(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    target = elsewhere / "core.yaml"
    (rules / "core.yaml").rename(target)
    (rules / "core.yaml").symlink_to(target)
    assert load_rule_set([rules]).ok
    elsewhere.chmod(0o777)
    [error] = load_rule_set([rules]).errors
    assert error.file == str(elsewhere.resolve())
    assert "writable by every user" in error.message


def test_validate_plan_and_apply_refuse_a_loose_rule_file_and_send_nothing(
    tmp_path: Path,
) -> None:
    rules = rules_copy(tmp_path)
    loose = (rules / "entries.yaml").resolve()
    loose.chmod(0o646)
    state = tmp_path / "state"
    for command in (
        ("validate", str(rules)),
        ("plan", str(rules), "--sim", "--state-dir", str(state)),
        ("apply", str(rules), "--sim", "--yes", "--state-dir", str(state)),
    ):
        result = tradectl(*command, cwd=tmp_path)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        output = result.stdout + result.stderr
        assert f"{loose}:1:1: writable by every user" in output, command
        assert f"chmod o-w {loose}" in output
    # Nothing was planned against or sent to anyone: not even a journal was opened.
    assert not state.exists()


def test_the_operators_group_setting_is_read_from_the_environment() -> None:
    group = grp.getgrgid(os.getegid()).gr_name
    policy = TrustPolicy.from_environment({"TRADECTL_OPERATORS_GROUP": group})
    assert policy.operators_gid == os.getegid()
    assert TrustPolicy.from_environment({}).operators_gid is None
