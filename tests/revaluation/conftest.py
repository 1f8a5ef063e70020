from datetime import timedelta

import pytest
from django.utils import timezone

from margin.services.reference import reference_data_ensure


@pytest.fixture
def reference(db):
    """The demo assets, instruments and risk parameters (version 1)."""
    return reference_data_ensure()


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def later(now):
    def at(seconds: float):
        return now + timedelta(seconds=seconds)

    return at
