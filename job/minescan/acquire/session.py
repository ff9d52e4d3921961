"""Earth Engine sessions: a real one with credentials, or an offline one for plans and tests.

The offline session initialises the client from the algorithm list earthengine-api ships
for its own tests (`ee/tests/algorithms.json`, through `ee.apitestcase.GetAlgorithms`), with
every network hook replaced, so graphs can be built and serialised with no credentials and
no network. Nothing can be computed or exported in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import InputError, TransientError

AUTH_HELP = (
    "no Earth Engine credentials found. On a laptop run `earthengine authenticate` (or "
    "`gcloud auth application-default login --scopes=https://www.googleapis.com/auth/earthengine,"
    "https://www.googleapis.com/auth/cloud-platform`); in a pod use Workload Identity with a "
    "service account registered for Earth Engine. See docs/ACQUIRE.md"
)
PROJECT_HELP = (
    "no Earth Engine project: pass --project (a Cloud project registered for Earth Engine) "
    "or run `earthengine set_project PROJECT`"
)
OFFLINE_PROJECT = "minescan-dry-run"


def initialise(project: str | None) -> None:
    """Initialise Earth Engine with the user's persistent or application-default credentials."""
    import ee

    try:
        credentials = ee.data.get_persistent_credentials()
    except ee.EEException:
        raise InputError(AUTH_HELP) from None
    try:
        ee.Initialize(credentials, project=project)
    except ee.EEException as exc:
        text = str(exc)
        if "no project found" in text or "has not been used in project" in text:
            raise InputError(PROJECT_HELP) from None
        if "permission" in text.lower() or "not registered" in text.lower():
            raise InputError(f"Earth Engine refused project {project!r}: {text.splitlines()[0]}") from None
        raise TransientError(f"cannot reach Earth Engine ({text.splitlines()[0]}); retry") from None


@contextmanager
def offline(project: str = OFFLINE_PROJECT) -> Iterator[None]:
    """An Earth Engine client initialised without credentials or network; reset on exit."""
    import ee
    from ee import apitestcase, deprecation

    saved = (ee.data._install_cloud_api_resource, ee.data.getAlgorithms,
             deprecation._FetchDataCatalogStac)
    ee.Reset()
    ee.data._install_cloud_api_resource = lambda: None
    ee.data.getAlgorithms = apitestcase.GetAlgorithms
    # the deprecation check downloads the public data catalog; nothing is deprecated offline
    deprecation._FetchDataCatalogStac = lambda: {}
    try:
        ee.Initialize(None, "", project=project)
        yield
    finally:
        (ee.data._install_cloud_api_resource, ee.data.getAlgorithms,
         deprecation._FetchDataCatalogStac) = saved
        ee.Reset()


def encode(obj: Any) -> dict[str, Any]:
    """The Cloud API JSON of an Earth Engine object: exactly what an export request carries."""
    from ee import serializer

    return serializer.encode(obj, for_cloud_api=True)


def encode_pretty(obj: Any) -> dict[str, Any]:
    """The same graph with shared sub-expressions inlined: easier to read and to search."""
    from ee import serializer

    return serializer.encode(obj, is_compound=False, for_cloud_api=True)
