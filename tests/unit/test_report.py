"""Printing diagnostics: the human block per file, JSON, and GitHub annotations."""

from __future__ import annotations

import io
import json

from ds01ctl.diagnostics import error, warning
from ds01ctl.report import as_json, github, human, summary

DIAGS = [
    error("yaml.syntax", "bad indent", file="a.yaml", line=3, col=5, hint="use spaces"),
    warning("quota.unknown_user", "override for bob", file="a.yaml", line=9, col=1),
    error("site.missing", "no Site", file="."),
    error("file.empty", "empty", file="b.yaml", line=2),
]


def test_report_human_plain() -> None:
    out = io.StringIO()
    human(DIAGS, out, colour=False)
    assert out.getvalue().splitlines() == [
        "a.yaml",
        "      3:5  error    bad indent (use spaces)  [yaml.syntax]",
        "      9:1  warning  override for bob  [quota.unknown_user]",
        ".",
        "        -  error    no Site  [site.missing]",
        "b.yaml",
        "      2:1  error    empty  [file.empty]",
    ]
    assert "\033" not in out.getvalue()


def test_report_human_colour_only_when_asked() -> None:
    out = io.StringIO()
    human(DIAGS[:1], out, colour=True)
    assert "\033[31m" in out.getvalue()
    assert "bad indent (use spaces)" in out.getvalue()


def test_report_summary() -> None:
    assert summary([], 3, 2) == "ok: 3 object(s) in 2 file(s), no problems"
    assert summary(DIAGS, 3, 2) == "3 error(s), 1 warning(s); 3 object(s) in 2 file(s)"


def test_report_json_document() -> None:
    document = json.loads(as_json(DIAGS, valid=False, objects=3))
    assert document["format_version"] == 1
    assert (document["valid"], document["objects"]) == (False, 3)
    assert [d["code"] for d in document["diagnostics"]] == [d.code for d in DIAGS]


def test_report_github_annotations_escaped() -> None:
    diags = [
        error("yaml.syntax", "50% bad\nsecond line", file="dir,x/a:b.yaml", line=1, col=2),
        warning("quota.unknown_user", "who?", hint="check it"),
    ]
    out = io.StringIO()
    github(diags, out)
    assert out.getvalue().splitlines() == [
        "::error file=dir%2Cx/a%3Ab.yaml,line=1,col=2,title=yaml.syntax::50%25 bad%0Asecond line",
        "::warning title=quota.unknown_user::who? (check it)",
    ]
