from rest_framework.pagination import CursorPagination


class NewestFirst(CursorPagination):
    """Opaque cursors: stable under inserts, which bots polling a list need."""

    ordering = "-pk"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class OldestFirst(NewestFirst):
    ordering = "pk"
