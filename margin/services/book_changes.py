"""Pruning the database's log of changed accounts (`margin.dbtriggers.book_change_log`)."""

from django.db import connection

from margin.db import rows as sql_rows
from margin.dbtriggers import BOOK_CHANGES, BOOK_CHANGES_HORIZON


def book_changes_prune(*, keep_s: float) -> int:
    """Drop the log's rows below the bound taken at least `keep_s` ago, and take a new bound:
    each row stays between `keep_s` and twice that. One statement: a reader sees the rows and
    the horizon they were pruned to in the same snapshot. A bound is a snapshot's xmin, so no
    transaction can still note a change below it. Returns the rows dropped."""
    if connection.vendor != "postgresql":
        return 0
    ((removed,),) = sql_rows(
        f"""
        WITH moved AS (
          UPDATE {BOOK_CHANGES_HORIZON}
             SET pruned_below = next_below,
                 next_below = pg_snapshot_xmin(pg_current_snapshot()),
                 next_at = now()
           WHERE next_at <= now() - make_interval(secs => %s)
          RETURNING pruned_below
        ), removed AS (
          DELETE FROM {BOOK_CHANGES} WHERE xid < (SELECT pruned_below FROM moved)
          RETURNING 1
        )
        SELECT count(*) FROM removed
        """,
        [keep_s],
    )
    return removed
