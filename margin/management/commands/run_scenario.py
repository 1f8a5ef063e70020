"""python manage.py run_scenario FILE|- : a risk scenario through the real pipeline, in a
sandbox that never touches the live book (tests/data/scenarios/README.md). Prints one JSON
document; bad input exits 2 with one line naming the field."""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from margin.scenarios.loader import ScenarioError, scenario_parse
from margin.scenarios.runner import scenario_run


class Command(BaseCommand):
    help = "Run a risk scenario (a book and a price path) and print what the pipeline did."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the scenario JSON file, or - for standard input")

    def handle(self, *args, file: str, **options):
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"file: cannot read {file!r} ({error})", returncode=2) from error
        try:
            result = scenario_run(scenario_parse(text))
        except ScenarioError as error:
            raise CommandError(str(error), returncode=2) from error
        self.stdout.write(json.dumps(result, indent=1))
