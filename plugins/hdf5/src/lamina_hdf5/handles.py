"""This process's HDF5 handles and locks, one ``FileState`` per file.

**The cached read handle.** Each process keeps one read-only h5py handle per file open
between reads. It is opened with ``locking=False``: HDF5's own lock would be a shared
``flock`` held for as long as the handle is open, and another process's writer
would be refused the whole time. The handle goes through HDF5's *family* driver
with one member, the file itself (the name ``FILE%.0d`` gives ``FILE`` for member
0). This is needed because HDF5 opens a file only once per process. A second
``h5py.File(path, "r")`` that uses the same driver shares the first one's open file
and caches, and HDF5 refuses it when its locking flag is different ("file locking
flag values don't match"). Under another driver, the cached handle is separate from
any ``h5py.File`` the user opens on the file in this process, so those opens behave
as if lamina held nothing. Reads through the family driver are the sec2 driver's
``pread`` calls.

**Readers and writers across processes** use the lock that HDF5 itself uses, a
``flock`` on the data file:

* a lamina read holds a *shared* ``flock`` on the file (through this process's own
  descriptor of it) only while the read runs;
* a lamina write, creation or deletion first takes the lock file ``FILE.lock``
  (``filelock``, which serialises lamina writers), then an *exclusive* ``flock`` on the
  file for as long as the file is open for writing;
* plain h5py (default ``locking``) takes a shared ``flock`` for a reader and an
  exclusive one for a writer, for as long as its file is open.

A lamina reader therefore waits while any writer, lamina or plain h5py, has the file
open, and never reads a partial write. A writer is never refused because of a handle
lamina keeps open between calls. Waits poll for up to ``LOCK_TIMEOUT_S`` and then
raise :class:`H5LockTimeout`. A writer that turns HDF5's locking off
(``locking=False``, ``HDF5_USE_FILE_LOCKING=FALSE``) is not seen, and nothing
short of SWMR protects its readers.

**Freshness.** Each read, once it holds the shared lock, calls ``fstat`` on its
descriptor and compares (size, mtime, ctime, link count) with the values from when the
handle was opened. On any difference it reopens the handle, so a write that completed
in another process, through lamina or plain h5py, is seen by the next read. Replacing
or deleting the file (a rename over it, ``rm``) changes the old inode's ctime and link
count. The reopen then checks with ``os.stat`` that the path still names the same
inode, and otherwise moves the lock and the handle to the new file. The path is the
one the layer was built with, symlinks resolved: re-pointing a symlink later does not
move an existing layer. File timestamps are coarse (one kernel tick, or a whole second
on some filesystems), so a second write within the same tick may leave the stat values
unchanged. For this reason a handle opened within that window of the file's last
change is used for one read only, and the next read reopens it. Stat data can lag on
network filesystems with attribute caching (NFS ``actimeo``). There, open layers with
``keep_open=False``.

**Fork.** A state belongs to the process that made it (the states are a
:class:`lamina.concurrency.ProcessLocal`). Every read compares the state's pid with
:data:`pid`, which :func:`lamina.concurrency.at_fork_in_child` refreshes in every
child, so the check costs no system call. A forked child never reads through an
inherited handle. On first use in the child, the inherited handles are closed
(read-only and unlocked, so closing them does not affect the parent) and new ones are
opened. The child must close them first: HDF5 would otherwise share the inherited
open file and its caches with the new open. Handles are also closed by
``clear_cache()``, ``with_changes``, ``delete()``, any lamina write to the file from
this process, and at interpreter exit.

A writer waits for in-flight reads, never for a handle kept between calls. Readers of
many processes whose reads keep overlapping can still delay a writer, which polls
until a gap appears or ``LOCK_TIMEOUT_S`` passes.
"""

from __future__ import annotations

import atexit
import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np

from lamina.concurrency import ProcessLocal, at_fork_in_child
from lamina.errors import LaminaError

try:
    import fcntl

    _FLOCK = True
    # bound once: the per-read path makes these calls with cold caches (after large reads)
    _flock = fcntl.flock
    _SH_NB = fcntl.LOCK_SH | fcntl.LOCK_NB
    _UN = fcntl.LOCK_UN
except ImportError:  # pragma: no cover - Windows has no flock: reads open per call there
    _FLOCK = False

#: Whether reads may use the cached handle: its cross-process coordination needs ``flock``.
FLOCK_AVAILABLE = _FLOCK

