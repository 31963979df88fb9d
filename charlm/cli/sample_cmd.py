"""`charlm sample CKPT`: stream generated text to stdout."""

from __future__ import annotations

import sys
from pathlib import Path

from charlm.cli import args as A
from charlm.config import DEVICES
from charlm.corpus.files import CorpusSource, read_text
from charlm.errors import UsageError
from charlm.paths import missing_path_problem, user_path


def register(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a checkpoint",
                       description="Generate text from a checkpoint (a run directory means its best/).")
    p.add_argument("checkpoint", help="checkpoint or run directory")
    prime = p.add_mutually_exclusive_group()
    prime.add_argument("--prime", default="", help="text to start from")
    prime.add_argument("--prime-file", type=Path, help="read the text to start from from a file")
    p.add_argument("--length", type=A.positive_int, default=500, help="characters to generate (default 500)")
    p.add_argument("--temperature", type=A.nonneg_float, default=0.8, help="0 = greedy; default 0.8")
    p.add_argument("--top-k", type=A.nonneg_int, default=0, help="sample among the k likeliest (0 = off)")
    p.add_argument("--top-p", type=A.unit_open_closed, default=1.0, help="nucleus sampling mass in (0, 1] (1 = off)")
    p.add_argument("--seed", type=A.nonneg_int, help="same seed, same text")
    p.add_argument("--num-samples", type=A.positive_int, default=1, help="samples, generated in one batch")
    p.add_argument("--stop", help="stop a sample once this string appears")
    p.add_argument("--device", choices=DEVICES, default="cpu")
    p.add_argument("--weights", choices=("auto", "fp32", "bf16", "int8", "reference"), default="auto",
                   help="precision of the per-character step (default auto: the fastest here that keeps "
                   "the model's loss within 0.003 nats/char of fp32; reference: the model's own forward pass)")
    p.add_argument("--no-prime", action="store_true", help="do not echo the prime before the sample")
    p.set_defaults(func=run)


MAX_SAMPLES = 256   # one batch: beyond this the hidden states alone outgrow a laptop's memory
# A prompt is fed one character at a time and the model remembers a few hundred of them: a
# megabyte is already far more than it can use, and feeding a corpus-sized one would take minutes.
MAX_PRIME_BYTES = 1_000_000


def run(args) -> int:
    from charlm.generate.sampler import SampleControls, Sampler, check_prompt, unknown_note
    from charlm.machine.device import pick_device
    from charlm.machine.threads import ThreadGovernor
    from charlm.model.checkpoint import load_checkpoint
    threads = ThreadGovernor().watch()      # the load is measured while the model loads
    if args.num_samples > MAX_SAMPLES:
        raise UsageError(f"--num-samples {args.num_samples} is too many for one batch", f"use at most {MAX_SAMPLES}")
    if args.stop == "":
        raise UsageError("--stop is empty", "give the string to stop at, e.g. --stop $'\\n\\n'")
    controls = SampleControls(args.temperature, args.top_k, args.top_p)
    controls.validate()
    prime = args.prime if args.prime_file is None else _read_prime(args.prime_file)
    device = pick_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, device)
    threads.start()      # one thread per free core: a busy core would stall every step
    sampler = Sampler(ckpt.model, ckpt.vocab, device, weights=args.weights)
    check_prompt(ckpt.vocab, prime)          # before the warning: an unusable prompt is one error line
    note = unknown_note(ckpt.vocab, prime)
    if note:
        print(f"charlm: warning: {note}", file=sys.stderr)
    out = sys.stdout
    stream = sampler.stream(prime, controls, args.length, args.seed, args.num_samples, stop=args.stop)
    if args.num_samples == 1:
        _stream_one(out, stream, prime if not args.no_prime else "")
    else:
        _print_batch(out, stream, args.num_samples, prime if not args.no_prime else "")
    return 0


def _read_prime(path: Path) -> str:
    """The text of --prime-file, refused with a reason when it cannot be a prompt."""
    path = user_path(path)
    if path.is_dir():
        raise UsageError(f"--prime-file {path} is a directory", "give a text file to start from")
    if not path.is_file():
        raise UsageError(f"--prime-file: {missing_path_problem(path)}", "check the path")
    size = path.stat().st_size
    if size > MAX_PRIME_BYTES:
        raise UsageError(f"--prime-file {path} is {size / 1e6:.1f} MB, too long for a prompt (at most "
                         f"{MAX_PRIME_BYTES / 1e6:g} MB)", "keep the part to continue from: its last lines matter most")
    try:
        text = read_text(CorpusSource(path.stem, (path,)))
    except UsageError as e:
        raise UsageError(f"--prime-file: {e.problem}", "give a UTF-8 text file") from None
    if not text:
        raise UsageError(f"--prime-file {path} is empty", "write the text to start from in it, or drop --prime-file")
    return text


def _stream_one(out, stream, prime: str) -> None:
    out.write(prime)
    for (tok,) in stream:
        out.write(tok.char)
        out.flush()
    out.write("\n")


def _print_batch(out, stream, n: int, prime: str) -> None:
    texts, done = [[] for _ in range(n)], [False] * n
    for tokens in stream:
        for text, tok, finished in zip(texts, tokens, done):
            if not finished:                  # a sample that reached --stop keeps no more characters
                text.append(tok.char)
        done = list(stream.finished)
    for i, t in enumerate(texts):
        out.write(f"--- sample {i + 1} ---\n{prime}{''.join(t)}\n")
