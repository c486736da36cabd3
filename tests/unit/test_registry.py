"""Entry points become handlers; duplicates and bad signatures stop startup."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from reactor import registry as registry_module
from reactor.errors import DuplicateHandler, InvalidArguments, PathEscape, RegistryError
from reactor.handler import Runs, handler
from reactor.registry import build_handler, load_registry

MOD = "tests.unit.sample_handlers"


def _use(monkeypatch: pytest.MonkeyPatch, *eps: EntryPoint) -> None:
    monkeypatch.setattr(registry_module, "entry_points", lambda group: list(eps))


def test_builtin_handlers_are_registered() -> None:
    """The package's own entry points provide echo and sleep."""
    found = load_registry()
    assert {"echo", "sleep"} <= set(found.names())
    assert found.get("echo") is not None


def test_two_entry_points_with_one_name_fail_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    """A duplicate command name stops startup with both sources in the message."""
    _use(
        monkeypatch,
        EntryPoint("add", f"{MOD}:add", "reactor.handlers"),
        EntryPoint("add", f"{MOD}:anything", "reactor.handlers"),
    )
    with pytest.raises(DuplicateHandler, match=r"sample_handlers:add.*sample_handlers:anything"):
        load_registry()


def test_the_same_entry_point_seen_twice_is_not_a_duplicate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One distribution found twice on sys.path registers once."""
    ep = EntryPoint("add", f"{MOD}:add", "reactor.handlers")
    _use(monkeypatch, ep, ep)
    assert load_registry().names() == ["add"]


def test_an_entry_point_that_cannot_load_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken entry point names itself in the startup error."""
    _use(monkeypatch, EntryPoint("ghost", "no_such_module:fn", "reactor.handlers"))
    with pytest.raises(RegistryError, match="cannot load handler 'ghost'"):
        load_registry()