__all__ = [
    "LOCK_TIMEOUT_S",
    "DatasetReader",
    "FileState",
    "H5LockTimeout",
    "begin_read",
    "chunk_cache_bytes",
    "close_all",
    "close_state",
    "end_read",
    "exclusive",
    "open_file",
    "open_with_small_cache",
    "state",
]

#: How long a read or write waits for another process's writer (or reader) to finish.
LOCK_TIMEOUT_S = 120.0
#: Age below which a file's timestamps cannot tell a later write apart (a few ticks).
_RACY_FINE_NS = 20_000_000
#: The same for filesystems that store whole seconds (ext3, FAT, some network mounts).
_RACY_COARSE_NS = 2_000_000_000
_SECOND_NS = 1_000_000_000
#: ``os.stat`` and ``os.fstat`` (module attributes so that tests can simulate coarse timestamps)
_stat = os.stat
_fstat = os.fstat
#: This process's pid, refreshed in a forked child as it starts, so the per-read pid check
#: (``FileState.pid != handles.pid``) costs no system call.
pid = os.getpid()
#: errno values meaning "this filesystem has no flock": lamina then does not lock there.
_NO_FLOCK_ERRNOS = frozenset({errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP})


class H5LockTimeout(LaminaError, TimeoutError):
    """Another process kept the HDF5 file locked for longer than ``LOCK_TIMEOUT_S``."""


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("errno = 11" in text or "temporarily unavailable" in text)


def open_file(path: str, mode: str, timeout: float = LOCK_TIMEOUT_S, **kwargs: Any) -> Any:
    """``h5py.File(path, mode, **kwargs)``, retrying while HDF5's file locking refuses the open
    because another process holds the file. Other errors are raised at once."""
    import h5py

    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            return h5py.File(path, mode, **kwargs)
        except OSError as exc:
            if "signature not found" in str(exc) or "truncated file" in str(exc):
                raise H5FileError(
                    f"{path} is not an HDF5 file, or a damaged one ({exc}): an HDF5 file "
                    "starts with HDF5's signature, and this one does not"
                ) from None
            if not _is_lock_error(exc):
                raise
            if time.monotonic() > deadline:
                raise H5LockTimeout(
                    f"{path} stayed locked by another process for {timeout:.0f} s "
                    f"(HDF5 file locking; opening it {mode!r}): {exc}"
                ) from exc
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class H5FileError(LaminaError, OSError):
    """A file that is not an HDF5 file, or one damaged so that HDF5 cannot open it."""


class DatasetReader:
    """One dataset of a cached handle, read into an uninitialised array.

    h5py's ``ds[sel]`` allocates its result with ``np.zeros``, and HDF5 then overwrites every
    element. For a large read, that zero fill (a ``memset`` of the whole result, when the
    memory is reused) costs about a tenth of the read. HDF5 itself writes every element
    of the selection (data, or the fill value for unallocated chunks) unless it may skip
    unallocated chunks: fill time "never", or "if set" with no fill value. So
    :meth:`read` goes through h5py's low-level ``DatasetID.read`` into ``np.empty``. It
    keeps h5py's zero-filled ``ds[sel]`` for datasets that may skip chunks, that are not
    chunked, or that are not plain numbers, and for empty selections.

    A chunked dataset is opened with a chunk cache of a few chunks (:func:`chunk_cache_bytes`)
    rather than HDF5 2.0's default of 8 MiB per dataset. Random cutouts revisit few chunks,
    and a small cache keeps its chunk buffers hot in the CPU's caches: such reads run
    faster than with the default (bench/README.md, "HDF5"; ``bench/bench_hdf5.py``
    prints both).
    """

    __slots__ = ("dataset", "direct", "dtype", "fspace", "id", "mspaces", "mtype")

    def __init__(self, handle: Any, name: str) -> None:
        from h5py import h5d, h5t

        dataset = open_with_small_cache(handle, name)
        self.dataset = dataset
        self.id = dataset.id
        dtype = getattr(dataset, "dtype", None)  # None: a group (metadata reads)
        self.dtype = dtype
        self.mspaces: dict[tuple[int, ...], Any] = {}
        self.direct = False
        if dtype is not None and isinstance(dataset, _h5py_dataset()) and dtype.kind in "biuf":
            dcpl = self.id.get_create_plist()
            fill_time = dcpl.get_fill_time()
            defined = dcpl.fill_value_defined() in (
                h5d.FILL_VALUE_DEFAULT,
                h5d.FILL_VALUE_USER_DEFINED,
            )
            self.direct = (
                dcpl.get_layout() == h5d.CHUNKED
                and fill_time != h5d.FILL_TIME_NEVER
                and (defined or fill_time == h5d.FILL_TIME_ALLOC)
            )
        if self.direct:
            self.mtype = h5t.py_create(self.dtype)
            self.fspace = self.id.get_space()

    def read(self, start: tuple[int, ...], count: tuple[int, ...]) -> Any:
        """The hyperslab ``start``, ``count`` (file axis order). Call under the state's lock
        (the file dataspace is reused)."""
        if not self.direct or 0 in count:
            return self.dataset[tuple(slice(a, a + n) for a, n in zip(start, count, strict=True))]
        out = np.empty(count, self.dtype)
        fspace = self.fspace
        fspace.select_hyperslab(start, count)
        mspace = self.mspaces.get(count)
        if mspace is None:
            from h5py import h5s

            if len(self.mspaces) > 64:
                self.mspaces.clear()
            mspace = self.mspaces[count] = h5s.create_simple(count)
        self.id.read(mspace, fspace, out, self.mtype)
        return out


