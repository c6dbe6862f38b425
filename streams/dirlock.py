"""An exclusive lock on a directory a pairstream process writes (a dataset, a durable broker's storage).

Two writers on one directory corrupt it (a dataset's shard numbers and temp names collide, and one's
crash recovery deletes the other's files), so the second must stop at once and say who holds it.
`fcntl.flock` is released by the kernel when the holder exits, however it exits (SIGKILL included), so a
stale lock file never blocks a restart; the file holds the holder's pid only to name it.
"""

import fcntl
import os
from pathlib import Path


class DirectoryBusy(RuntimeError):
    """Another process holds the directory's lock."""


class DirectoryLock:
    def __init__(self, path: Path, what: str):
        self.path = Path(path)
        self.what = what  # names the directory in the error, e.g. "the dataset in DIR"
        self._fd: int | None = None

    def acquire(self) -> "DirectoryLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DirectoryBusy(f"{self.what} is in use by another pairstream process (pid {holder}); stop it "
                                f"first, or use another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
