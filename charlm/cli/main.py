"""`charlm`: the TUI with no arguments, headless commands otherwise."""

from __future__ import annotations

import errno
import os
import sys

from charlm.cli.args import Parser
from charlm.errors import UsageError


def build_parser() -> Parser:
    from charlm.cli import corpus_cmd, eval_cmd, info_cmd, neurons_cmd, novelty_cmd, probe_cmd, sample_cmd, train_cmd
    from charlm.paths import checkpoints_place, corpora_place
    parser = Parser(prog="charlm", description="Train a character-level language model on your own text, "
                    "then sample from it. With no command, opens the app.",
                    epilog=f"runs: {checkpoints_place().path} · corpora: {corpora_place().path} "
                    "(charlm info shows why; CHARLM_CHECKPOINTS and CHARLM_CORPORA move them)")
    parser.add_argument("--version", action="version", version=f"charlm {__import__('charlm').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in (train_cmd, sample_cmd, eval_cmd, probe_cmd, neurons_cmd, novelty_cmd, info_cmd, corpus_cmd):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if not argv:
            from charlm.tui.run import run_app
            return run_app()
        from charlm.cli.signals import ending_quietly
        with ending_quietly():   # SIGTERM, SIGHUP; training sets its own "save and stop" while it trains
            args = build_parser().parse_args(argv)
            if args.command is None:
                build_parser().print_help()
                return 0
            if getattr(args, "checkpoint", None) is not None:
                # A mistyped CKPT is told at once, not after the command has imported torch (~2 s).
                from charlm.runs.checkpoint_dir import resolve_checkpoint
                resolve_checkpoint(args.checkpoint)
            return args.func(args) or 0
    except UsageError as e:
        _print_error(e.message)
        from charlm.train.distributed import let_rank0_speak
        let_rank0_speak()
        return 2
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            raise
        # Paths typed in go through charlm.paths.user_path; this is the net for one that did not.
        from charlm.paths import shown_path
        _print_error(f"a path is too long for this system: {shown_path(e.filename or '')}; check the path")
        return 2
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except BrokenPipeError:
        # `charlm sample ... | head`: the reader left; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _print_error(message: str) -> None:
    from charlm.train.distributed import is_writer
    if is_writer():         # under torchrun every rank meets the same error: rank 0 says it
        print(f"charlm: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
