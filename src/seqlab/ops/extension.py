"""Building seqlab's small C++ extensions on first use, and the fallback when that is impossible.

An extension is compiled with ``torch.utils.cpp_extension.load`` (~1 min, needs a C++ compiler
and ninja — on PATH or next to ``sys.executable``, where ``pip install ninja`` puts it) into
``$SEQLAB_EXTENSIONS_DIR``, else ``$TORCH_EXTENSIONS_DIR/seqlab``, else
``~/.cache/seqlab/extensions``, one folder per torch version and CPU ISA, and reused afterwards.
When it cannot be built (or ``SEQLAB_DISABLE_EXTENSIONS=1``) :meth:`LazyExtension.load` warns once
and returns None, and callers run their Python path (the same math).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import torch

logger = logging.getLogger(__name__)


def extension_dir() -> Path:
    """Where compiled extensions are cached (see the module docstring)."""
    if os.environ.get("SEQLAB_EXTENSIONS_DIR"):
        root = Path(os.environ["SEQLAB_EXTENSIONS_DIR"])
    elif os.environ.get("TORCH_EXTENSIONS_DIR"):
        root = Path(os.environ["TORCH_EXTENSIONS_DIR"]) / "seqlab"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "seqlab" / "extensions"
    return root / f"torch{torch.__version__.replace('+', '_')}"


def add_venv_ninja_to_path() -> bool:
    """Put the directory of ``sys.executable`` first on PATH if a ``ninja`` lies there.

    pip's ``ninja`` package installs the executable next to the interpreter (a venv's ``bin``),
    which is not on PATH when the venv is used without being activated (CI, IDEs).
    """
    folder = Path(sys.executable).parent
    if shutil.which("ninja", path=str(folder)) is None:
        return False
    os.environ["PATH"] = os.pathsep.join([str(folder), os.environ.get("PATH", "")]).rstrip(os.pathsep)
    return True


def build(name: str, sources: Sequence[Path], headers: Sequence[Path] = ()) -> ModuleType:
    """Compile (or load the cached build of) ``sources`` as one module ``name``; raises when
    impossible. torch rebuilds when a source changes; the ``headers`` they include are hashed
    into a define so that a change there rebuilds too."""
    from torch.utils import cpp_extension

    if os.environ.get("SEQLAB_DISABLE_EXTENSIONS") == "1":
        raise RuntimeError("SEQLAB_DISABLE_EXTENSIONS=1")
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler!r} not found on PATH)")
    if not cpp_extension.is_ninja_available() and not add_venv_ninja_to_path():
        raise RuntimeError("ninja is not installed (pip install ninja)")
    # the ISA is part of the name: a cache shared between machines never runs foreign code
    isa = torch.backends.cpu.get_cpu_capability().lower()
    flags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-signed-zeros", "-fassociative-math"]
    if isa == "avx512":  # torch reports avx512 only with F, BW, VL, DQ and FMA; ~10 % on the LN LSTM
        flags += ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mprefer-vector-width=512"]
    elif isa == "avx2":
        flags += ["-mavx2", "-mfma"]
    digest = hashlib.sha1(b"".join(path.read_bytes() for path in headers)).hexdigest()[:16]
    flags.append(f"-DSEQLAB_HEADERS_SHA1={digest}")
    build_dir = extension_dir() / isa
    build_dir.mkdir(parents=True, exist_ok=True)
    return cpp_extension.load(
        name=f"{name}_{isa}",
        sources=[str(source) for source in sources],
        extra_cflags=flags,
        build_directory=str(build_dir),
        verbose=False,
    )


class LazyExtension:
    """One extension, built by ``builder`` on the first :meth:`load`; ``state`` holds the module
    or the reason it is unavailable (``what`` names it in the one warning)."""

    def __init__(self, builder: Callable[[], ModuleType], what: str) -> None:
        self.builder, self.what = builder, what
        self.state: dict[str, ModuleType | str | None] = {"module": None, "error": None}
        self._lock = threading.Lock()

    def load(self) -> ModuleType | None:
        """The compiled module, building it on first call; None (after one warning) if it cannot be built."""
        state = self.state
        if state["module"] is not None or state["error"] is not None:
            return state["module"]  # type: ignore[return-value]
        with self._lock:
            if state["module"] is None and state["error"] is None:
                try:
                    state["module"] = self.builder()
                except Exception as err:  # any build failure means: use the Python path
                    state["error"] = f"{type(err).__name__}: {err}".strip()
                    logger.debug("seqlab extension build failed: %s", self.what, exc_info=True)
                    warnings.warn(
                        f"seqlab: the {self.what} is unavailable ({state['error'].splitlines()[0]}); "
                        "using the Python implementation (same results, slower)",
                        RuntimeWarning,
                        stacklevel=3,
                    )
        return state["module"]  # type: ignore[return-value]
