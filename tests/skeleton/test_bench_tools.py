"""`make soak` and `make loadtest` start manage.py and the Procfile's processes from the
checkout's root: when the tools moved into margin/bench/ their root silently became margin/,
and both failed at their first step ("can't open file .../margin/manage.py")."""

from margin.bench import loadtest, soak


def test_the_soak_and_load_tools_start_processes_from_the_checkouts_root():
    for tool in (soak, loadtest):
        assert (tool.PROJECT_ROOT / "manage.py").is_file(), tool.__name__
        assert (tool.PROJECT_ROOT / "Procfile").is_file(), tool.__name__
