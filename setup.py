"""Builds the optional C accelerator; everything else is declared in pyproject.toml.

The extension is marked optional: where no C compiler is available the install still
succeeds and the pure-Python masking in wsdoctor.protocol._mask is used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("wsdoctor.protocol._speedups", ["src/wsdoctor/protocol/_speedups.c"], optional=True),
    ]
)
