"""Builds the optional compiled parts; everything else is declared in pyproject.toml.

- ``wsdoctor.protocol._connection_c``: Cython compiles the protocol core's own
  ``_connection.py`` (the one source; ``_connection.pxd`` beside it declares types),
  so the compiled and the pure-Python core cannot drift apart.
- ``wsdoctor.aio._wire_c``: the same for the connection's per-message path
  (``aio/_wire.py`` and ``aio/_wire.pxd``), which calls the compiled core directly.
- ``wsdoctor.protocol._speedups``: the C masking loop.

Both are optional: where no C compiler works (``CC=false``) or Cython is missing, the
install still succeeds and the package runs its pure-Python modules.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Extensions are accelerators: a failed compile is a warning, never a failed install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (CC=false, a bare container)
            print(f"warning: wsdoctor's compiled speedups were not built ({exc}); using pure Python")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"warning: {ext.name} was not built ({exc}); its pure-Python module is used")


def extensions() -> list[Extension]:
    exts = [Extension("wsdoctor.protocol._speedups", ["src/wsdoctor/protocol/_speedups.c"], optional=True)]
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("warning: Cython is not installed; the protocol core stays pure Python")
        return exts
    # Cython pairs a module with the .pxd of the same name, so each source and its
    # declarations are copied under the extension's name into build/ (never edited there).
    compiled = []
    for package, name in (("protocol", "_connection"), ("aio", "_wire")):
        generated = Path("build/cython/wsdoctor") / package
        generated.mkdir(parents=True, exist_ok=True)
        for suffix in (".py", ".pxd"):
            source = Path(f"src/wsdoctor/{package}/{name}{suffix}").read_bytes()
            if suffix == ".py":
                # The digest of the source lets the package refuse an extension built from an
                # older source (an editable install edited since its last build).
                source += f"\nSOURCE_DIGEST = {hashlib.sha256(source).hexdigest()!r}\n".encode()
            target = generated / (name + "_c" + suffix)
            if not target.exists() or target.read_bytes() != source:
                target.write_bytes(source)
        compiled.append(Extension(f"wsdoctor.{package}.{name}_c", [str(generated / (name + "_c.py"))], optional=True))
    for ext in compiled:  # one at a time: a Cython error in one leaves the other compiled
        try:
            exts += cythonize(
                [ext],
                language_level=3,
                include_path=["build/cython"],
                # The .py file's annotations are for mypy; the .pxd carries the C types.
                compiler_directives={"annotation_typing": False, "boundscheck": False, "wraparound": False},
                quiet=True,
            )
        except Exception as exc:  # the module stays pure Python (scripts/test notices)
            print(f"warning: Cython could not compile {ext.name} ({exc}); it stays pure Python")
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
