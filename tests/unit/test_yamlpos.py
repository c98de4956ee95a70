"""YAML with positions: marks of keys and values, and the inputs it refuses, each with a place."""

from __future__ import annotations

import pytest

from ds01ctl.yamlpos import MAX_DEPTH, MAX_NODES, Mark, YamlDoc, YamlError, load_documents


def _one(text: str) -> YamlDoc:
    docs = list(load_documents(text))
    assert len(docs) == 1
    return docs[0]


def _error(text: str) -> YamlError:
    with pytest.raises(YamlError) as info:
        list(load_documents(text))
    return info.value


MANIFEST = """\
apiVersion: ds01/v1
kind: Workspace
metadata:
  name: thesis
spec:
  mounts:
    data: {path: /datasets/x, read_only: true}
  env:
    - A
    - B
"""


def test_yamlpos_values_and_marks() -> None:
    doc = _one(MANIFEST)
    assert doc.value["metadata"] == {"name": "thesis"}
    assert doc.start == Mark(1, 1)
    assert doc.values[("apiVersion",)] == Mark(1, 13)
    assert doc.values[("metadata", "name")] == Mark(4, 9)
    assert doc.values[("spec", "mounts", "data", "path")] == Mark(7, 18)
    assert doc.values[("spec", "env", 1)] == Mark(10, 7)


def test_yamlpos_key_marks() -> None:
    doc = _one(MANIFEST)
    assert doc.keys[("kind",)] == Mark(2, 1)
    assert doc.keys[("metadata", "name")] == Mark(4, 3)
    assert doc.keys[("spec", "mounts", "data", "read_only")] == Mark(7, 31)


def test_yamlpos_mark_of_falls_back_to_nearest_ancestor() -> None:
    doc = _one(MANIFEST)
    assert doc.mark_of(("metadata", "name"), key=True) == Mark(4, 3)
    assert doc.mark_of(("metadata", "name")) == Mark(4, 9)
    assert doc.mark_of(("metadata", "owner")) == Mark(4, 3)  # the metadata mapping
    assert doc.mark_of(("metadata", "owner"), key=True) == Mark(4, 3)
    assert doc.mark_of(("nowhere", "at", "all")) == Mark(1, 1)


def test_yamlpos_several_documents_and_their_starts() -> None:
    docs = list(load_documents("a: 1\n---\nb: 2\n---\n"))
    assert [d.value for d in docs] == [{"a": 1}, {"b": 2}, None]
    assert [d.start.line for d in docs[:2]] == [1, 3]
    assert docs[1].values[("b",)] == Mark(3, 4)


def test_yamlpos_empty_text_has_no_documents() -> None:
    assert list(load_documents("")) == []
    assert list(load_documents("# only a comment\n")) == []


def test_yamlpos_non_ascii_columns_count_characters() -> None:
    doc = _one("ééé: x\n😀: [1, 2]\n")
    assert doc.values[("ééé",)] == Mark(1, 6)
    assert doc.values[("😀", 1)] == Mark(2, 8)


def test_yamlpos_scalar_types_as_the_safe_loader_reads_them() -> None:
    doc = _one("a: 1\nb: 1.5\nc: true\nd: null\ne: '1'\nf: 2027-03-31\ng: 0x10\n")
    assert doc.value["a"] == 1
    assert doc.value["b"] == 1.5
    assert doc.value["c"] is True
    assert doc.value["d"] is None
    assert doc.value["e"] == "1"
    assert str(doc.value["f"]) == "2027-03-31"
    assert doc.value["g"] == 16


def test_yamlpos_duplicate_key() -> None:
    err = _error("a: 1\nb:\n  c: 1\n  c: 2\n")
    assert err.code == "yaml.duplicate_key"
    assert err.mark == Mark(4, 3)
    assert err.message == "duplicate key 'c' (first at line 3, column 3)"


def test_yamlpos_duplicate_key_in_flow_mapping() -> None:
    err = _error("a: {x: 1, x: 2}\n")
    assert (err.code, err.mark) == ("yaml.duplicate_key", Mark(1, 11))


def test_yamlpos_same_key_in_sibling_mappings_is_fine() -> None:
    assert _one("a: {x: 1}\nb: {x: 2}\n").value == {"a": {"x": 1}, "b": {"x": 2}}


def test_yamlpos_merge_key_explicit_keys_win() -> None:
    doc = _one("base: &base {cpus: 4, memory: 8g}\nws:\n  <<: *base\n  cpus: 8\n")
    assert doc.value["ws"] == {"cpus": 8, "memory": "8g"}
    assert doc.values[("ws", "cpus")] == Mark(4, 9)
    assert ("ws", "<<") not in doc.keys


def test_yamlpos_merge_key_list_of_mappings() -> None:
    doc = _one("a: &a {x: 1}\nb: &b {y: 2}\nc: {<<: [*a, *b], z: 3}\n")
    assert doc.value["c"] == {"x": 1, "y": 2, "z": 3}


