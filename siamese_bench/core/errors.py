"""Errors a user can cause, shown as one line without a traceback (cli.main catches UserError).
Kept free of heavy imports so that every layer, the report included, can raise them and the
command line can catch them without loading torch or MLflow."""

from __future__ import annotations


class UserError(Exception):
    """Base of every error whose message alone tells the user what to fix."""


class ConfigError(UserError, ValueError):
    """Bad user input; the message names the option (or file, or column) at fault."""


def missing_extra(err: ImportError, extra: str, what: str) -> ConfigError:
    """The one line for an optional part whose package is not installed: name the extra."""
    return ConfigError(
        f"{what} needs the package {err.name or 'it imports'}, which is not installed: "
        f"pip install 'siamese-bench[{extra}]'"
    )
