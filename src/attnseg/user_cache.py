"""A per-user cache of small measured decisions (stdlib only: the runtime and training use it).

Measurements such as "bf16 is faster than f32 for this model on this CPU" are worth keeping:
the second start should not pay for the probe again. They live in small JSON files in
``$ATTNSEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/attnseg``, else ``~/.cache/attnseg`` -- never
in the working directory. A cache that cannot be read or written is only a lost speed-up:
it is logged and ignored, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV_CACHE_DIR = "ATTNSEG_CACHE_DIR"


def cache_root() -> Path:
    """The folder attnseg keeps its per-user cache files in (not created here)."""
    explicit = os.environ.get(ENV_CACHE_DIR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "attnseg"


def cache_key(*parts: Any) -> str:
    """A short stable key for the things a decision depends on (order matters)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _write_holder(handle: Any) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(handle.fileno(), 0)
        os.pwrite(handle.fileno(), str(os.getpid()).encode(), 0)


def _holder(handle: Any) -> str:
    """Who holds the lock, as its PID written by ``_write_holder``."""
    with contextlib.suppress(OSError, ValueError):
        return f"process {int(os.pread(handle.fileno(), 32, 0).decode().strip())}"
    return "another process"


class JsonCache:
    """One JSON object in ``cache_root()/name``: ``{key: entry}``; last writer wins."""

    def __init__(self, name: str, root: Path | None = None) -> None:
        self.path = (root or cache_root()) / name

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("Ignoring unreadable cache %s (%s); it will be rewritten.", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def locked(self, timeout_s: float = 300.0) -> Iterator[None]:
        """Hold an advisory lock on this cache (so concurrent first starts measure once, and the
        others read the result). Without a usable lock (not POSIX, read-only folder, timeout),
        the body runs anyway: the lock only saves work."""
        try:
            import fcntl

            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path.with_name(self.path.name + ".lock"), "a+")  # noqa: SIM115
        except (ImportError, OSError):
            yield
            return
        try:
            deadline = time.monotonic() + timeout_s
            said = False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    _write_holder(handle)
                    break
                except OSError:
                    if not said:  # a wait of up to timeout_s is never silent: say who and what
                        said = True
                        log.warning("Waiting for %s, which is measuring into %s (lock %s), to finish; at most "
                                    "%.0f s, then measuring here without it.", _holder(handle), self.path,
                                    handle.name, timeout_s)
                    if time.monotonic() > deadline:
                        log.warning("%s stayed locked for %.0f s; measuring without the lock.", self.path, timeout_s)
                        break
                    time.sleep(0.1)
            yield
        finally:
            handle.close()  # releases the lock

    def get(self, key: str) -> Any:
        return self.load().get(key)

    def put(self, key: str, entry: Any) -> bool:
        """Store ``entry`` under ``key``; False if the cache is not writable."""
        data = self.load()
        data[key] = entry
        return self.replace_all(data)

    def replace_all(self, data: dict[str, Any]) -> bool:
        """Write ``data`` as the whole cache (temp file + rename); False if not writable."""
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
            return True
        except OSError as exc:
            log.warning("Cannot write cache %s (%s); the decision is not kept.", self.path, exc)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return False


_DIGESTS = "file_digests.json"


def bytes_digest(parts: Iterable[bytes]) -> str:
    """``files_digest`` of files holding ``parts`` (an in-memory IR hashes like its files)."""
    total = hashlib.sha256()
    for part in parts:
        total.update(hashlib.sha256(part).hexdigest().encode())
    return total.hexdigest()


def files_digest(paths: Iterable[str | os.PathLike]) -> str:
    """sha256 over the contents of ``paths`` (e.g. an IR's .xml and .bin).

    Each file's digest is remembered by (path, size, mtime), so an unchanged model is
    not read again on the next start.
    """
    memo = JsonCache(_DIGESTS)
    known = memo.load()
    total = hashlib.sha256()
    changed = False
    for p in paths:
        path = Path(p).resolve()
        st = path.stat()
        stamp = f"{path}|{st.st_size}|{st.st_mtime_ns}"
        digest = known.get(stamp)
        if not isinstance(digest, str):
            h = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            digest = known[stamp] = h.hexdigest()
            changed = True
        total.update(digest.encode())
    if changed:
        if len(known) > 256:  # keep the memo small: drop the oldest entries
            known = dict(list(known.items())[-128:])
        memo.replace_all(known)
    return total.hexdigest()
