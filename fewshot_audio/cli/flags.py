"""Library messages in the words of the command line: the library names a parameter as ``name=value``; the CLI
says the flag that sets it (``out=runs/a exists`` -> ``--out runs/a exists``, ``overwrite=True`` -> ``--overwrite``)."""

from __future__ import annotations

import argparse
import re

_PARAM = re.compile(r"(?<![\w.\-/])([a-z][a-z0-9_]*)=(True\b)?(?=(.?))")


def leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser under ``parser`` that runs a command (has no subcommands of its own)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    return [leaf for action in subs for child in dict.fromkeys(action.choices.values()) for leaf in leaf_parsers(child)]


def option_map(parser: argparse.ArgumentParser) -> dict[str, tuple[str, bool]]:
    """``dest -> (how the command line names it, whether it is a switch)`` for one command's parser: ``--out`` for
    an option, the bare name for a positional argument."""
    out = {}
    for action in parser._actions:
        if action.dest in (argparse.SUPPRESS, "help"):
            continue
        longest = max(action.option_strings, key=len) if action.option_strings else action.dest
        out[action.dest] = (longest, action.nargs == 0)
    return out


def attach_option_maps(parser: argparse.ArgumentParser) -> None:
    """Give every command's parsed arguments its :func:`option_map` (as ``_options``)."""
    for leaf in leaf_parsers(parser):
        leaf.set_defaults(_options=option_map(leaf))


def in_flags(message: str, options: dict[str, tuple[str, bool]]) -> str:
    """``message`` with each ``name=`` of a known option turned into the option (a switch's ``name=True`` into the
    bare switch); other ``name=value`` pairs (config keys, unknown names) are left as they are.

    Examples
    --------
    >>> opts = {"out": ("--out", False), "overwrite": ("--overwrite", True), "dataset": ("dataset", False)}
    >>> in_flags("out=a.csv exists; pass overwrite=True to replace it", opts)
    '--out a.csv exists; pass --overwrite to replace it'
    >>> in_flags("dataset=x does not exist; features.n_mels=3 is too few", opts)
    'dataset x does not exist; features.n_mels=3 is too few'
    >>> in_flags("choose another out=, or pass overwrite=True", opts)
    'choose another --out, or pass --overwrite'
    """

    def swap(m: re.Match) -> str:
        found = options.get(m.group(1))
        if found is None:
            return m.group(0)
        name, switch = found
        if (switch and m.group(2)) or (not m.group(2) and m.group(3) in ("", " ", ",", ";", ")")):
            return name  # a switch, or a name with no value after it ("choose another out=")
        return f"{name} {m.group(2) or ''}"

    return _PARAM.sub(swap, message)
