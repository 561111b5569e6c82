#!/usr/bin/env python3
"""Summarises a cwltest JUnit report per tag and fails when a test tagged
`required` failed. Usage: cwl_report.py junit.xml"""
import collections
import sys
import xml.etree.ElementTree as ET

cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
passed, total, failed_required, failed = collections.Counter(), collections.Counter(), [], []
for case in cases:
    tags = [t.strip() for t in (case.get("class") or "").split(",") if t.strip()]
    ok = case.find("failure") is None and case.find("error") is None
    ident = case.get("file") or case.get("name")
    for tag in tags + ["all"]:
        total[tag] += 1
        passed[tag] += ok
    if not ok:
        failed.append((ident, tags))
        if "required" in tags:
            failed_required.append(ident)
print("CWL v1.2 conformance, per tag:")
for tag in ["all", "required"] + sorted(t for t in total if t not in ("all", "required")):
    print(f"  {tag:<28} {passed[tag]:>4}/{total[tag]}")
for ident, tags in failed:
    print(f"  failed: {ident} ({', '.join(tags)})")
if failed_required:
    print(f"{len(failed_required)} required conformance tests failed: {', '.join(failed_required)}")
    sys.exit(1)
print(f"conformance: {passed['all']}/{total['all']} tests pass; all {total['required']} required tests pass")
