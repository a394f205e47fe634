"""Small I/O helpers: safe output paths, atomic writes, bounded reads.

Every file speechface writes goes through :func:`atomic_write` or :func:`atomic_path`:

- the data is written to a temporary file beside the destination (``.NAME.sfPID.XXXX.tmp``)
  and renamed onto it when complete, so a half-written output never exists;
- a symbolic link is written *through* (the file it points to is replaced, the link stays);
- a directory, FIFO, socket or device node (``/dev/full``, ``/dev/stdout`` ...) is refused
  with :class:`~speechface.core.errors.OutputError` naming the user's path (the CLI offers
  ``-o -`` for standard output where that makes sense);
- errors name the path the user gave, never the hidden temporary file;
- temporary files of our own naming left by a killed process (its PID is gone) are removed
  the next time the same output is written.

:func:`check_output` runs the same checks (plus "not one of this command's inputs" and the
allowed extensions) *before* any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import OutputError

__all__ = ["atomic_write", "atomic_path", "write_json", "check_output", "read_bounded",
           "STDOUT"]

#: ``-o -``: the value :func:`check_output` accepts (when allowed) for standard output.
STDOUT = "-"

_TMP_TAG = "sf"           # .NAME.sf<pid>.<random>.tmp
_OLD_TMP_AGE = 3600.0     # leftovers of the older naming (no PID) are removed after an hour


def _umask_mode() -> int:
    """The permissions a newly created file gets (0o666 less the process umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _kind(mode: int) -> str | None:
    """A name for a file type that is not a regular file (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _destination(path: str | os.PathLike[str], label: str) -> Path:
    """The regular file to replace for ``path``: symlinks followed; anything else refused."""
    user = Path(path)
    try:
        st = os.stat(user)  # follows links
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        probe = user.parent
        while probe != probe.parent and not probe.exists():
            probe = probe.parent
        raise OutputError(f"cannot write {label}: {probe} is not a folder") from None
    except OSError as e:
        raise OutputError(f"cannot write {label}: {e.strerror or e}") from None
    if st is not None:
        kind = _kind(st.st_mode)
        if kind is not None:
            raise OutputError(f"cannot write {label}: it is {kind}, not a regular file")
    real = Path(os.path.realpath(user))
    if st is None and user.is_symlink() and not real.parent.is_dir():
        raise OutputError(f"cannot write {label}: it is a symbolic link to {real}, whose folder "
                          "does not exist")
    return real


def _is_ours_and_stale(p: Path) -> bool:
    m = re.search(rf"\.{_TMP_TAG}(\d+)\.[^.]+(?:\.tmp|\.[^.]*)$", p.name)
    if m is None:
        try:
            old = time.time() - p.stat().st_mtime > _OLD_TMP_AGE
        except OSError:
            return False
        return old and bool(re.fullmatch(r"\.[^/]+\.[A-Za-z0-9_]{8}(\.tmp|\.[A-Za-z0-9]+)", p.name))
    pid = int(m.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False
    return False


def _clean_stale(folder: Path, prefix: str, suffix: str) -> None:
    """Remove temporary files of our naming for this output whose writer has died."""
    with contextlib.suppress(OSError):
        for p in folder.glob(f"{glob_escape(prefix)}*{glob_escape(suffix)}"):
            if p.is_file() and not p.is_symlink() and _is_ours_and_stale(p):
                with contextlib.suppress(OSError):
                    p.unlink()


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _mkstemp(real: Path, label: str, prefix: str, suffix: str) -> tuple[int, str]:
    if not real.parent.is_dir():
        raise OutputError(f"cannot write {label}: folder {real.parent} does not exist")
    _clean_stale(real.parent, prefix, suffix)
    try:
        return tempfile.mkstemp(prefix=f"{prefix}{_TMP_TAG}{os.getpid()}.", suffix=suffix,
                                dir=real.parent)
    except OSError as e:
        raise OutputError(f"cannot write {label}: {e.strerror or e}") from None


def _label(path: str | os.PathLike[str]) -> str:
    return f"'{os.fspath(path)}'"


def _replace(tmp: str, real: Path, label: str) -> None:
    try:
        os.chmod(tmp, _umask_mode())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, real)
    except OSError as e:
        raise OutputError(f"cannot write {label}: {e.strerror or e}") from None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success rename it onto ``path``.

    On error the temporary file is removed and ``path`` is left untouched, so no half-written
    output file ever exists. A missing parent folder is created; a symlink is written through;
    a directory, FIFO or device node is refused (:class:`~speechface.core.errors.OutputError`).

    Example:
        >>> with atomic_write("out.csv") as f:   # doctest: +SKIP
        ...     f.write("a,b\\n")
    """
    label = _label(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    real = _destination(path, label)
    fd, tmp = _mkstemp(real, label, f".{real.name}.", ".tmp")
    try:
        try:
            with os.fdopen(fd, mode, **kwargs) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG):
                raise OutputError(f"cannot write {label}: {e.strerror or e}") from None
            raise
        _replace(tmp, real, label)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix) for libraries that write by name.

    The temporary file is renamed onto ``path`` when the block ends without error; the same
    checks as :func:`atomic_write` apply.
    """
    label = _label(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    real = _destination(path, label)
    fd, tmp = _mkstemp(real, label, f".{real.stem}.", real.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        _replace(tmp, real, label)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def check_output(path: str | os.PathLike[str], *, inputs: Iterable[Any] = (),
                 suffixes: Iterable[str] | None = None, allow_stdout: bool = False,
                 what: str = "output") -> str | Path:
    """Check an output path before any work: extension, folder, file type, not an input.

    The folder must exist and be writable (a typo in a folder name is an error, not a new
    folder); a symlink is followed to the file it names.

    Args:
        path: what the user gave (``"-"`` = standard output when ``allow_stdout``).
        inputs: this command's input paths (None and non-path entries are ignored); writing
            onto any of them (also through a link) is refused.
        suffixes: allowed extensions (lower case, with the dot); None = any.
        allow_stdout: accept ``"-"``.
        what: how to call the file in messages.

    Returns:
        :data:`STDOUT` for ``"-"``, else the regular file that will be written (links
        followed).

    Raises:
        OutputError: naming ``path`` and the problem.

    Example:
        >>> check_output("-", allow_stdout=True)
        '-'
    """
    text = os.fspath(path)
    label = _label(text)
    if text == STDOUT:
        if allow_stdout:
            return STDOUT
        raise OutputError(f"{what} '-': this command cannot write to standard output; give a "
                          "file name")
    if not text.strip():
        raise OutputError(f"{what} path is empty")
    user = Path(text)
    allowed = tuple(suffixes) if suffixes is not None else None
    if allowed is not None and user.suffix.lower() not in allowed:
        raise OutputError(f"{what} {label}: unsupported output type {user.suffix or '(none)'!r}; "
                          f"use {', '.join(allowed)}" + (" or - for standard output"
                                                         if allow_stdout else ""))
    real = _destination(user, f"{what} {label}")
    folder = real.parent
    if not folder.exists():
        raise OutputError(f"cannot write {what} {label}: folder {folder} does not exist "
                          "(create it first)")
    elif not folder.is_dir():
        raise OutputError(f"cannot write {what} {label}: {folder} is not a folder")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} {label}: folder {folder} is not writable")
    if real.exists():
        for item in inputs:
            if item is None or not isinstance(item, (str, os.PathLike)) or os.fspath(item) == "-":
                continue
            with contextlib.suppress(OSError):
                if os.path.samefile(item, real):
                    raise OutputError(f"{what} {label} is also an input of this command "
                                      f"({os.fspath(item)}); refusing to overwrite it")
            with contextlib.suppress(OSError):  # a model folder: any file inside it
                if os.path.isdir(item) and Path(os.path.realpath(item)) in real.parents:
                    raise OutputError(f"{what} {label} is inside the input folder "
                                      f"{os.fspath(item)}; refusing to overwrite it")
    return real


def read_bounded(path: str | os.PathLike[str], limit: int, what: str = "file") -> bytes:
    """Read at most ``limit`` bytes of a regular file; refuse anything larger or not a file.

    Reads in blocks, so ``/dev/zero`` or a FIFO fed forever stops at the limit.

    Raises:
        FileNotFoundError / IsADirectoryError for a missing path or a folder, ValueError for a
        file over ``limit`` (the message names ``path``).

    Example:
        >>> read_bounded("config.json", 1 << 20, "model config")    # doctest: +SKIP
        b'{...}'
    """
    label = _label(path)
    with open(path, "rb") as f:
        chunks, total = [], 0
        while True:
            block = f.read(min(1 << 16, limit + 1 - total))
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if total > limit:
                raise ValueError(f"{what} {label} is larger than {limit:,} bytes; refusing to "
                                 "read it")
    return b"".join(chunks)
