"""Run the Procfile's processes under supervisord, which restarts any that dies.

honcho (the previous runner) stopped everything when one process died: a crashed worker took the
web and beat down with it. `python -m exchange_site.runner [Procfile]` writes a supervisord
configuration from the Procfile (the one list of processes) into var/ and runs supervisord in the
foreground; Ctrl-C stops all. Each process restarts after any exit, with supervisord's back-off,
and carries PROCESS_TYPE so its log lines say which one wrote them.
`python -m exchange_site.runner --ctl status` (or `pid worker`, `signal HUP web`) talks to it.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def procfile_processes(path: Path) -> dict[str, str]:
    """`name: command` lines, in order; blank lines and # comments skipped."""
    processes = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        processes[name.strip()] = command.strip()
    return processes


def supervisord_config(processes: dict[str, str], *, var: Path) -> str:
    bin_dir = Path(sys.executable).parent
    sections = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={var / 'supervisord.log'}",
        f"pidfile={var / 'supervisord.pid'}",
        "loglevel=warn",
        "",
        "[unix_http_server]",
        f"file={var / 'supervisor.sock'}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{var / 'supervisor.sock'}",
    ]
    for name, command in processes.items():
        # supervisord does no shell expansion: sh -c expands ${PORT:-8000}; exec keeps the pid.
        shell_command = command.replace("%", "%%").replace('"', '\\"')
        sections += [
            "",
            f"[program:{name}]",
            f'command=/bin/sh -c "exec {shell_command}"',
            f"directory={ROOT}",
            f'environment=PROCESS_TYPE="{name}",PATH="{bin_dir}:%(ENV_PATH)s"',
            "autostart=true",
            "autorestart=true",
            # Running 3 s counts as started; a process failing faster is retried 20 times.
            "startsecs=3",
            "startretries=20",
            # TERM to the process alone: Celery and gunicorn stop their children themselves (a
            # warm shutdown lets running tasks finish); the group is killed only after the wait.
            "stopasgroup=false",
            "killasgroup=true",
            "stopwaitsecs=30",
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            "redirect_stderr=true",
        ]
    return "\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("procfile", nargs="?", default=str(ROOT / "Procfile"))
    parser.add_argument("--var", default=os.environ.get("RUNNER_DIR", str(VAR)))
    parser.add_argument("--ctl", nargs=argparse.REMAINDER, help="supervisorctl arguments")
    args = parser.parse_args(argv)
    var = Path(args.var).resolve()
    config = var / "supervisord.conf"
    bin_dir = Path(sys.executable).parent
    if args.ctl is not None:
        os.execv(bin_dir / "supervisorctl", ["supervisorctl", "-c", str(config), *args.ctl])
    var.mkdir(parents=True, exist_ok=True)
    config.write_text(supervisord_config(procfile_processes(Path(args.procfile)), var=var))
    os.execv(bin_dir / "supervisord", ["supervisord", "-c", str(config)])


if __name__ == "__main__":
    main()
