"""A space name belongs to one source: a second file registering it is refused, naming both files."""
import os
import subprocess
import sys

import pytest

from supernet.core.errors import SupernetError
from supernet.core.registry import _FILES, _SPACES, get_space, import_space_module

SPACE_FILE = '''from supernet.core.registry import get_space, register_space
e = get_space("mobilenet")
register_space("taken_name", {"tiny": e.variants["tiny"]}, config_cls=e.config_cls, build_space=e.build_space,
               build_supernet=e.build_supernet, build_static=e.build_static, default_variant="tiny")
'''


def two_files(tmp_path):
    paths = [tmp_path / "first" / "space.py", tmp_path / "second" / "space.py"]  # one stem, two folders
    for path in paths:
        path.parent.mkdir()
        path.write_text(SPACE_FILE)
    return paths


def test_a_second_file_registering_a_taken_name_is_an_error_naming_both(tmp_path):
    first, second = two_files(tmp_path)
    try:
        import_space_module(str(first))
        import_space_module(str(first))  # the same source again (a module imported again): fine
        assert "first" in get_space("taken_name").source
        with pytest.raises(SupernetError, match="space 'taken_name' is registered twice") as err:
            import_space_module(str(second))
        assert str(first.resolve()) in str(err.value) and str(second.resolve()) in str(err.value)
        assert "first" in get_space("taken_name").source  # the first stays
    finally:
        _SPACES.pop("taken_name", None)
        for path in (first, second):
            _FILES.pop(str(path.resolve()), None)


def test_the_cli_names_both_sources_in_one_line(tmp_path):
    first, second = two_files(tmp_path)
    env = {**os.environ, "SUPERNET_SPACES": f"{first},{second}"}
    done = subprocess.run([sys.executable, "-m", "supernet.cli", "spaces"], env=env, capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "registered twice" in done.stderr and str(first.resolve()) in done.stderr
    assert str(second.resolve()) in done.stderr