#: The chunk cache of a dataset read through a cached handle: this many of its chunks...
CHUNK_CACHE_CHUNKS = 4
#: ...but never less than HDF5 1.x's default (2.0 raised it to 8 MiB).
CHUNK_CACHE_MIN_BYTES = 1 << 20


def chunk_cache_bytes(chunks: tuple[int, ...] | None, itemsize: int) -> int:
    """The chunk cache for a dataset with ``chunks``: ``CHUNK_CACHE_CHUNKS`` chunks, at least
    ``CHUNK_CACHE_MIN_BYTES``. It must hold a whole chunk: HDF5 reads a chunk larger than its
    cache piecewise, one ``pread`` per contiguous run (tens of times slower)."""
    if not chunks:
        return CHUNK_CACHE_MIN_BYTES
    return max(CHUNK_CACHE_MIN_BYTES, CHUNK_CACHE_CHUNKS * int(np.prod(chunks)) * itemsize)


def open_with_small_cache(handle: Any, name: str) -> Any:
    """``handle[name]``; a chunked dataset is reopened with a chunk cache of
    :func:`chunk_cache_bytes` (lamina's reads and writes go through this)."""
    import h5py
    from h5py import h5d, h5p

    obj = handle[name]
    if not isinstance(obj, h5py.Dataset) or obj.chunks is None:
        return obj
    path, nbytes = obj.name, chunk_cache_bytes(obj.chunks, obj.dtype.itemsize)
    # HDF5 shares one cache among the open ids of a dataset, sized at the first open:
    # close this one before reopening
    obj.id.close()
    del obj
    dapl = h5p.create(h5p.DATASET_ACCESS)
    nslots, _, w0 = dapl.get_chunk_cache()
    dapl.set_chunk_cache(nslots, nbytes, w0)
    return h5py.Dataset(h5d.open(handle.id, path.encode(), dapl))


def _h5py_dataset() -> type:
    import h5py

    return h5py.Dataset  # type: ignore[no-any-return]


class FileState:
    """This process's handles and locks for one file (see the module docstring)."""

    __slots__ = (
        "datasets",
        "fd",
        "fd_id",
        "flock_ok",
        "handle",
        "key",
        "lock",
        "path",
        "pid",
        "racy",
    )

    def __init__(self, path: str) -> None:
        self.path = path
        self.pid = os.getpid()
        #: Serialises this process's use of the file: reads, writes, opening and closing.
        self.lock = threading.RLock()
        #: A read-only descriptor of the file, for the shared flock of reads (-1: none).
        self.fd = -1
        self.fd_id: tuple[int, int] = (-1, -1)
        self.flock_ok = _FLOCK
        #: The cached read-only handle and its open datasets (None: not open).
        self.handle: Any = None
        self.datasets: dict[str, DatasetReader] = {}
        #: fstat values (size, mtime, ctime, links) of the file when the handle was opened.
        self.key: tuple[int, int, int, int] = (-1, -1, -1, -1)
        #: The handle was opened too soon after the file's last change to be trusted again.
        self.racy = True


