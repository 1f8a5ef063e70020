"""The engine's command line: `python -m margin.engine quote FILE [--explain]`.

Reads a quote request (vectors/README.md; `-` reads standard input) and prints the answer as
JSON. Input the engine refuses exits with status 2 and one line on standard error naming the
field path and what is wrong with it.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from margin.engine.errors import EngineInputError
from margin.engine.explain import explain_account
from margin.engine.reference import quote_account
from margin.engine.request import parse_quote_request, render_quote

BAD_INPUT = 2


def _read_request(source: str) -> object:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise EngineInputError(source, f"cannot read: {error.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise EngineInputError(
            "request", f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None


def quote(source: str, *, explain: bool) -> dict:
    """The answer to the quote request read from `source` (a path, or `-` for stdin)."""
    account = parse_quote_request(_read_request(source))
    result = quote_account(account)
    return render_quote(result, explain_account(account, result) if explain else None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m margin.engine", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    quote_command = commands.add_parser("quote", help="answer a quote request (vectors/README.md)")
    quote_command.add_argument("file", help="the request as JSON; - reads standard input")
    quote_command.add_argument("--explain", action="store_true", help="add every figure's steps")
    arguments = parser.parse_args(argv)
    try:
        answer = quote(arguments.file, explain=arguments.explain)
    except EngineInputError as error:
        print(error, file=sys.stderr)
        return BAD_INPUT
    json.dump(answer, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
