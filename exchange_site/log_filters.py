"""Filters of the console log handler (settings.LOGGING): a quiet log that still says what went
wrong, once."""

import logging
import os


class ProcessType(logging.Filter):
    """Stamps each record with the process that wrote it (web, worker, beat): the runner starts
    each process with PROCESS_TYPE, and their lines share one terminal."""

    def __init__(self) -> None:
        super().__init__()
        self.process_type = os.environ.get("PROCESS_TYPE", "-")

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_type = self.process_type
        return True


class RoutineTasksAtDebug(logging.Filter):
    """Celery's INFO lines about the periodic jobs (beat sending them, the worker receiving and
    finishing them: three lines a second for the market tick alone) are DEBUG lines: shown only
    when the logger that wrote them is set to DEBUG. Failures of those jobs stay ERROR."""

    def __init__(self, tasks: list[str]) -> None:
        super().__init__()
        self.tasks = tuple(tasks)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith("celery"):
            return True
        message = record.getMessage()
        if not any(task in message for task in self.tasks):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class ClientErrorsOneLine(logging.Filter):
    """A 4xx answer (a 404, a 403) is the client's mistake, not the server's: Django logs it with
    the exception's traceback; one line with the method, path and status is what an operator
    needs. 5xx keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.name == "django.request" and status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
