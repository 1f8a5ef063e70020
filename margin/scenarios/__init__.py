"""Risk scenarios: a book and a price path replayed through the real revaluation
pipeline in a sandbox that never touches the live book. The contract is
tests/data/scenarios/README.md; `manage.py run_scenario` and the desk's scenario page call
`scenario_run`."""
