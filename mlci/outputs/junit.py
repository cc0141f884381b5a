"""JUnit XML for `artifacts:reports:junit` (GitLab's MR test widget).

GitLab reads testsuite/testcase with failure/error/skipped children and shows
`system-out` on the test's detail page.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from mlci.outputs.atomic import atomic_write


@dataclass
class TestCase:
    name: str
    classname: str
    status: str = "passed"  # passed | failed | error | skipped
    message: str = ""
    details: str = ""
    time: float = 0.0
    stdout: str = ""


@dataclass
class TestSuite:
    name: str
    cases: list[TestCase] = field(default_factory=list)

    def add(self, case: TestCase) -> TestCase:
        self.cases.append(case)
        return case


def render_junit(suites: list[TestSuite]) -> str:
    root = ET.Element("testsuites")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        counts = {
            "tests": len(suite.cases),
            "failures": sum(c.status == "failed" for c in suite.cases),
            "errors": sum(c.status == "error" for c in suite.cases),
            "skipped": sum(c.status == "skipped" for c in suite.cases),
        }
        for key, value in counts.items():
            totals[key] += value
        el = ET.SubElement(root, "testsuite", name=suite.name, **{k: str(v) for k, v in counts.items()})
        el.set("time", f"{sum(c.time for c in suite.cases):.3f}")
        for case in suite.cases:
            tc = ET.SubElement(el, "testcase", name=case.name, classname=case.classname, time=f"{case.time:.3f}")
            if case.status in ("failed", "error"):
                tag = "failure" if case.status == "failed" else "error"
                child = ET.SubElement(tc, tag, message=case.message[:1000], type=tag)
                child.text = case.details or case.message
            elif case.status == "skipped":
                ET.SubElement(tc, "skipped", message=case.message[:1000])
            if case.stdout:
                ET.SubElement(tc, "system-out").text = case.stdout
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str | os.PathLike, suites: list[TestSuite]) -> Path:
    return atomic_write(path, render_junit(suites))
