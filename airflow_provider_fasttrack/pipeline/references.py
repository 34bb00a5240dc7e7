"""Which Airflow connections and variables pipeline YAML may read in its templates.

Every templated field of a pipeline task (command, environment values, image, mounts, resources) and its
Slack messages is rendered by Airflow, where ``{{ conn.<id>.password }}`` or ``{{ var.value.<key> }}`` reads
any connection or variable. Whoever may add a YAML file to the pipelines folder can therefore read those
secrets, unless the deployment restricts them. The deployment decides, never the YAML itself, through
Airflow's configuration::

    [fasttrack]
    pipeline_connections = openai_default, backendai_default   # "*" (the default): any; empty: none
    pipeline_variables = *

(or ``AIRFLOW__FASTTRACK__PIPELINE_CONNECTIONS`` / ``AIRFLOW__FASTTRACK__PIPELINE_VARIABLES``). With a
restriction, a template that reads another connection or variable, or reads them in a way that cannot be
checked (``conn[name_from_a_param]``, ``ti.get_template_context()``), fails validation naming file, line
and the refused reference. A ``${{ secrets.NAME }}`` reference reads the variable ``NAME`` and is checked as
one. This is a check of the template text, not a sandbox: a YAML author still runs
any command inside the session.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
import jinja2.nodes

from airflow_provider_fasttrack.secret_refs import secret_names
from airflow_provider_fasttrack.settings import CONFIG_SECTION

__all__ = ["ReferencePolicy"]

CONNECTIONS_OPTION = "pipeline_connections"
VARIABLES_OPTION = "pipeline_variables"
#: attributes that reach the whole template context (and with it ``conn`` and ``var``) from another object
_CONTEXT_ROUTES = frozenset({"get_template_context"})
_JINJA = jinja2.Environment()


def _names(text: str) -> frozenset[str] | None:
    """``*`` -> ``None`` (any); otherwise the comma-separated names (empty: none)."""
    if text.strip() == "*":
        return None
    return frozenset(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class ReferencePolicy:
    """The connections and variables pipeline templates may read (``None``: any)."""

    connections: frozenset[str] | None = None
    variables: frozenset[str] | None = None

    @classmethod
    def from_airflow_config(cls) -> ReferencePolicy:
        """The deployment's ``[fasttrack] pipeline_connections`` and ``pipeline_variables``."""
        from airflow.configuration import conf

        return cls(
            connections=_names(conf.get(CONFIG_SECTION, CONNECTIONS_OPTION, fallback="*")),
            variables=_names(conf.get(CONFIG_SECTION, VARIABLES_OPTION, fallback="*")),
        )

    @property
    def restricts(self) -> bool:
        return self.connections is not None or self.variables is not None

    def refusals(self, text: str) -> list[str]:
        """Why ``text`` may not be rendered under this policy (empty: it may)."""
        if not self.restricts or ("{{" not in text and "{%" not in text):
            return []
        try:
            tree = _JINJA.parse(text)
        except jinja2.TemplateSyntaxError:
            return []  # reported where the text's syntax is checked
        reasons = []
        checks = (("conn", self.connections, "connection"), ("var", self.variables, "variable"))
        for root, allowed, what in checks:
            if allowed is None:
                continue
            read, uses = _read(tree, root)
            for name in sorted(read - allowed):
                listed = ", ".join(sorted(allowed)) or "none"
                reasons.append(f"reads the {what} {name!r}, which this deployment does not allow ({listed})")
            if uses > len(read) or None in read:
                reasons.append(f"uses '{root}' in a way whose {what} cannot be checked")
        if self.variables is not None:  # ${{ secrets.NAME }} reads the Variable NAME when the task runs
            for name in sorted(set(secret_names(text)) - self.variables):
                listed = ", ".join(sorted(self.variables)) or "none"
                reasons.append(
                    f"reads the secret {name!r} (a variable), which this deployment does not allow ({listed})"
                )
        for node in tree.find_all(jinja2.nodes.Getattr):
            if node.attr in _CONTEXT_ROUTES:
                reasons.append(f"reaches the template context through '{node.attr}'")
        return reasons


def _read(tree: jinja2.nodes.Template, root: str) -> tuple[set[str], int]:
    """Names read as ``conn.<id>`` / ``var.value.<key>`` / ``var.json.<key>`` (or ``[...]`` with a
    constant), and how many times ``root`` appears at all."""
    uses = sum(1 for node in tree.find_all(jinja2.nodes.Name) if node.name == root)
    read: set[str] = set()
    for node in tree.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
        assert isinstance(node, jinja2.nodes.Getattr | jinja2.nodes.Getitem)
        parent = node.node
        if root == "var":  # var.value.<key>: the key is one level further down
            if not (isinstance(parent, jinja2.nodes.Getattr) and parent.attr in {"value", "json"}):
                continue
            parent = parent.node
        if isinstance(parent, jinja2.nodes.Name) and parent.name == root:
            read.add(_key(node))
    return read, uses


def _key(node: jinja2.nodes.Getattr | jinja2.nodes.Getitem) -> str:
    if isinstance(node, jinja2.nodes.Getattr):
        return node.attr
    return str(node.arg.value) if isinstance(node.arg, jinja2.nodes.Const) else "\0dynamic"
