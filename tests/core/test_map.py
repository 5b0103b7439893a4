"""The map stays true: every dotted ``supernet.*`` / ``search_spaces.*`` / ``predictors.*`` name and
every repository path that the code and the docs cite resolves, and CHANGELOG lists the moved names."""
import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from supernet.moved import MOVED, MovedModule

REPO = Path(__file__).resolve().parents[2]
DOTTED = re.compile(r"(?<![\w./-])((?:supernet|search_spaces|predictors)(?:\.[A-Za-z_]\w*)+)")
PATH = re.compile(r"(?<![\w./-])((?:supernet|search_spaces|predictors|benchmarks|tests|docs)/[\w./{},-]*[\w}])")
WRITES = re.compile(r"(--out|--out-json|--result|--pool-file|default) ?=?$")  # a path a command is told to write
# names that are not Python objects: entry-point groups and the CLI's console script
NOT_OBJECTS = {"supernet.spaces", "supernet.space_options"}
CITES_OLD_NAMES = {"CHANGELOG.md", "supernet/moved.py", "tests/core/test_map.py",
                   "tests/core/test_imports.py"}  # plants modules of its own


def tracked(*suffixes):
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [f for f in files if f.endswith(suffixes) and not f.startswith("benchmarks/results/") and (REPO / f).exists()]


def resolve(dotted: str):
    """The object ``dotted`` names (importing its longest module prefix); raises if there is none."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if isinstance(obj, MovedModule):
                raise LookupError(f"{dotted} is an old name ({obj.__doc__})")
            obj = getattr(obj, attr)
        if isinstance(obj, MovedModule):
            raise LookupError(f"{dotted} is an old name ({obj.__doc__})")
        return obj
    raise LookupError(dotted)


def first_names(package: str) -> set[str]:
    """What may follow ``package.`` in a citation: its modules and subpackages, its public names, and
    the old module names of :data:`MOVED` (``supernet.config`` is a variable's attribute, not a citation)."""
    folder = REPO / package
    names = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}
    names |= set(getattr(importlib.import_module(package), "__all__", ()))
    return names | {old.split(".")[1] for old in MOVED if old.startswith(package + ".")}


def cited_names():
    firsts = {package: first_names(package) for package in ("supernet", "search_spaces", "predictors")}
    for f in tracked(".py", ".md"):
        if f in CITES_OLD_NAMES:
            continue
        for name in set(DOTTED.findall((REPO / f).read_text())):
            package, first = name.split(".")[:2]
            if name not in NOT_OBJECTS and first in firsts[package] - {"__init__"}:
                yield f, name


def test_every_dotted_name_resolves():
    bad = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for f, name in cited_names():
            try:
                resolve(name)
            except (LookupError, AttributeError, ImportError) as exc:
                bad.append(f"{f}: {name} ({type(exc).__name__}: {exc})")
    assert not bad, "\n".join(sorted(bad))


def expand_braces(path: str) -> list[str]:
    """``a{,_b}.json`` -> ``a.json``, ``a_b.json`` (one level, as the shell does)."""
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    return [path[:match.start()] + alt + path[match.end():] for alt in match.group(1).split(",")]


def test_every_cited_path_exists():
    bad = []
    for f in tracked(".py", ".md", "Makefile"):
        text = (REPO / f).read_text()
        for match in PATH.finditer(text):
            if text[match.end():match.end() + 1] == "*" or WRITES.search(text[max(0, match.start() - 14):match.start()].rstrip()):
                continue
            bad += [f"{f}: {path}" for path in expand_braces(match.group(1)) if not (REPO / path).exists()]
    assert not bad, "\n".join(sorted(set(bad)))


def test_old_module_names_import_with_a_warning_naming_the_new_place():
    for old, new in MOVED.items():
        sys.modules.pop(old, None)  # another test may have imported it already
        with pytest.warns(DeprecationWarning, match=re.escape(new[0])):
            module = importlib.import_module(old)
        for target in new:
            importlib.import_module(target)  # every new place exists
        assert isinstance(module, MovedModule)
    sys.modules.pop("supernet.arch", None)
    with pytest.warns(DeprecationWarning, match=r"supernet\.core\.arch\.Arch"):
        from supernet.arch import Arch  # noqa: F401  (the previous layout's import)


def test_changelog_lists_every_moved_module():
    text = (REPO / "CHANGELOG.md").read_text()
    for old, new in MOVED.items():
        assert f"| `{old}` | {', '.join(f'`{n}`' for n in new)} |" in text, old


def test_every_result_file_is_cited_from_readme_or_docs_results():
    """benchmarks/results/ holds only what README or docs/results/*.md cite (by name or shell pattern)."""
    docs = [REPO / "README.md", *sorted((REPO / "docs" / "results").glob("*.md"))]
    cited = set()
    for doc in docs:
        for match in PATH.finditer(doc.read_text()):
            pattern = match.group(1) + ("*" if doc.read_text()[match.end():match.end() + 1] == "*" else "")
            cited |= {p for alt in expand_braces(pattern) for p in REPO.glob(alt)}
        cited |= {REPO / "benchmarks" / "results" / name
                  for name in re.findall(r"`([\w.-]+\.(?:json|csv))`", doc.read_text())}
    files = set((REPO / "benchmarks" / "results").iterdir())
    assert not files - cited, sorted(str(f.relative_to(REPO)) for f in files - cited)


def test_no_tracked_file_is_ignored():
    ignored = subprocess.run(["git", "ls-files", "--cached", "--ignored", "--exclude-standard"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    assert not ignored, ignored


def anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_markdown_link_reaches_its_file_and_heading():
    bad = []
    for f in tracked(".md"):
        text = (REPO / f).read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, frag = target.partition("#")
            doc = (REPO / f).parent / path if path else REPO / f
            if not doc.exists():
                bad.append(f"{f}: {target} (no such file)")
                continue
            if frag and doc.suffix == ".md":
                headings = {anchor(h) for h in re.findall(r"^#+ (.+)$", doc.read_text(), flags=re.M)}
                if frag not in headings:
                    bad.append(f"{f}: {target} (no such heading)")
    assert not bad, "\n".join(bad)
