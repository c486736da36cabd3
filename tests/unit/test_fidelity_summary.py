"""scripts/fidelity.py keeps fidelity_known.toml honest: stale and unused entries are reported."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fidelity.py"
MODULE = "test/asynchronous/test_x.py"


def _fidelity() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fidelity_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_passing_tests_and_unused_patterns_are_reported(tmp_path: Path) -> None:
    """An exact entry or a pattern covering a passing test, and patterns that match no failure."""
    fidelity = _fidelity()
    known_file = tmp_path / "known.toml"
    known_file.write_text(
        "[refused]\n"
        f'"{MODULE}::T::test_fails" = "x"\n'
        f'"{MODULE}::T::test_fixed" = "x"\n'
        f'"{MODULE}::Wide::*" = "x"\n'
        f'"{MODULE}::Gone::*" = "x"\n'
        '"*Anywhere::*" = "x"\n'
    )
    result = fidelity.ModuleResult("test_x")
    result.failed = {f"{MODULE}::T::test_fails": "boom", f"{MODULE}::Wide::test_a": "boom"}
    result.passed = [f"{MODULE}::T::test_fixed", f"{MODULE}::Wide::test_b", f"{MODULE}::T::ok"]
    summary = fidelity.summarise([result], fidelity.Classification(known_file), "4.x")
    assert summary["unclassified"] == {}
    assert summary["now_passing"] == [
        f"{MODULE}::T::test_fixed",
        f"{MODULE}::Wide::test_b (by {MODULE}::Wide::*)",
    ]
    assert summary["unused_patterns"] == [f"{MODULE}::Gone::*"]
    assert summary["modules"][0]["refused"] == 2
    # a leading * can match any module: unused only once every module ran
    everything = [fidelity.ModuleResult(module) for module in fidelity.MODULES]
    whole = fidelity.summarise([result, *everything], fidelity.Classification(known_file), "4.x")
    assert whole["unused_patterns"] == ["*Anywhere::*", f"{MODULE}::Gone::*"]
