"""How `pytest -n 2 --dist loadgroup` hands tests to workers in this suite.

xdist's own loadgroup does not group anything under pytest 9: it tags each
test's node id with its group, and pytest 9 no longer reads that attribute. So
every test travelled alone, and a module's module-scoped fixtures (a database,
an MLflow server, three model servers) were set up once per worker and again
whenever another module's tests came in between.

Here the unit of work is a group: every test of the modules that declare
`pytestmark = [..., pytest.mark.xdist_group("name")]` (one PostgreSQL, one S3
stand-in), or a test function marked `@pytest.mark.xdist_group("name")` (the
end-to-end scenarios, each long enough to be a unit of its own). Any other
test goes with the rest of its module. The long units start first: a
nine-minute unit handed out last would make the suite nine minutes longer.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from xdist.scheduler import LoadGroupScheduling

# Units measured at a minute or more on a 2-core machine, longest first. The rest keep xdist's order.
LONG_UNITS = (
    "e2e-lifecycle",
    "canary",
    "canary-loop",
    "monitor-loop",
    "tests/tune/test_tune_example.py",
    "e2e-mr",
    "e2e-gate",
    "deploy-serve",
    "postgres",
    "optimize",
    "spark",
    "lean-venvs",
    "e2e-local",
    "tests/train/test_cache_key.py",
    "tests/runners/test_iac_tools.py",
)

# `pytestmark = ...` up to the next top-level line, then the group named in it.
_PYTESTMARK = re.compile(r"^pytestmark\s*=.*?(?=^\S)", re.MULTILINE | re.DOTALL)
_GROUP = re.compile(r"xdist_group\(\s*[\"']([^\"']+)[\"']")


_FUNCTION_GROUP = re.compile(r"^@pytest\.mark\.xdist_group\(\s*[\"']([^\"']+)[\"']\s*\)\s*\n(?:@.*\n)*def (\w+)",
                             re.MULTILINE)


@functools.cache
def declared_groups(path: Path) -> tuple[str | None, dict[str, str]]:
    """The xdist_group of a whole module (its `pytestmark`), and those of single test functions."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None, {}
    statement = _PYTESTMARK.search(text + "\n#")
    group = _GROUP.search(statement[0]) if statement else None
    return (group[1] if group else None), {name: unit for unit, name in _FUNCTION_GROUP.findall(text)}


class ModuleOrGroupScheduling(LoadGroupScheduling):
    def __init__(self, config, log=None) -> None:
        super().__init__(config, log)
        self._long_units_first = False

    def _split_scope(self, nodeid: str) -> str:
        module, _, test = nodeid.partition("::")
        whole_module, functions = declared_groups(Path(self.config.rootpath) / module)
        return whole_module or functions.get(test.split("[", 1)[0]) or module

    def _assign_work_unit(self, node) -> None:
        # The first assignment sees the whole queue: put the long units in front of the rest.
        if not self._long_units_first:
            rank = {unit: index for index, unit in enumerate(LONG_UNITS)}
            units = sorted(self.workqueue.items(), key=lambda item: rank.get(item[0], len(rank)))
            self.workqueue.clear()
            self.workqueue.update(units)
            self._long_units_first = True
        super()._assign_work_unit(node)
