"""File operations on one directory of an Airflow ObjectStoragePath.

Everything goes through the path's fsspec file system, whose methods are the same on every
Airflow version and storage (local files, S3, GCS, ...). Listing first drops the file
system's listing cache, because object stores such as S3 keep one and the writer must see
the files an earlier run left behind.
"""

from __future__ import annotations

import contextlib
import posixpath
import uuid
import warnings
from typing import Any, BinaryIO, cast

from airflow_provider_centralmon._compat import ObjectStoragePath

_LOCAL_PROTOCOLS = frozenset({"file", "local"})


def join_path(base: ObjectStoragePath, *names: str) -> ObjectStoragePath:
    """Return ``base`` joined with ``names``, keeping its connection and storage options."""
    with warnings.catch_warnings():
        # Airflow 2.11's ObjectStoragePath re-parses its own string form on every join, and
        # universal-pathlib 0.2 warns about that about itself; nothing here can act on it.
        warnings.filterwarnings(
            "ignore", message="in a future version of UPath", category=PendingDeprecationWarning
        )
        return base.joinpath(*names)


def file_in_the_way(directory: ObjectStoragePath, base: ObjectStoragePath) -> str | None:
    """Return an existing non-directory at ``directory`` or a parent of it up to ``base``.

    Returns None when the directory can be created: the walk up from ``directory`` ends at
    the first existing directory, or after ``base``, which contains ``directory``.

    :param directory: the directory an export is to be written to
    :param base: the export's ``output_path``
    """
    fs: Any = directory.fs
    path = str(directory.path).rstrip("/")
    stop = str(base.path).rstrip("/")
    while path.startswith(stop):
        fs.invalidate_cache(path)
        if fs.isdir(path):
            return None
        if fs.exists(path):
            return path
        parent = posixpath.dirname(path)
        if path == stop or parent == path:
            return None
        path = parent
    return None


class Store:
    """Read, write, move and delete files inside one directory.

    :param directory: the directory; it need not exist yet
    """

    def __init__(self, *, directory: ObjectStoragePath) -> None:
        self.directory = directory
        self._fs: Any = directory.fs
        self._root = str(directory.path).rstrip("/")

    def __repr__(self) -> str:
        return f"Store({self.directory!s})"

    @property
    def is_local(self) -> bool:
        """Whether the directory is on a local file system, where a rename is atomic."""
        protocols = self._fs.protocol
        names = {protocols} if isinstance(protocols, str) else set(protocols)
        return bool(names & _LOCAL_PROTOCOLS)

    def child(self, name: str) -> Store:
        """Return the store of the sub-directory ``name``."""
        return Store(directory=join_path(self.directory, name))

    def make(self) -> None:
        """Create the directory (and its parents) if the storage has directories."""
        self._fs.makedirs(self._root, exist_ok=True)

    def names(self) -> list[str]:
        """Return the names of the entries of the directory; empty if it does not exist."""
        self._fs.invalidate_cache(self._root)
        try:
            entries = self._fs.ls(self._root, detail=False)
        except FileNotFoundError:
            return []
        return sorted({str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries})

    def open_write(self, name: str) -> BinaryIO:
        """Open the file ``name`` for writing bytes, replacing it if it exists."""
        return cast(BinaryIO, self._fs.open(self._full(name), "wb"))

    def read_bytes(self, name: str) -> bytes:
        """Return the content of the file ``name``."""
        with self._fs.open(self._full(name), "rb") as stream:
            return cast(bytes, stream.read())

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write the file ``name``; on local storage through a temporary file and a rename.

        Readers then never see a half-written file. An object store's upload already
        appears all at once.
        """
        if not self.is_local:
            with self.open_write(name) as stream:
                stream.write(data)
            return

        # The temporary name starts like a staging entry, so that cleanup finds it if this
        # process dies before the rename.
        temporary = f"_staging-{uuid.uuid4().hex}-{name}"
        with self.open_write(temporary) as stream:
            stream.write(data)
        self._fs.mv(self._full(temporary), self._full(name))

    def move_from(self, source: Store, name: str) -> None:
        """Move the file ``name`` of ``source`` into this directory, replacing any file there."""
        self._fs.mv(source._full(name), self._full(name))

    def remove(self, name: str) -> None:
        """Delete the file or directory ``name``; nothing happens if it does not exist."""
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(self._full(name), recursive=True)

    def remove_all(self) -> None:
        """Delete the directory with everything in it; nothing happens if it does not exist."""
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(self._root, recursive=True)

    def _full(self, name: str) -> str:
        return f"{self._root}/{name}"
