"""The config repo as the loop follows it: a bare clone it owns, fetched from a remote branch,
and one clean checkout (a git worktree) per commit it validates.

Nothing in a checkout is ever edited: a new commit gets a new worktree, made fresh by git, and
the one in force stays until its successor validated. Git runs with no prompts, no hooks
and no system or user configuration of the host (`GIT_CONFIG_NOSYSTEM`, a private HOME), so
only the remote and the commit decide what is checked out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ds01ctl.errors import Ds01Error

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
GIT_TIMEOUT = 300


class GitSource:
    def __init__(self, remote: str, branch: str, workdir: Path, *, require_signed: bool = False):
        self.remote = remote
        self.branch = branch
        self.workdir = workdir
        self.require_signed = require_signed
        self.clone = workdir / "repo.git"
        self.trees = workdir / "trees"

    # --- git --------------------------------------------------------------------------------

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),  # no user config of whoever runs the loop
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
        for passed in ("GNUPGHOME", "SSH_AUTH_SOCK", "GIT_SSH_COMMAND"):
            if passed in os.environ:  # how signatures are checked and the remote reached
                env[passed] = os.environ[passed]
        command = ["git", "-c", "core.hooksPath=/dev/null", *args]
        verb = args[2] if args[0] == "--git-dir" else args[0]
        try:
            done = subprocess.run(
                command,
                cwd=cwd or self.workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise self._error(f"git {verb} did not run: {exc}") from None
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
            raise self._error(f"git {verb} failed: {lines[-1] if lines else done.returncode}")
        return done.stdout.strip()

    def _error(self, message: str) -> Ds01Error:
        return Ds01Error(
            f"config repo {self.remote} ({self.branch}): {message}",
            hint="check --remote, --branch and that the remote is reachable; the commit in "
            "force stays applied meanwhile",
            code="config_fetch",
        )

    # --- the loop's calls -------------------------------------------------------------------

    def ensure_clone(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not (self.clone / "HEAD").is_file():
            self._git("init", "--bare", "--quiet", str(self.clone))
        remotes = self._git("--git-dir", str(self.clone), "remote").split()
        verb = "set-url" if "origin" in remotes else "add"
        self._git("--git-dir", str(self.clone), "remote", verb, "origin", self.remote)

    def fetch(self) -> str:
        """Fetch the branch; the commit it points at."""
        self.ensure_clone()
        ref = f"refs/remotes/origin/{self.branch}"
        self._git(
            "--git-dir",
            str(self.clone),
            "fetch",
            "--quiet",
            "--no-tags",
            "--force",
            "origin",
            f"+refs/heads/{self.branch}:{ref}",
        )
        commit = self._git(
            "--git-dir", str(self.clone), "rev-parse", "--verify", f"{ref}^{{commit}}"
        )
        if not _SHA.match(commit):
            raise self._error(f"the branch resolves to {commit!r}, not a commit")
        return commit

    def verify(self, commit: str) -> str | None:
        """Why the commit may not be used (an unsigned or badly signed commit when signatures
        are required); None when it may."""
        if not self.require_signed:
            return None
        try:
            self._git("--git-dir", str(self.clone), "verify-commit", commit)
        except Ds01Error as exc:
            return (
                f"commit {commit[:12]} has no valid signature ({exc.message.rsplit(': ', 1)[-1]})"
            )
        return None

    def checkout(self, commit: str) -> Path:
        """A clean checkout of `commit` (made once, reused while clean)."""
        if not _SHA.match(commit):
            raise self._error(f"{commit!r} is not a commit id")
        tree = self.trees / commit
        if tree.is_dir():
            if self._clean(tree, commit):
                return tree
            self._drop(tree)
        self.trees.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._git("--git-dir", str(self.clone), "worktree", "prune")
        self._git(
            "--git-dir",
            str(self.clone),
            "worktree",
            "add",
            "--quiet",
            "--detach",
            "--force",
            str(tree),
            commit,
        )
        return tree

    def keep_trees(self, commits: set[str]) -> None:
        """Remove the checkouts of every other commit."""
        if not self.trees.is_dir():
            return
        for tree in self.trees.iterdir():
            if tree.name not in commits:
                self._drop(tree)
        self._git("--git-dir", str(self.clone), "worktree", "prune")

    def _clean(self, tree: Path, commit: str) -> bool:
        try:
            head = self._git("rev-parse", "HEAD", cwd=tree)
            dirty = self._git(
                "status", "--porcelain", "--ignored", "--untracked-files=all", cwd=tree
            )
        except Ds01Error:
            return False
        return head == commit and not dirty

    def _drop(self, tree: Path) -> None:
        shutil.rmtree(tree, ignore_errors=True)
