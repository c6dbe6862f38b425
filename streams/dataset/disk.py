"""Write failures of the dataset directory (disk full, read-only, file too large) as one clear error.

`pairstream consume` must stop on them with a message a user can act on, not a traceback, and must
not commit what it could not write; `storage()` and `writing()` turn an OSError or an SQLite error
under DIR into `StorageError`, which says what failed, what is kept and what to do.
"""

import errno
import functools
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path


class StorageError(Exception):
    """DIR cannot be written now (disk full, read-only, file too large); nothing unwritten was committed."""


HINTS = {errno.ENOSPC: "free some space", errno.EDQUOT: "raise the quota", errno.EROFS: "make it writable",
         errno.EFBIG: "raise the file-size limit or lower --shard-rows", errno.EACCES: "make it writable"}


@contextmanager
def storage(out_dir: Path, doing: str):
    """Turn a write failure under DIR (OSError, or SQLite's "disk is full" / "readonly database") into one
    StorageError that says what failed, what was kept, and what to do."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        code = getattr(exc, "errno", None)
        text = os.strerror(code) if code else str(exc)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise StorageError(
            f"cannot write the dataset in {out_dir} while {doing}: {text}{where}. Everything up to the last "
            f"complete shard is kept and committed, nothing after it: {HINTS.get(code, 'fix the disk')} and run "
            f"the same command again to complete it") from exc


def writing(doing: str):
    """A Dataset method whose write failures become `StorageError` (`storage`)."""

    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            with storage(self.dir, doing):
                return method(self, *args, **kwargs)
        return run
    return wrap
