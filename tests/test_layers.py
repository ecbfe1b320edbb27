"""Issue 14: calls go one way, down. Admin, views, commands and integrations call services; services call the
engine; the engine calls models and the Vonage client; the Vonage client calls nothing of ours.

Read from every module's own import statements (the syntax tree, so a string or a comment cannot fool it).
"""

import ast
from pathlib import Path

from escalation.models import ChannelType
from escalation.vonage.channels import CHANNEL_TYPES

APP = Path(__file__).resolve().parent.parent / "escalation"

# What the engine must never call: the layers above it (services, and everything that calls services).
ABOVE_THE_ENGINE = (
    "escalation.services", "escalation.admin", "escalation.management", "escalation.webhooks",
    "escalation.integrations", "escalation.pagerduty", "escalation.demo", "escalation.urls",
    "escalation.context_processors", "escalation.templatetags", "escalation.ops.probes", "escalation.ops.health",
    "escalation.ops.metrics", "escalation.ops.exposition",
)


# What the services must never call: the layers that call them.
ABOVE_THE_SERVICES = (
    "escalation.admin", "escalation.management", "escalation.urls", "escalation.context_processors",
    "escalation.templatetags", "escalation.ops.probes", "escalation.ops.health", "escalation.ops.metrics",
    "escalation.ops.exposition",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    return imports_in(path.read_text(), package=package)


def imports_in(source: str, *, package: str) -> set[str]:
    """Every module `source` imports, absolute (a relative import is resolved against `package`)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from escalation import services` imports the submodule `escalation.services`.
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def modules_under(folder: str) -> list[Path]:
    return sorted((APP / folder).rglob("*.py"))


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def is_view(name: str) -> bool:
    return name.startswith("escalation.") and name.rpartition(".")[2] == "views"


def test_it_finds_the_modules_it_checks() -> None:
    assert len(modules_under("engine")) > 10
    assert len(modules_under("vonage")) > 5


def test_it_reads_every_form_of_import() -> None:
    source = "import escalation.services.alerts\nfrom escalation import admin\nfrom ..services import x\n"
    found = imports_in(source, package="escalation.engine")
    assert {"escalation.services.alerts", "escalation.admin", "escalation.services"} <= found


def imports_out_of_bounds(folder: str, forbidden: tuple[str, ...], *, allowed: tuple[str, ...] = ()) -> list[str]:
    """Each "module imports name" under `folder` where the name is under `forbidden` (or is a view) and not
    under `allowed`."""
    return sorted({
        f"{module_name(path)} imports {name}"
        for path in modules_under(folder)
        for name in imports_of(path)
        if (under(name, forbidden) or is_view(name)) and not under(name, allowed)
    })


def test_it_keeps_the_engine_from_calling_up_the_layers() -> None:
    wrong = imports_out_of_bounds("engine", ABOVE_THE_ENGINE)
    assert not wrong, "\n".join(wrong)


def test_it_keeps_the_services_from_calling_the_admin_the_views_or_the_commands() -> None:
    wrong = imports_out_of_bounds("services", ABOVE_THE_SERVICES)
    assert not wrong, "\n".join(wrong)


def test_it_keeps_the_vonage_client_free_of_django_and_of_the_rest_of_the_app() -> None:
    wrong = imports_out_of_bounds("vonage", ("django", "escalation"), allowed=("escalation.vonage",))
    assert not wrong, "\n".join(wrong)


def test_it_keeps_the_models_below_the_engine_and_the_services() -> None:
    wrong = imports_out_of_bounds("models", ("escalation.engine", *ABOVE_THE_ENGINE))
    assert not wrong, "\n".join(wrong)


def test_the_apps_channel_types_are_the_names_the_vonage_client_takes() -> None:
    assert list(ChannelType.values) == list(CHANNEL_TYPES)
