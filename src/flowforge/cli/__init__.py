"""The ``flowforge`` command. Thin: parses arguments and calls the library.

Each sub-command is a module with ``add_parser(subparsers)``; the parser sets
``run=<function(args) -> exit status>``.
"""
from __future__ import annotations

import argparse
import sys

from . import check, distill, evaluate, export, fit_target, inpaint, interpolate, manipulate, plot, sample, train, vae
from .common import USER_ERRORS

COMMANDS = [train, evaluate, sample, plot, check, fit_target, vae, interpolate, manipulate, inpaint, distill, export]


def make_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="flowforge",
        description="Normalizing flows on PyTorch: train, evaluate, sample, plot, check.",
        epilog="Run `flowforge COMMAND --help` for a command's options and examples. "
        "`flowforge train` with no arguments trains Real NVP on two moons.",
    )
    parser.add_argument("--version", action="version", version=f"flowforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 check failed, 2 bad input)."""
    args = make_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (*USER_ERRORS, ValueError) as e:  # library validation errors (ValueError) carry clear messages too
        print(f"flowforge {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"flowforge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