def test_yamlpos_merge_key_of_a_scalar_is_refused() -> None:
    err = _error("a: {<<: 3}\n")
    assert (err.code, err.mark) == ("yaml.syntax", Mark(1, 9))


def test_yamlpos_merge_of_itself_is_bounded() -> None:
    err = _error("a: &a {<<: *a}\n")
    assert err.code == "yaml.too_complex"


def test_yamlpos_nested_empty_merges_are_bounded() -> None:
    lines = ["m0: &m0 {}"]
    for i in range(1, 12):
        lines.append(f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}")
    err = _error("\n".join(lines) + "\n")
    assert err.code == "yaml.too_complex"


def test_yamlpos_alias_bomb() -> None:
    rows = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    err = _error("\n".join(rows) + "\n")
    assert err.code == "yaml.too_complex"
    assert str(MAX_NODES) in err.message
    assert err.mark is not None
    assert 1 <= err.mark.line <= len(rows)


def test_yamlpos_aliases_within_bounds_are_expanded() -> None:
    doc = _one("a: &a [1, 2]\nb: *a\n")
    assert doc.value == {"a": [1, 2], "b": [1, 2]}


def test_yamlpos_recursive_alias() -> None:
    assert _error("a: &a [*a]\n").code == "yaml.too_complex"


def test_yamlpos_deep_nesting_within_bound() -> None:
    depth = MAX_DEPTH - 1
    doc = _one("[" * depth + "]" * depth)
    assert doc.value is not None


def test_yamlpos_deep_nesting_refused() -> None:
    depth = MAX_DEPTH + 5
    err = _error("[" * depth + "]" * depth)
    assert err.code == "yaml.too_complex"
    assert f"deeper than {MAX_DEPTH}" in err.message
    assert err.mark == Mark(1, MAX_DEPTH + 2)


def test_yamlpos_very_deep_nesting_stops_in_libyaml() -> None:
    err = _error("[" * 100_000)
    assert err.code in {"yaml.syntax", "yaml.too_complex"}


def test_yamlpos_tab_indent_hint() -> None:
    err = _error("metadata:\n\tname: x\n")
    assert err.code == "yaml.syntax"
    assert err.mark == Mark(2, 1)
    assert err.hint == "indent with spaces: YAML does not allow tabs for indentation"


def test_yamlpos_tab_inside_a_value_is_fine() -> None:
    assert _one("a: 'x\ty'\n").value == {"a": "x\ty"}


def test_yamlpos_syntax_error_names_where_the_open_bracket_is() -> None:
    err = _error("a: 1\nb: [1, 2\nc: 3\n")
    assert err.code == "yaml.syntax"
    assert err.mark is not None
    assert err.mark.line == 3
    assert "flow sequence that starts at line 2, column 4" in err.message
    assert err.hint is None


def test_yamlpos_control_character_has_a_position() -> None:
    err = _error("a: 1\nbé: \x07\n")
    assert err.code == "yaml.syntax"
    assert err.mark == Mark(2, 5)
    assert "control characters are not allowed" in err.message


def test_yamlpos_undefined_alias() -> None:
    err = _error("a: *nowhere\n")
    assert (err.code, err.mark) == ("yaml.syntax", Mark(1, 4))


def test_yamlpos_non_scalar_key() -> None:
    err = _error("? [a, b]\n: 1\n")
    assert (err.code, err.message) == ("yaml.syntax", "a mapping key must be a plain scalar")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!int abc\n", "'abc' is not a valid integer"),
        ("a: !!float abc\n", "'abc' is not a valid float"),
        ("a: !!float\n", "'' is not a valid float"),
        ("a: !!bool maybe\n", "'maybe' is not a valid boolean"),
        ("a: !!timestamp soon\n", "'soon' is not a valid date"),
        ("a: 2020-02-30\n", "'2020-02-30' is not a valid date: day is out of range for month"),
        ("a: !!binary xx\n", "'xx' is not a valid binary"),
        ("a: 1" + "0" * 5000 + "\n", "is not a valid integer"),
        ("a: !!set foo\n", "the tag !!set is not supported here"),
        ("a: !!map foo\n", "the tag !!map is not supported here"),
        ("a: !Ref foo\n", "the tag !Ref is not supported here"),
        ("a: !!python/name:os.system ''\n", "is not supported here"),
    ],
    ids=[
        "int", "float", "empty-float", "bool", "timestamp", "feb-30", "binary", "huge-int", "set",
        "map", "custom", "python",
    ],
)  # fmt: skip
def test_yamlpos_scalars_that_cannot_be_built(text: str, message: str) -> None:
    err = _error(text)
    assert err.code == "yaml.syntax"
    assert message in err.message
    assert err.mark == Mark(1, 4)


def test_yamlpos_set_tag_as_key_is_refused() -> None:
    assert _error("? !!set foo\n: 1\n").code == "yaml.syntax"


def test_yamlpos_python_tag_on_a_collection_builds_plain_data() -> None:
    # tags on mappings and sequences are ignored: nothing is ever constructed from them
    assert _one("a: !!python/object:os.system {x: 1}\n").value == {"a": {"x": 1}}
