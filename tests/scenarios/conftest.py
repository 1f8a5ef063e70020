from tests.revaluation.conftest import later, market, now, reference  # noqa: F401
