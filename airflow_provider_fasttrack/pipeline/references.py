"""Which Airflow connections and variables pipeline YAML may read in its templates, and what else templates reach.

Every templated field of a pipeline task (the session or service request's ``template_fields``) and its Slack
messages is rendered by Airflow, where ``{{ conn.<id>.password }}`` or ``{{ var.value.<key> }}`` reads any
connection or variable. Whoever may add a YAML file to the pipelines folder can therefore read those secrets,
unless the deployment restricts them. The deployment decides, never the YAML itself, through Airflow's
configuration::

    [fasttrack]
    pipeline_connections = openai_default, backendai_default   # "*" (the default): any; empty: none
    pipeline_variables = *

(or ``AIRFLOW__FASTTRACK__PIPELINE_CONNECTIONS`` / ``AIRFLOW__FASTTRACK__PIPELINE_VARIABLES``).

With a restriction, a pipeline task renders its templates in a context made for it
(:mod:`airflow_provider_fasttrack.pipeline.template_context`): ``conn`` and ``var`` resolve only the allowed
names, and the objects of Airflow's context that lead to connections, variables, hooks or the metadata
database (``ti``, ``task``, ``dag``, ``dag_run``, ``macros``) are replaced by views that expose only
:data:`VIEWS`. This module holds those names, shared by the rendering and by the check of the template text
that ``fasttrack validate`` and the DAG loader run, so that a refused template fails when the file loads, with
its file, line and field, rather than when the task runs. A ``${{ secrets.NAME }}`` reference reads the
variable ``NAME`` and is checked as one. A YAML author still runs any command inside the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import jinja2
import jinja2.meta
import jinja2.nodes

from airflow_provider_fasttrack.secret_refs import for_jinja, secret_names
from airflow_provider_fasttrack.settings import CONFIG_SECTION

__all__ = [
    "CONNECTION_FIELDS",
    "PLAIN_CONTEXT",
    "TEMPLATE_FUNCTIONS",
    "VIEWS",
    "ReferencePolicy",
    "template_tree",
]

CONNECTIONS_OPTION = "pipeline_connections"
VARIABLES_OPTION = "pipeline_variables"

#: what a restricted template reads of an allowed connection: ``conn.<id>.<field>``
CONNECTION_FIELDS = (
    "conn_id",
    "conn_type",
    "description",
    "host",
    "schema",
    "login",
    "password",
    "port",
    "extra",
    "extra_dejson",
)
#: the values of Airflow's context that a restricted template reads as they are (strings, dates, numbers)
PLAIN_CONTEXT = frozenset(
    {
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
        "run_id",
        "task_instance_key_str",
        "partition_key",
        "partition_date",
    }
)
#: the objects of Airflow's context that a restricted template reads through a view, and what each view shows
VIEWS: dict[str, frozenset[str]] = {
    "ti": frozenset({"task_id", "dag_id", "run_id", "map_index", "try_number", "xcom_pull"}),
    "dag_run": frozenset(
        {
            "dag_id",
            "run_id",
            "run_type",
            "conf",
            "logical_date",
            "data_interval_start",
            "data_interval_end",
            "run_after",
            "start_date",
        }
    ),
    "dag": frozenset({"dag_id"}),
    "task": frozenset({"task_id"}),
    "macros": frozenset(
        {
            "ds_add",
            "ds_format",
            "ds_format_locale",
            "datetime_diff_for_humans",
            "datetime",
            "timedelta",
            "random",
        }
    ),
}
VIEWS["task_instance"] = VIEWS["ti"]
#: the functions pipeline DAGs add to their templates (see ``factory.template_functions``)
TEMPLATE_FUNCTIONS = frozenset({"asset_event", "backendai_service_token", "pipeline_job_id"})
#: what a restricted template may name: the above, ``conn``, ``var``, ``params`` and Jinja's own globals
_NAMES = PLAIN_CONTEXT | set(VIEWS) | TEMPLATE_FUNCTIONS | {"conn", "var", "params"}
_JINJA = jinja2.Environment()
_NAMES |= set(_JINJA.globals)
#: the names of the context (checked further), as opposed to Jinja's own globals
_CONTEXT_NAMES = _NAMES - set(_JINJA.globals)
#: distinct template texts whose syntax trees a process keeps (a pipeline file checks each text several times,
#: and the DAG processor checks every file again and again)
TEMPLATE_TREES = 4096


def template_tree(text: str) -> jinja2.nodes.Template:
    """The syntax tree of the template ``text``; raises :class:`jinja2.TemplateSyntaxError`.

    Each distinct text is parsed once per process; callers only read the tree.
    """
    tree, error = _parsed(text)
    if tree is None:
        message, line = error
        raise jinja2.TemplateSyntaxError(message, line)
    return tree


@lru_cache(maxsize=TEMPLATE_TREES)
def _parsed(text: str) -> tuple[jinja2.nodes.Template | None, tuple[str, int]]:
    try:
        return _JINJA.parse(text), ("", 0)
    except jinja2.TemplateSyntaxError as exc:
        return None, (exc.message or "", exc.lineno)


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

    def allows(self, what: str, name: str) -> bool:
        """Whether a template may read the ``connection`` or ``variable`` ``name``."""
        allowed = self.connections if what == "connection" else self.variables
        return allowed is None or name in allowed

    def refusal(self, what: str, name: str) -> str:
        """Why ``name`` may not be read (the message a refused read fails with)."""
        allowed = self.connections if what == "connection" else self.variables
        listed = ", ".join(sorted(allowed or ())) or "none"
        return f"reads the {what} {name!r}, which this deployment does not allow ({listed})"

    def refusals(self, text: str) -> list[str]:
        """Why ``text`` may not be rendered under this policy (empty: it may)."""
        if not self.restricts:
            return []
        reasons = []
        if self.variables is not None:  # ${{ secrets.NAME }} reads the Variable NAME when the task runs
            for name in secret_names(text):
                if not self.allows("variable", name):
                    reasons.append(self.refusal("variable", name).replace("the variable", "the secret", 1))
        if "{{" not in text and "{%" not in text:
            return reasons
        try:
            tree = template_tree(for_jinja(text))  # a secret reference is not Jinja: checked above
        except jinja2.TemplateSyntaxError:
            return reasons  # reported where the text's syntax is checked
        return reasons + list(dict.fromkeys(self._tree_refusals(tree)))

    def _tree_refusals(self, tree: jinja2.nodes.Template) -> Iterator[str]:
        for name in sorted(jinja2.meta.find_undeclared_variables(tree) - _NAMES):
            yield (
                f"reads {name!r}, which pipeline templates cannot use while this deployment restricts "
                "connections and variables"
            )
        parents = _parents(tree)
        for node in tree.find_all(jinja2.nodes.Name):
            if node.ctx != "load" or node.name not in _CONTEXT_NAMES:
                continue
            yield from self._use_refusals(node, parents)
        if any(
            True
            for _ in tree.find_all(
                (jinja2.nodes.Include, jinja2.nodes.Import, jinja2.nodes.FromImport, jinja2.nodes.Extends)
            )
        ):
            yield "loads another template file, which pipeline templates cannot do"
        for attr in tree.find_all(jinja2.nodes.Getattr):
            if attr.attr.startswith("_"):
                yield f"reads the attribute {attr.attr!r}, which pipeline templates cannot use"

    def _use_refusals(self, node: jinja2.nodes.Name, parents: dict[int, jinja2.nodes.Node]) -> Iterator[str]:
        root = node.name
        step = _step(node, parents, constant_only=root in VIEWS)
        if root == "conn":
            if step is None:
                yield "uses 'conn' in a way whose connection cannot be checked"
            elif not self.allows("connection", step):
                yield self.refusal("connection", step)
            else:
                read = parents[id(node)]
                if isinstance(parents.get(id(read)), jinja2.nodes.Call):  # conn.get('<id>')
                    read = parents[id(read)]
                field = _step(read, parents, constant_only=True)
                if field not in CONNECTION_FIELDS:
                    shown = ", ".join(CONNECTION_FIELDS)
                    yield f"reads connection {step!r} other than by a field ({shown})"
        elif root == "var":
            kind = _step(node, parents, constant_only=True)
            parent = parents.get(id(node))
            key = _step(parent, parents) if kind in {"value", "json"} and parent is not None else None
            if key is None:
                yield "uses 'var' in a way whose variable cannot be checked"
            elif not self.allows("variable", key):
                yield self.refusal("variable", key)
        elif root in VIEWS:
            if step is None:
                yield f"uses {root!r} in a way that cannot be checked (write {root}.<attribute>)"
            elif step not in VIEWS[root]:
                shown = ", ".join(sorted(VIEWS[root]))
                yield f"reads {root}.{step}, which pipeline templates cannot use (they can read: {shown})"


def _parents(tree: jinja2.nodes.Node) -> dict[int, jinja2.nodes.Node]:
    """Each node's parent, by ``id``."""
    parents: dict[int, jinja2.nodes.Node] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in node.iter_child_nodes():
            parents[id(child)] = node
            stack.append(child)
    return parents


def _step(
    node: jinja2.nodes.Node, parents: dict[int, jinja2.nodes.Node], *, constant_only: bool = False
) -> str | None:
    """The constant name read from ``node``: ``node.<name>``, ``node['<name>']`` or ``node.get('<name>')``;
    ``None`` when ``node`` is used any other way (passed on, filtered, indexed with a computed key)."""
    parent = parents.get(id(node))
    if isinstance(parent, jinja2.nodes.Getattr) and parent.node is node:
        if parent.attr == "get" and not constant_only:
            call = parents.get(id(parent))
            if isinstance(call, jinja2.nodes.Call) and call.node is parent:
                first = call.args[0] if call.args else None
                return str(first.value) if isinstance(first, jinja2.nodes.Const) else None
        return parent.attr
    if isinstance(parent, jinja2.nodes.Getitem) and parent.node is node:
        return str(parent.arg.value) if isinstance(parent.arg, jinja2.nodes.Const) else None
    return None
