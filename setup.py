"""Two compiled modules: the matching pass (bruteguard.match._core), which links the
system's PCRE2, and a replay's ban decisions (bruteguard._windows).

Everything else about the package is in pyproject.toml; Debian/Ubuntu need libpcre2-dev,
Fedora/RHEL pcre2-devel, to build it.
"""

from setuptools import Extension, setup

COMPILE_FLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension(
            "bruteguard.match._core",
            sources=["src/bruteguard/match/_core.c"],
            libraries=["pcre2-8"],
            extra_compile_args=COMPILE_FLAGS,
        ),
        Extension(
            "bruteguard._windows",
            sources=["src/bruteguard/_windows.c"],
            extra_compile_args=COMPILE_FLAGS,
        ),
    ]
)
