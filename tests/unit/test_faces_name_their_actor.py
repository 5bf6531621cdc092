"""Every change made through a face names who made it: each call from ``cli/`` and ``web/`` to a
service operation that records audit events passes its actor. A service operation defaults to
the appliance itself (its own work, and the tests of the services); a face that forgot the
actor would record a person's change as the appliance's, as the CLI once recorded "system"."""

from __future__ import annotations

import ast
import inspect
import pkgutil
from pathlib import Path

import certgate.service
from certgate.service.audit import Actor

SRC = Path(certgate.service.__file__).resolve().parents[1]
FACES = [SRC / "cli", SRC / "web"]
ACTOR_PARAMETERS = ("actor", "created_by")


def operations() -> dict[str, tuple[str, int]]:
    """Service function name -> (its actor parameter, that parameter's position)."""
    found: dict[str, tuple[str, int]] = {}
    for module_info in pkgutil.iter_modules(certgate.service.__path__):
        module = __import__(f"certgate.service.{module_info.name}", fromlist=["_"])
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            parameters = list(inspect.signature(function).parameters.values())
            for position, parameter in enumerate(parameters):
                if parameter.name in ACTOR_PARAMETERS and "Actor" in str(parameter.annotation):
                    keyword_only = parameter.kind is inspect.Parameter.KEYWORD_ONLY
                    found[name] = (parameter.name, 10**6 if keyword_only else position)
    return found


def _called_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def missing_actors() -> list[str]:
    wanted = operations()
    problems: list[str] = []
    for face in FACES:
        for path in sorted(face.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                function, arguments = node.func, list(node.args)
                if _called_name(function) == "run_in_threadpool" and arguments:
                    function, arguments = arguments[0], arguments[1:]
                name = _called_name(function)
                if name not in wanted:
                    continue
                parameter, position = wanted[name]
                keywords = {keyword.arg for keyword in node.keywords}
                if parameter not in keywords and len(arguments) <= position:
                    where = f"{path.relative_to(SRC)}:{node.lineno}"
                    problems.append(f"{where}: {name}() without {parameter}")
    return problems


def test_the_audited_operations_are_found() -> None:
    found = operations()
    for name in ("create", "import_files", "export_certificate", "assign", "create_token"):
        assert name in found
    assert Actor.__name__ in str(inspect.signature(certgate.service.networking.assign))


def test_every_face_names_the_actor_of_every_change() -> None:
    assert missing_actors() == []