def _close_inherited(states: dict[str, FileState]) -> None:
    """Close a forked parent's states in the child, without their locks (another thread
    of the parent may have held one at fork) and without reading: only local resources
    go."""
    for st in states.values():
        st.datasets = {}
        handle, st.handle = st.handle, None
        if handle is not None:
            with suppress(Exception):  # the parent's objects: nothing to report in the child
                handle.close()
        fd, st.fd = st.fd, -1
        if fd >= 0:
            with suppress(OSError):  # a duplicate of the parent's: the parent keeps its flock
                os.close(fd)


#: This process's states by path. A forked child starts with none, and on first use
#: closes those it inherited (HDF5 would share their open files with its new opens).
_states: ProcessLocal[dict[str, FileState]] = ProcessLocal(dict, on_inherited=_close_inherited)


def state(path: str) -> FileState:
    """This process's state of ``path`` (an absolute path). A state inherited across fork
    is closed, never used, and replaced."""
    states = _states.get()
    st = states.get(path)
    if st is None:
        with _states.lock:
            st = states.get(path)
            if st is None:
                st = states[path] = FileState(path)
    return st


def _refresh_pid() -> None:
    global pid
    pid = os.getpid()


at_fork_in_child(_refresh_pid)


# -- flock ------------------------------------------------------------------------------------
def _wait_flock(fd: int, op: int, path: str, what: str) -> bool:
    """Take ``flock(fd, op)``, polling while another process holds a conflicting lock.
    Returns False when the filesystem has no flock (then nothing is locked)."""
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    delay = 0.0002
    while True:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno in _NO_FLOCK_ERRNOS:
                return False
            raise
        if time.monotonic() > deadline:
            holder = "open for writing" if op == fcntl.LOCK_SH else "open"
            raise H5LockTimeout(
                f"cannot {what} {path}: another process kept it {holder} for more than "
                f"{LOCK_TIMEOUT_S:.0f} s (HDF5 file lock). Close the other handle, or open "
                "this layer later."
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _open_fd(st: FileState) -> None:
    from lamina_hdf5.layout import H5NotFoundError

    try:
        fd = os.open(st.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise H5NotFoundError(f"no HDF5 file at {st.path}") from None
    s = os.fstat(fd)
    st.fd, st.fd_id = fd, (s.st_ino, s.st_dev)


def _close_fd(st: FileState) -> None:
    fd, st.fd = st.fd, -1
    st.flock_ok = _FLOCK
    if fd >= 0:
        os.close(fd)


def _unlock(st: FileState) -> None:
    if st.flock_ok:
        fcntl.flock(st.fd, fcntl.LOCK_UN)


# -- the cached read handle ---------------------------------------------------------------------
def close_handle(st: FileState) -> None:
    """Close the cached read handle (the next read reopens it). Call under ``st.lock``."""
    st.datasets = {}
    handle, st.handle = st.handle, None
    if handle is not None:
        handle.close()


def close_state(st: FileState) -> None:
    """Close the cached read handle and the descriptor. Call under ``st.lock``."""
    close_handle(st)
    _close_fd(st)


def _key(s: Any) -> tuple[int, int, int, int]:
    return (s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_nlink)


def _refresh(st: FileState) -> bool:
    """Reopen the cached handle (the file changed, or the handle is new or too young).
    Returns False, opening nothing, when the path now names another file than the one
    ``st.fd`` (and its lock) refers to; the caller then starts again on the new file."""
    import h5py

    from lamina_hdf5.layout import H5NotFoundError

    close_handle(st)
    try:
        at_path = _stat(st.path)
    except FileNotFoundError:
        raise H5NotFoundError(f"no HDF5 file at {st.path}") from None
    if (at_path.st_ino, at_path.st_dev) != st.fd_id:
        return False
    # HDF5 opens a file once per process: another state open on the same file (a hard
    # link) would share its open file and caches with this open. One in use by another
    # thread was checked fresh under the shared lock we also hold, so sharing it is safe;
    # an idle one is closed.
    for other in list(_states.get().values()):
        same = other is not st and other.handle is not None and other.fd_id == st.fd_id
        if same and other.lock.acquire(blocking=False):
            try:
                close_handle(other)
            finally:
                other.lock.release()
    now = time.time_ns()
    s = _fstat(st.fd)
    name = st.path.replace("%", "%%") + "%.0d"
    try:
        handle = h5py.File(
            name,
            "r",
            driver="family",
            memb_size=1 << 62,  # member 0's own size is used when the file is opened
            locking=False,
        )
    except OSError as exc:  # name the file, not its family-driver name
        raise type(exc)(f"{st.path}: {str(exc).replace(name, st.path)}") from exc
    st.handle = handle
    st.key = _key(s)
    newest = max(s.st_mtime_ns, s.st_ctime_ns)
    coarse = s.st_mtime_ns % _SECOND_NS == 0 and s.st_ctime_ns % _SECOND_NS == 0
    st.racy = now - newest < (_RACY_COARSE_NS if coarse else _RACY_FINE_NS)
    return True


def begin_read(st: FileState, dataset: str) -> DatasetReader:
    """Take the shared lock and return ``dataset`` of a fresh cached handle.

    Call under ``st.lock``, then :func:`end_read` (also when the read fails). The check is one
    ``fstat`` of the locked descriptor: a write changes the file's size or mtime or ctime,
    and replacing or deleting the file changes its ctime and link count. Any change, and
    any too-young handle, goes through :func:`_refresh`, which also checks that the path
    still names this file."""
    if st.fd < 0:
        _open_fd(st)
    if st.flock_ok:
        try:
            _flock(st.fd, _SH_NB)
        except OSError:
            st.flock_ok = _wait_flock(st.fd, fcntl.LOCK_SH, st.path, "read")
    try:
        s = _fstat(st.fd)
        if (
            st.racy
            or st.handle is None
            or st.key != (s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_nlink)
        ) and not _refresh(st):  # the path names another file now: lock that one
            _unlock(st)
            close_state(st)
            return begin_read(st, dataset)
        reader = st.datasets.get(dataset)
        if reader is None:
            reader = st.datasets[dataset] = DatasetReader(st.handle, dataset)
        return reader
    except FileNotFoundError:
        _unlock(st)
        close_state(st)
        from lamina_hdf5.layout import H5NotFoundError

        raise H5NotFoundError(f"no HDF5 file at {st.path}") from None
    except BaseException:
        _unlock(st)
        raise


def end_read(st: FileState) -> None:
    """Release the shared lock taken by :func:`begin_read`."""
    if st.flock_ok:
        _flock(st.fd, _UN)


@contextmanager
def reading(path: str, keep_open: bool) -> Iterator[Any]:
    """The file for reading (metadata, ``lamina info``): the cached handle under the shared
    lock, or with ``keep_open=False`` a handle opened for this call."""
    st = state(path)
    with st.lock:
        if not keep_open or not _FLOCK:
            with open_file(path, "r") as f:
                yield f
            return
        begin_read(st, "/")
        try:
            yield st.handle
        finally:
            end_read(st)


# -- writers ----------------------------------------------------------------------------------
@contextmanager
def exclusive(path: str) -> Iterator[Callable[[str], Any]]:
    """Exclusive access for a write, a creation or a deletion. It closes this process's cached
    handle of the file, takes ``FILE.lock`` (lamina writers) and then an exclusive flock on the
    file (every reader and writer). It yields ``open_rw(mode)``, which opens the file for
    writing. Close that handle before leaving the block."""
    from filelock import FileLock

    st = state(path)
    with st.lock:
        close_state(st)
        with FileLock(path + ".lock", timeout=LOCK_TIMEOUT_S):
            fd = -1
            locked = False
            if _FLOCK:
                try:
                    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                except FileNotFoundError:
                    fd = -1  # a new file: nobody can be reading it
                else:
                    locked = _wait_flock(fd, fcntl.LOCK_EX, path, "write")

            def open_rw(mode: str) -> Any:
                # Holding the exclusive flock ourselves, HDF5 must not try to take its own
                # (a second flock on another descriptor would conflict with ours).
                if locked:
                    return open_file(path, mode, locking=False)
                return open_file(path, mode)

            try:
                yield open_rw
            finally:
                if fd >= 0:
                    os.close(fd)  # releases the flock


def close_all() -> None:
    """Close every cached handle and descriptor of this process (at exit)."""
    for st in list(_states.get().values()):
        # A thread still reading at exit keeps its handle; HDF5 closes it at exit anyway.
        if st.lock.acquire(timeout=1.0):
            try:
                close_state(st)
            finally:
                st.lock.release()


atexit.register(close_all)
