import pytest

from tests.registry.store import shared_store


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory):
    """Real sklearn models logged into a real sqlite MLflow store (once per worker)."""
    return shared_store(tmp_path_factory)


@pytest.fixture
def model_name(request) -> str:
    """A registered-model name no other test uses, so tests share the store safely."""
    return "m-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:80]
