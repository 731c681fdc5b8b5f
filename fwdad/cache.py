"""The on-disk cache (`cache=True`): where it lives, what it is keyed on, how it is read safely.

* Key: content, never names. `fingerprint` turns every object a function reads (module
  attributes, aliases of functions, constant arrays) into text that changes when the object
  does; `environment` adds the Python, NumPy, Numba and fwdad versions.
* Directory: one that is another user's, group/world-writable or not writable is refused with
  one CacheWarning, and fwdad runs without the disk cache (`usable_directory`).
* Nothing fwdad reads from disk is unpickled or executed: type information is JSON with a
  checksum, decoded through a whitelist of plain Numba types (`encode_types`, `decode_types`).
  Numba's own cache files are pickles: fwdad records their sha256 in a manifest after Numba
  writes them and checks them before Numba reads them (`guard`), so a corrupt file is deleted
  and rebuilt, never loaded.
"""
import contextlib
import enum
import hashlib
import json
import os
import sys
import tempfile
import types as pytypes
import warnings

import numba
import numpy as np
from numba.core import types

from .errors import CacheWarning, user_stacklevel
from .frontend.activity import FunctionTypes, Kind
from .frontend.parse import code_fingerprint, python_function
from .frontend.resolve import MISSING
from .version import __version__

try:
    import fcntl
except ImportError:                      # Windows: no advisory locks; manifests still checked
    fcntl = None


