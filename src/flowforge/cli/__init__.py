"""The ``flowforge`` command. Thin: parses arguments and calls the library.

Each sub-command is a module with ``add_parser(subparsers)``; the parser sets
``run=<function(args) -> exit status>``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from ..errors import FlowforgeError

COMMANDS = ["train", "evaluate", "sample", "plot", "check", "fit_target", "vae", "interpolate", "manipulate",
            "inpaint", "distill", "export"]


def make_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="flowforge",
        description="Normalizing flows on PyTorch: train, evaluate, sample, plot, check.",
        epilog="Run `flowforge COMMAND --help` for a command's options and examples. "
        "`flowforge train` with no arguments trains Real NVP on two moons.",
    )
    parser.add_argument("--version", action="version", version=f"flowforge {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the traceback of any error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parser(sub)
    for command in sub.choices.values():  # also accepted after the command name
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="print the traceback of any error")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status: 0 ok, 1 a check failed or a bug, 2 bad input.

    A :class:`~flowforge.errors.FlowforgeError` (the user's configuration, data or
    checkpoint) prints one line; any other exception is a bug and prints its
    traceback. ``--debug`` prints the traceback in both cases.
    """
    _own_the_process()
    args = make_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except FlowforgeError as e:
        if args.debug:
            traceback.print_exc()
        print(f"flowforge {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001  (a bug: say so, with the traceback to report)
        traceback.print_exc()
        print(f"flowforge {args.command}: internal error ({type(e).__name__}), a bug in flowforge or a library "
              "it uses, not in your input; please report it with the traceback above", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"flowforge {args.command}: interrupted", file=sys.stderr)
        return 130


def _own_the_process() -> None:
    """Process-wide settings of the command (a library import sets none), unless the user set them.

    OpenMP worker threads that spin while waiting make small convolutions 5-10x
    slower as soon as another process shares the cores (measured on 2 cores:
    Glow on digits 1.5 s/step vs 0.5 s/step); sleeping ones cost nothing then.
    Effective when torch is not imported yet, as in ``flowforge ...`` and
    ``python -m flowforge``. Pictures are drawn off-screen.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("MPLBACKEND", "Agg")


if __name__ == "__main__":
    sys.exit(main())
