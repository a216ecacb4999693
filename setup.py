"""The compiled matching pass (bruteguard.match._core) links the system's PCRE2.

Everything else about the package is in pyproject.toml; Debian/Ubuntu need libpcre2-dev,
Fedora/RHEL pcre2-devel, to build it.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "bruteguard.match._core",
            sources=["src/bruteguard/match/_core.c"],
            libraries=["pcre2-8"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
