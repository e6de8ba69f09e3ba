"""Safe file output: every product is written under a temporary name and renamed when complete."""

import contextlib
import os
from pathlib import Path

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path next to *path*; rename it to *path* only if the block succeeds.

    A crash, an exception or a full disk inside the block leaves no file at *path* (and removes
    the temporary one), so a reader never sees a partial product.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination.

    Yields
    ------
    pathlib.Path
        Temporary path in the same directory (same file system, so the rename is atomic).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
