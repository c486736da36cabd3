"""Handlers from a plain module (REACTOR_HANDLER_MODULES): which functions, how they run, errors."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reactor.config import load_settings
from reactor.errors import DuplicateHandler, RegistryError
from reactor.handler import Runs
from reactor.registry import load_registry, module_handlers

SEED_APP = """
import json
from os.path import join


def write_report(name="out.txt", text="hello"):
    with open(name, "w") as f:
        f.write(text)
    return {"written": name}


def add(a, b=1):
    return a + b


def explode(message="boom"):
    raise ValueError(message)


def _helper():
    return 42


class NotACommand:
    pass


CONSTANT = 3
"""

WriteModule = Callable[[str, str], Path]


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteModule]:
    """Write a module file under a unique name; forget it (sys.modules, sys.path) afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    names: list[str] = []

    def write(stem: str, source: str) -> Path:
        name = f"{stem}_{uuid.uuid4().hex[:8]}"
        names.append(name)
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        return path

    yield write
    for name in names:
        sys.modules.pop(name, None)


def test_every_public_function_of_a_seed_style_file_is_a_command(write_module: WriteModule) -> None:
    """Functions defined in the file become commands; private, imported and non-functions do not."""
    path = write_module("app", SEED_APP)
    found = {h.name: h for h in module_handlers(str(path))}
    assert set(found) == {"write_report", "add", "explode"}
    assert found["add"].source == f"{path.stem}:add"


def test_plain_functions_run_in_the_pool_unless_decorated(write_module: WriteModule) -> None:
    """A plain def goes to the CPU pool; @handler, @handler(runs=...) and async def decide."""
    path = write_module(
        "kinds",
        """
        from reactor import handler

        def plain(): ...

        @handler
        def decorated(): ...

        @handler(runs="thread", timeout_s=5)
        def threaded(): ...

        async def coro(): ...
        """,
    )
    runs = {h.name: h.runs for h in module_handlers(str(path))}
    assert runs == {
        "plain": Runs.PROCESS,
        "decorated": Runs.THREAD,
        "threaded": Runs.THREAD,
        "coro": Runs.LOOP,
    }


def test_dunder_all_chooses_the_commands(write_module: WriteModule) -> None:
    """With __all__, exactly the functions it lists are commands (imported ones included)."""
    path = write_module(
        "exported",
        """
        from os.path import basename
        __all__ = ["kept", "basename", "CONSTANT"]
        CONSTANT = 1
        def kept(): ...
        def left_out(): ...
        """,
    )
    assert sorted(h.name for h in module_handlers(str(path))) == ["basename", "kept"]


def test_a_module_name_works_like_a_path(
    write_module: WriteModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An importable module name is a handler module too."""
    path = write_module("byname", "def ping():\n    return 'pong'\n")
    monkeypatch.syspath_prepend(str(path.parent))
    assert [h.name for h in module_handlers(path.stem)] == ["ping"]


def test_a_name_clashing_with_an_entry_point_stops_startup_naming_both(
    write_module: WriteModule,
) -> None:
    """A module function named like an installed entry point is refused, with both places."""
    path = write_module("clash", "def echo(**args):\n    return args\n")
    with pytest.raises(DuplicateHandler) as caught:
        load_registry(modules=[str(path)])
    message = str(caught.value)
    assert "'echo' is declared twice" in message
    assert "reactor_handlers.basic:echo" in message
    assert f"{path.stem}:echo (handler module {path})" in message


def test_two_modules_with_one_command_stop_startup_naming_both(write_module: WriteModule) -> None:
    """The same function name in two handler modules is a clash too."""
    first = write_module("one", "def job(): ...\n")
    second = write_module("two", "def job(): ...\n")
    with pytest.raises(DuplicateHandler, match=rf"{first.stem}:job .*{second.stem}:job"):
        load_registry(modules=[str(first), str(second)])


def test_the_same_module_listed_twice_loads_once(write_module: WriteModule) -> None:
    """Repeating a spec is not a clash."""
    path = write_module("twice", "def only(): ...\n")
    assert "only" in load_registry(modules=[str(path), str(path)]).names()


def test_the_setting_takes_comma_separated_specs(
    write_module: WriteModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REACTOR_HANDLER_MODULES splits at commas, blanks dropped, and every module is loaded."""
    first = write_module("a", "def from_a(): ...\n")
    second = write_module("b", "def from_b(): ...\n")
    monkeypatch.setenv("REACTOR_HANDLER_MODULES", f" {first} ,, {second} ")
    settings = load_settings()
    assert settings.handler_module_list == [str(first), str(second)]
    assert {"from_a", "from_b"} <= set(load_registry(modules=settings.handler_module_list).names())


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    """A .py path that does not exist names itself, the resolved path and the working directory."""
    with pytest.raises(RegistryError, match=r"'nope/app.py' \(REACTOR_HANDLER_MODULES\).*does not"):
        module_handlers("nope/app.py")
    (tmp_path / "pkg.py").mkdir()
    with pytest.raises(RegistryError, match="is a directory"):
        module_handlers(str(tmp_path / "pkg.py"))


def test_a_syntax_error_names_the_file_and_line(write_module: WriteModule) -> None:
    """A file that does not parse is refused with its file name and line number."""
    path = write_module("broken", "def fine():\n    return 1\n\ndef bad(:\n")
    with pytest.raises(RegistryError, match=rf"syntax error in {path} line 4"):
        module_handlers(str(path))


def test_a_missing_dependency_says_what_to_install(write_module: WriteModule) -> None:
    """An import inside the module that fails names the missing package."""
    path = write_module("needs", "import no_such_package_anywhere\n")
    with pytest.raises(RegistryError, match="imports 'no_such_package_anywhere', which is not"):
        module_handlers(str(path))


def test_an_exception_while_importing_names_its_line(write_module: WriteModule) -> None:
    """Top-level code that raises is reported with the exception and where it happened."""
    path = write_module("raises", "x = 1\nraise RuntimeError('no config')\n")
    with pytest.raises(RegistryError, match=rf"RuntimeError: no config at {path} line 2"):
        module_handlers(str(path))


def test_an_unknown_module_name_says_it_is_not_installed() -> None:
    """A module name nothing provides is one line saying so."""
    with pytest.raises(RegistryError, match="no module of that name is installed"):
        module_handlers("no_such_handler_module_xyz")


def test_a_file_named_like_another_module_is_refused(tmp_path: Path) -> None:
    """A file whose stem is an already imported module (json.py) cannot shadow it silently."""
    (tmp_path / "json.py").write_text("def parse(): ...\n")
    with pytest.raises(RegistryError, match="'json' is already taken"):
        module_handlers(str(tmp_path / "json.py"))


def test_a_lambda_cannot_run_in_the_pool(write_module: WriteModule) -> None:
    """A top-level lambda is a command the pool could not pickle: refused at startup."""
    path = write_module("lam", "double = lambda x: 2 * x\n")
    with pytest.raises(RegistryError, match="cannot run in the CPU pool"):
        module_handlers(str(path))


def test_an_unusable_signature_suggests_the_underscore(write_module: WriteModule) -> None:
    """A public function that args cannot fill stops startup and says how to keep it out."""
    path = write_module("sig", "def helper(*values):\n    return values\n")
    with pytest.raises(RegistryError, match=r"unusable signature.*leading underscore"):
        module_handlers(str(path))