# ---- the directory -----------------------------------------------------------------------------
def root_directory():
    return os.environ.get("FWDAD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "fwdad")


def versioned_directory(root):
    return os.path.join(root, f"v{__version__}-numba{numba.__version__}")


_REFUSED = set()


def usable_directory():
    """fwdad's cache directory, created private (0700), or None with one warning per directory."""
    root = root_directory()
    path = versioned_directory(root)
    try:
        problem = directory_problem(root) or directory_problem(path)
    except OSError as error:
        problem = f"it cannot be created or written ({error.strerror or error})"
    if problem is None:
        return path
    if path not in _REFUSED:
        _REFUSED.add(path)
        warnings.warn(CacheWarning(
            f"fwdad does not use the cache directory {path}: {problem}. It runs without the "
            "on-disk cache (compiled code is not reused by the next process).\nWhat to do: set "
            "FWDAD_CACHE_DIR to a directory that only you can write (mode 0700), or use cache=False."),
            stacklevel=user_stacklevel())
    return None


def directory_problem(path):
    """Why `path` is unsafe or unusable for the cache (None if fine); creates it if missing."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    status = os.stat(path)
    posix = os.name == "posix"            # Windows has no owner ids and no meaningful mode bits
    if posix and status.st_uid != os.getuid():
        return f"it belongs to another user (uid {status.st_uid}), who could make fwdad run their code"
    if posix and status.st_mode & 0o022:
        return (f"it is writable by group or others (mode {oct(status.st_mode & 0o777)}), who could "
                "make fwdad run their code")
    with tempfile.TemporaryFile(dir=path):
        pass
    return None


def numba_can_cache(path):
    """Whether Numba finds a writable place to cache functions defined in the file `path`
    (next to it, NUMBA_CACHE_DIR or the user's cache directory): importing fwdad needs none."""
    namespace = {}
    exec(compile("def probe():\n    pass\n", path, "exec"), namespace)
    try:
        numba.core.caching.FunctionCache(namespace["probe"])
        return True
    except Exception:
        return False


# ---- the key -----------------------------------------------------------------------------------
def environment():
    """The versions compiled code and type information depend on."""
    return (f"fwdad {__version__} numba {numba.__version__} numpy {np.__version__} "
            f"python {sys.version} {sys.platform}")


def fingerprint(value):
    """Text that changes whenever what Numba would freeze from `value` changes.

    Plain values by repr, arrays by content hash, functions by module, qualified name and code,
    modules and library objects by name and package version. An object of another kind is
    keyed on its identity: correct, but not reused by another process.
    """
    if value is MISSING:
        return "missing"
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, np.generic):
        return f"numpy.{value.dtype}:{value!r}"
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return f"object array:{id(value)}"
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return (f"ndarray:{value.dtype.str}:{value.shape}:{value.flags.f_contiguous}:"
                f"{value.flags.writeable}:{digest}")
    if isinstance(value, tuple):
        kind = type(value)
        return f"{kind.__module__}.{kind.__qualname__}({', '.join(fingerprint(v) for v in value)})"
    if isinstance(value, enum.Enum):
        return f"enum:{qualified(type(value))}.{value.name}={fingerprint(value.value)}"
    if isinstance(value, pytypes.ModuleType):
        return f"module:{value.__name__}:{package_version(value.__name__)}"
    function = python_function(value)
    if isinstance(function, pytypes.FunctionType):
        options = sorted(getattr(value, "targetoptions", {}).items())
        code = hashlib.sha256(repr(code_fingerprint(function.__code__)).encode()).hexdigest()
        return f"function:{qualified(function)}:{code}:{options}"
    module = getattr(value, "__module__", None)
    if callable(value) and isinstance(module, str) and hasattr(value, "__name__"):   # ufuncs, classes, builtins
        return f"{type(value).__name__}:{qualified(value)}:{package_version(module)}"
    return f"object:{qualified(type(value))}:{id(value)}"


def qualified(obj):
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def package_version(module_name):
    package = sys.modules.get((module_name or "").split(".")[0])
    return str(getattr(package, "__version__", ""))


# ---- type information as JSON ------------------------------------------------------------------
SCALAR_TYPES = {str(t): t for t in (types.boolean, types.none, *types.integer_domain, *types.real_domain)}
LAYOUTS = ("C", "F", "A")


class NotStorable(Exception):
    """A Numba type outside the plain set fwdad stores: that specialization is typed again."""


def encode_type(t):
    if SCALAR_TYPES.get(str(t)) == t:
        return str(t)
    if type(t) is types.Array:
        return ["array", encode_type(t.dtype), t.ndim, t.layout, t.mutable, t.aligned]
    if type(t) is types.UniTuple:
        return ["unituple", encode_type(t.dtype), t.count]
    if type(t) is types.Tuple:
        return ["tuple", [encode_type(i) for i in t.types]]
    raise NotStorable(str(t))


def decode_type(data):
    if isinstance(data, str):
        return SCALAR_TYPES[data]
    tag = data[0]
    if tag == "array":
        _, dtype, ndim, layout, mutable, aligned = data
        if layout not in LAYOUTS or not isinstance(ndim, int) or not 0 <= ndim <= 64:
            raise ValueError(f"bad array type {data!r}")
        return types.Array(decode_type(dtype), ndim, layout, readonly=not mutable, aligned=bool(aligned))
    if tag == "unituple":
        return types.UniTuple(decode_type(data[1]), int(data[2]))
    if tag == "tuple":
        return types.Tuple(tuple(decode_type(i) for i in data[1]))
    raise ValueError(f"unknown type tag {tag!r}")


def encode_kind(kind):
    if kind is None:
        return None
    return {"shape": kind.shape, "dtype": kind.dtype, "ndim": kind.ndim,
            "items": [encode_kind(i) for i in kind.items]}


def decode_kind(data):
    if data is None:
        return None
    if data["shape"] not in ("scalar", "array", "tuple") or data["dtype"] not in ("", "float32", "float64"):
        raise ValueError(f"bad kind {data!r}")
    return Kind(data["shape"], data["dtype"], int(data["ndim"]), tuple(decode_kind(i) for i in data["items"]))


def encode_types(function_types):
    """FunctionTypes as checksummed JSON text, or None if a type is outside the stored set."""
    try:
        payload = {"kinds": {k: encode_kind(v) for k, v in function_types.kinds.items()},
                   "numba_types": {k: encode_type(v) for k, v in function_types.numba_types.items()},
                   "return_kind": encode_kind(function_types.return_kind),
                   "arg_types": [encode_type(t) for t in function_types.arg_types],
                   "return_type": encode_type(function_types.return_type)}
    except NotStorable:
        return None
    text = json.dumps(payload, sort_keys=True)
    return json.dumps({"sha256": hashlib.sha256(text.encode()).hexdigest(), "payload": payload}, sort_keys=True)


def decode_types(text, arg_types):
    """The FunctionTypes in `text` if its checksum holds and it is for `arg_types`, else None."""
    try:
        stored = json.loads(text)
        payload = stored["payload"]
        if hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest() != stored["sha256"]:
            return None
        decoded = FunctionTypes({k: decode_kind(v) for k, v in payload["kinds"].items()},
                                {k: decode_type(v) for k, v in payload["numba_types"].items()},
                                decode_kind(payload["return_kind"]),
                                tuple(decode_type(t) for t in payload["arg_types"]),
                                decode_type(payload["return_type"]))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    return decoded if decoded.arg_types == tuple(arg_types) else None


# ---- Numba's cache files, checked against a manifest -------------------------------------------
class NumbaCacheFiles:
    """The index and data files Numba keeps for one cached dispatcher, and fwdad's manifest of them."""

    def __init__(self, index_path):
        self.directory, index_name = os.path.split(index_path)
        self.base = index_name[:-len(".nbi")]
        self.manifest = os.path.join(self.directory, self.base + ".fwdad-manifest.json")

    def names(self):
        try:
            listing = os.listdir(self.directory)
        except OSError:
            return []
        return sorted(n for n in listing if n == self.base + ".nbi" or (
            n.startswith(self.base + ".") and n.endswith(".nbc") and n[len(self.base) + 1:-4].isdigit()))

    def digests(self):
        found = {}
        for name in self.names():
            try:
                with open(os.path.join(self.directory, name), "rb") as f:
                    found[name] = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                pass
        return found

    def recorded(self):
        try:
            with open(self.manifest) as f:
                manifest = json.load(f)
            return manifest if isinstance(manifest, dict) else {}
        except (OSError, ValueError):
            return {}

    def verify(self):
        """Delete the files (and the manifest) unless every one matches the manifest."""
        present = self.digests()
        recorded = self.recorded()
        if all(recorded.get(name) == digest for name, digest in present.items()):
            return True
        for name in list(present) + [os.path.basename(self.manifest)]:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.directory, name))
        return False

    def record(self):
        from .codegen import write_atomically
        with contextlib.suppress(OSError):   # unrecorded files are rebuilt next time: never an error
            write_atomically(self.manifest, json.dumps(self.digests(), sort_keys=True))

    @contextlib.contextmanager
    def locked(self):
        """One process at a time checks, loads, saves and records these files (where it can lock)."""
        lock = None
        if fcntl is not None:
            with contextlib.suppress(OSError):
                lock = open(os.path.join(self.directory, self.base + ".fwdad-lock"), "a")
        if lock is None:
            yield
            return
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def guard(dispatcher):
    """Make a cached Numba dispatcher check its files before loading and record them after saving."""
    numba_cache = getattr(dispatcher, "_cache", None)
    index_path = getattr(getattr(numba_cache, "_cache_file", None), "_index_path", None)
    if index_path is None:
        return dispatcher
    files = NumbaCacheFiles(index_path)
    load, save = numba_cache.load_overload, numba_cache.save_overload

    def checked_load(sig, target_context):
        with files.locked():
            files.verify()
            return load(sig, target_context)

    def recorded_save(sig, data):
        with files.locked():
            files.verify()                   # Numba reads the index before adding to it
            save(sig, data)
            files.record()

    numba_cache.load_overload, numba_cache.save_overload = checked_load, recorded_save
    return dispatcher


def njit(function, cache, **options):
    """numba.njit(function); with `cache`, Numba's disk cache guarded by a manifest (and no disk
    cache when Numba finds no writable place for it)."""
    if cache:
        try:
            return guard(numba.njit(cache=True, **options)(function))
        except RuntimeError:             # "cannot cache function ...: no locator available"
            pass
    return numba.njit(**options)(function)