def test_positional_only_parameters_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler that cannot take named args is refused at startup."""
    _use(monkeypatch, EntryPoint("pos", f"{MOD}:positional_only", "reactor.handlers"))
    with pytest.raises(RegistryError, match="unusable signature"):
        load_registry()


def test_how_a_handler_runs_follows_its_kind() -> None:
    """Coroutines run on the loop, plain functions in a thread, declared CPU work in the pool."""
    from tests.unit import sample_handlers as m

    assert build_handler("add", m.add).runs is Runs.LOOP
    assert build_handler("read", m.read_file).runs is Runs.THREAD
    crunch = build_handler("crunch", m.crunch)
    assert (
        crunch.runs,
        crunch.options.timeout_s,
        crunch.options.max_concurrency,
        crunch.version,
    ) == (Runs.PROCESS, 5, 2, "9.9")


def test_args_are_validated_against_type_hints(tmp_path: Path) -> None:
    """Arguments are converted by their hints; wrong, missing or extra ones are refused."""
    from tests.unit import sample_handlers as m

    add = build_handler("add", m.add)
    assert add.bind_args({"a": "2"}, tmp_path) == {"a": 2}
    with pytest.raises(InvalidArguments, match="a: Field required"):
        add.bind_args({}, tmp_path)
    with pytest.raises(InvalidArguments, match="b: Input should be a valid integer"):
        add.bind_args({"a": 1, "b": "many"}, tmp_path)
    with pytest.raises(InvalidArguments, match="c: unexpected argument"):
        add.bind_args({"a": 1, "c": 3}, tmp_path)


def test_var_keyword_handlers_accept_any_args(tmp_path: Path) -> None:
    """A handler with **kwargs receives every argument as given."""
    from tests.unit import sample_handlers as m

    assert build_handler("any", m.anything).bind_args({"x": [1]}, tmp_path) == {"x": [1]}


def test_path_arguments_resolve_inside_the_job_directory(tmp_path: Path) -> None:
    """Path parameters resolve against the job directory and may not escape it."""
    from tests.unit import sample_handlers as m

    read = build_handler("read", m.read_file)
    assert read.wants_context
    assert read.bind_args({"path": "a.txt"}, tmp_path) == {"path": tmp_path / "a.txt"}
    with pytest.raises(PathEscape):
        read.bind_args({"path": "../a.txt"}, tmp_path)
    with pytest.raises(InvalidArguments, match="mode"):
        read.bind_args({"path": "a.txt", "mode": "binary"}, tmp_path)


def test_decorator_rejects_inconsistent_options() -> None:
    """runs='loop' on a plain function, or a non-positive timeout, fail at import time."""
    with pytest.raises(TypeError, match="needs an async def"):
        handler(runs="loop")(lambda: None)
    with pytest.raises(ValueError, match="timeout_s must be positive"):

        @handler(timeout_s=0)
        async def f() -> None:
            return None


def test_default_path_arguments_resolve_inside_the_job_directory(tmp_path: Path) -> None:
    """A Path default (``out: Path = Path("edges.png")``, or a str default) lands in the job dir."""
    from tests.unit import sample_handlers as m

    bound = build_handler("paths", m.with_paths).bind_args({"pages": []}, tmp_path)
    root = tmp_path.resolve()
    assert bound["out"] == root / "edges.png"
    assert bound["report"] == root / "report.txt"
    assert "maybe" not in bound  # a None default stays the handler's own


def test_containers_of_paths_resolve_element_by_element(tmp_path: Path) -> None:
    """list[Path], tuple[Path, ...], dict[str, Path] and Path | None resolve each element."""
    from tests.unit import sample_handlers as m

    args = {
        "pages": ["a.txt", "sub/b.txt"],
        "pair": ["x", "y"],
        "named": {"left": "l.png"},
        "maybe": "m.txt",
    }
    bound = build_handler("paths", m.with_paths).bind_args(args, tmp_path)
    root = tmp_path.resolve()
    assert bound["pages"] == [root / "a.txt", root / "sub/b.txt"]
    assert bound["pair"] == (root / "x", root / "y")
    assert bound["named"] == {"left": root / "l.png"}
    assert bound["maybe"] == root / "m.txt"


@pytest.mark.parametrize(
    "args",
    [
        {"pages": ["ok.txt", "../escape.txt"]},
        {"pages": [], "pair": ["/etc/passwd"]},
        {"pages": [], "named": {"k": "../../x"}},
        {"pages": [], "maybe": "../x"},
        {"pages": [], "out": "/tmp/elsewhere.png"},
    ],
)
def test_an_escaping_path_in_any_container_fails(tmp_path: Path, args: dict[str, object]) -> None:
    """Every path, wherever it sits in the arguments, must stay inside the job directory."""
    from tests.unit import sample_handlers as m

    with pytest.raises(PathEscape):
        build_handler("paths", m.with_paths).bind_args(args, tmp_path)


def test_a_path_default_that_is_not_a_path_stops_startup() -> None:
    """A default that does not validate against its Path hint is refused when loading."""

    def bad(out: Path = 3) -> None:  # type: ignore[assignment]
        return None

    with pytest.raises(TypeError, match="default of 'out'"):
        build_handler("bad", bad)


def test_options_are_resolved_once_against_the_settings() -> None:
    """What a handler declares wins; what it leaves open comes from the settings; the result is
    a policy with every field decided, re-resolved when the settings change."""
    from reactor.config import load_settings
    from reactor.registry import HandlerDefaults, Registry
    from reactor.retry import RetryPolicy, RetryRules

    @handler(timeout_s=7, max_attempts=5, retry=RetryPolicy(backoff_s=2))
    async def declared() -> None:
        return None

    async def plain() -> None:
        return None

    settings = load_settings(job_timeout_s=99, max_attempts=2, retry_max_backoff_s=40)
    found = Registry([build_handler("declared", declared), build_handler("plain", plain)])
    resolved = found.resolved(HandlerDefaults.of(settings))
    mine, theirs = resolved.get("declared"), resolved.get("plain")
    assert mine is not None
    assert theirs is not None
    assert (mine.timeout_s, mine.retry) == (7, RetryRules(5, 2.0, 40.0))
    assert (theirs.timeout_s, theirs.retry) == (99, RetryRules(2, 1.0, 40.0))
    unconfigured = build_handler("plain", plain)
    assert (unconfigured.timeout_s, unconfigured.retry) == (600, RetryRules(3, 1.0, 300.0))
