"""The manager's database content for the contract suite, written by code: ``fixture_data()`` is what
``backend.ai mgr fixture populate`` loads (domain and project ``default``, users and keypairs, memberships,
policies, resource slot types, images and aliases); ``ADMIN_SETUP`` is what a superadmin then makes through the
manager's admin GraphQL API (scaling group ``default``, its domain and project associations, resource presets),
so that the manager's own write paths add the permission graph's rows for them, as on a real cluster.
"""

from __future__ import annotations

import json
import secrets
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

DOMAIN = "default"
PROJECT = "default"
SCALING_GROUP = "default"
VOLUME_HOST = "local:volume1"
#: where the scaling group's app-proxy would answer (port 9 is discard: nothing listens there)
APP_PROXY_ADDRESS = "http://127.0.0.1:9"
#: The image the contract tests use, and the ones the repository's pipelines name; the dummy agent "has" them all.
IMAGE = "cr.backend.ai/stable/python:3.11-ubuntu22.04"
IMAGES = (
    IMAGE,
    "cr.backend.ai/stable/python:3.11",
    "cr.backend.ai/stable/pytorch:2.5-py3.11-cuda12.4-ubuntu22.04",
    "cr.backend.ai/cloud/python:3.11-ubuntu22.04",
    "cr.backend.ai/cloud/ngc-pytorch:25.01-pytorch2.6-py312-cuda12.8",
    "cr.backend.ai/multiarch/python:3.12-ubuntu24.04",
)
#: Short names, as on backendai-lite
ALIASES = {"python": IMAGE, "python:3.11": IMAGE}
#: the agent's fake hardware
AGENT_CPUS = 8
AGENT_MEMORY = 32 * 2**30
ALL_VFOLDER_PERMISSIONS = [
    "create-vfolder",
    "modify-vfolder",
    "delete-vfolder",
    "mount-in-session",
    "upload-file",
    "download-file",
    "invite-others",
    "set-user-specific-permission",
]


@dataclass(frozen=True)
class KeypairSpec:
    access_key: str
    secret_key: str = field(repr=False)
    email: str


@dataclass(frozen=True)
class UserSpec:
    name: str
    role: str  # superadmin | admin (of the domain) | user
    uuid: str


#: The one user the database fixture writes, as a cluster's installer does: the superadmin, whose keypair makes
#: everything else through the admin API.
SUPERADMIN = UserSpec("superadmin", "superadmin", "00000000-0000-4000-8000-00000000a004")
#: The users the superadmin creates (``create_user``), members of the project: ``user`` has a second keypair
#: (``user-2nd``, ``create_keypair``), ``other`` is another USER of the project, ``admin`` the domain's admin.
USERS = {"user": "user", "other": "user", "admin": "admin"}
#: the keypairs the admin API makes, each of its owner: the owners' own from ``create_user``, and more
SECOND_KEYPAIRS = {"user-2nd": "user"}
DOMAIN_ID = "00000000-0000-4000-8000-00000000d001"
PROJECT_ID = "00000000-0000-4000-8000-00000000d002"
#: requests per rate-limit window of every keypair
RATE_LIMIT = 100_000
#: name -> (resource slots, shared memory)
RESOURCE_PRESETS = {
    "cpu01-small": ({"cpu": "1", "mem": str(2**30)}, str(2**26)),
    "cpu02-medium": ({"cpu": "2", "mem": str(4 * 2**30)}, str(2**30)),
}


def admin_setup(password: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    """The superadmin's GraphQL mutations (keypair, query, variables), in order: the scaling group, its
    association with the domain and with the project, the resource presets, the users (members of the project,
    with ``password``) and their further keypairs. Each answers ``{ok, msg}``; where ``keypair`` names one of
    ``KeypairSpec``'s, the answer's ``keypair`` is that keypair."""
    group = (
        "mutation($name: String!, $props: CreateScalingGroupInput!) "
        "{ create_scaling_group(name: $name, props: $props) { ok msg } }",
        {
            "name": SCALING_GROUP,
            "props": {
                "description": "",
                "is_active": True,
                "is_public": True,
                "driver": "static",
                "driver_opts": "{}",
                "scheduler": "fifo",
                "scheduler_opts": "{}",
                # the app-proxy coordinator of model services: Backend.AI's app-proxy is not on PyPI, so nothing
                # listens there; the manager creates services and keeps them deploying
                "wsproxy_addr": APP_PROXY_ADDRESS,
                "wsproxy_api_token": "contract-suite-app-proxy",
            },
        },
    )
    domain = (
        "mutation($group: String!, $domain: String!) "
        "{ associate_scaling_group_with_domain(scaling_group: $group, domain: $domain) { ok msg } }",
        {"group": SCALING_GROUP, "domain": DOMAIN},
    )
    project = (
        "mutation($group: String!, $project: UUID!) "
        "{ associate_scaling_group_with_user_group(scaling_group: $group, user_group: $project) { ok msg } }",
        {"group": SCALING_GROUP, "project": PROJECT_ID},
    )
    presets = [
        (
            "mutation($name: String!, $props: CreateResourcePresetInput!) "
            "{ create_resource_preset(name: $name, props: $props) { ok msg } }",
            {"name": name, "props": {"resource_slots": json.dumps(slots), "shared_memory": shmem}},
        )
        for name, (slots, shmem) in RESOURCE_PRESETS.items()
    ]
    users = [
        (
            name,
            "mutation($email: String!, $props: UserInput!) "
            "{ create_user(email: $email, props: $props) { ok msg keypair { access_key secret_key } } }",
            {
                "email": email_of(name),
                "props": {
                    "username": name,
                    "password": password,
                    "need_password_change": False,
                    "full_name": name,
                    "domain_name": DOMAIN,
                    "role": role,
                    "group_ids": [PROJECT_ID],
                    "resource_policy": "default",
                },
            },
        )
        for name, role in USERS.items()
    ]
    keypairs = [
        (
            name,
            "mutation($owner: String!, $props: KeyPairInput!) "
            "{ create_keypair(user_id: $owner, props: $props) { ok msg keypair { access_key secret_key } } }",
            {"owner": email_of(owner), "props": {"resource_policy": "default", "rate_limit": RATE_LIMIT}},
        )
        for name, owner in SECOND_KEYPAIRS.items()
    ]
    setup = [(None, query, variables) for query, variables in (group, domain, project, *presets)]
    return setup + users + keypairs


def email_of(user: str) -> str:
    return f"{user}@manager.local"


def superadmin_keypair() -> KeypairSpec:
    """Fresh random keys for the superadmin (access keys look like Backend.AI's: 20 upper-case characters)."""
    alphabet = string.ascii_uppercase + string.digits
    return KeypairSpec(
        access_key="AKMGR" + "".join(secrets.choice(alphabet) for _ in range(15)),
        secret_key=secrets.token_urlsafe(30),
        email=email_of(SUPERADMIN.name),
    )


def parse_image(canonical: str) -> dict[str, str]:
    """``registry/project/name:tag`` into the parts the ``images`` table keeps."""
    registry, rest = canonical.split("/", 1)
    repository, tag = rest.rsplit(":", 1)
    project = repository.split("/", 1)[0]
    return {"registry": registry, "project": project, "image": repository, "tag": tag}


def _registry_id(registry: str, project: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://{registry}/{project}"))


def image_rows(images: tuple[str, ...] = IMAGES) -> dict[str, list[dict[str, Any]]]:
    """``container_registries``, ``images`` and ``image_aliases`` rows for ``images`` (no registry is scanned)."""
    registries: dict[str, dict[str, Any]] = {}
    rows, aliases = [], []
    for canonical in images:
        parts = parse_image(canonical)
        registry_id = _registry_id(parts["registry"], parts["project"])
        registries[registry_id] = {
            "id": registry_id,
            "registry_name": parts["registry"],
            "url": f"https://{parts['registry']}",
            "type": "docker",
            "project": parts["project"],
        }
        image_id = str(uuid.uuid5(uuid.NAMESPACE_URL, canonical))
        cuda = "cuda" in parts["tag"]
        rows.append(
            {
                "id": image_id,
                "name": canonical,
                "project": parts["project"],
                "image": parts["image"],
                "tag": parts["tag"],
                "registry": parts["registry"],
                "registry_id": registry_id,
                "architecture": "x86_64",
                "config_digest": "sha256:" + uuid.uuid5(uuid.NAMESPACE_OID, canonical).hex * 2,
                "size_bytes": 1_000_000_000,
                "type": "COMPUTE",
                "accelerators": "cuda" if cuda else None,
                "labels": {
                    "ai.backend.kernelspec": "1",
                    "ai.backend.features": "batch query uid-match user-input",
                    "ai.backend.base-distro": "ubuntu22.04",
                    "ai.backend.runtime-type": "python",
                    "ai.backend.runtime-path": "/usr/bin/python3",
                    "ai.backend.resource.min.cpu": "1",
                    "ai.backend.resource.min.mem": "256m",
                },
                "resources": {"cpu": {"min": "1", "max": None}, "mem": {"min": "256m", "max": None}},
            }
        )
        aliases += [
            {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, alias)), "alias": alias, "image": image_id}
            for alias, target in ALIASES.items()
            if target == canonical
        ]
    return {"container_registries": list(registries.values()), "images": rows, "image_aliases": aliases}


#: slot name -> (type, unit, rank): the slots the agents may report (the agent's resource rows refer to them)
SLOT_TYPES = {
    "cpu": ("count", "Core", 100),
    "mem": ("bytes", "GiB", 200),
    "cuda.device": ("count", "GPU", 300),
    "cuda.shares": ("count", "fGPU", 400),
}


def slot_type_rows() -> list[dict[str, Any]]:
    return [
        {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"slot:{name}")),
            "slot_name": name,
            "slot_type": kind,
            "required": name in ("cpu", "mem"),
            "display_name": name,
            "description": name,
            "display_unit": unit,
            "display_icon": name.split(".")[0],
            "number_format": {"binary": kind == "bytes", "round_length": 0},
            "rank": rank,
        }
        for name, (kind, unit, rank) in SLOT_TYPES.items()
    ]


def _node(entity_type: str, entity_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"node:{entity_type}:{entity_id}"))


def membership_rows() -> dict[str, list[dict[str, Any]]]:
    """The permission graph's nodes of the domain, the project and the superadmin, and its membership of both;
    ``permissions provision`` then gives the members the roles of the manager's presets. (The users the admin API
    creates get theirs from the manager.)"""
    entities = [("domain", DOMAIN_ID), ("project", PROJECT_ID), ("user", SUPERADMIN.uuid)]
    nodes = [
        {"id": _node(kind, entity_id), "entity_type": kind, "entity_id": entity_id}
        for kind, entity_id in entities
    ]
    memberships = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"member:{scope}:{SUPERADMIN.uuid}")),
            "virtual_entity_id": _node(kind, scope),
            "member_entity_id": _node("user", SUPERADMIN.uuid),
        }
        for kind, scope in (("domain", DOMAIN_ID), ("project", PROJECT_ID))
    ]
    return {"virtual_entities": nodes, "entity_memberships": memberships}


def fixture_data(superadmin: KeypairSpec) -> dict[str, Any]:
    """The database's content: domain, project, the superadmin and its keypair, policies, slot types, images."""
    graph = membership_rows()
    vfolder_hosts = {VOLUME_HOST: ALL_VFOLDER_PERMISSIONS}
    users = [
        {
            "uuid": SUPERADMIN.uuid,
            "username": SUPERADMIN.name,
            "email": email_of(SUPERADMIN.name),
            "need_password_change": False,
            "full_name": SUPERADMIN.name,
            "description": "",
            "status": "active",
            "status_info": "admin-requested",
            "domain_name": DOMAIN,
            "domain_id": DOMAIN_ID,
            "resource_policy": "default",
            "role": SUPERADMIN.role,
        }
    ]
    return {
        # the nodes first: the fixture keeps nodes it wrote itself and adds the others
        "virtual_entities": graph["virtual_entities"],
        "domains": [
            {
                "id": DOMAIN_ID,
                "name": DOMAIN,
                "description": "",
                "is_active": True,
                "total_resource_slots": {},
                "allowed_vfolder_hosts": vfolder_hosts,
                "allowed_docker_registries": ["cr.backend.ai"],
            }
        ],
        "user_resource_policies": [
            {
                "name": "default",
                "max_vfolder_count": 0,
                "max_quota_scope_size": -1,
                "max_session_count_per_model_session": 10,
            }
        ],
        "project_resource_policies": [
            {"name": "default", "max_vfolder_count": 0, "max_quota_scope_size": -1, "max_network_count": 3}
        ],
        "keypair_resource_policies": [
            {
                "name": "default",
                "is_default": True,  # the policy the keypairs of new users get
                "default_for_unspecified": "UNLIMITED",
                "total_resource_slots": {},
                "max_session_lifetime": 0,
                "max_concurrent_sessions": 50,
                "max_containers_per_session": 8,
                "idle_timeout": 3600,
                "allowed_vfolder_hosts": vfolder_hosts,
            }
        ],
        "groups": [
            {
                "id": PROJECT_ID,
                "name": PROJECT,
                "description": "",
                "is_active": True,
                "domain_name": DOMAIN,
                "resource_policy": "default",
                "total_resource_slots": {},
                "allowed_vfolder_hosts": vfolder_hosts,
                "type": "general",
            }
        ],
        "users": users,
        "association_groups_users": [{"group_id": PROJECT_ID, "user_id": SUPERADMIN.uuid}],
        "keypairs": [
            {
                "access_key": superadmin.access_key,
                "secret_key": superadmin.secret_key,
                "is_active": True,
                "resource_policy": "default",
                "rate_limit": RATE_LIMIT,
                "num_queries": 0,
                "is_admin": True,
                "is_default": True,
                "user": SUPERADMIN.uuid,
            }
        ],
        "resource_slot_types": slot_type_rows(),
        # what the manager's migrations seed and `schema oneshot` does not: the runtime variants of model services
        "runtime_variants": [
            {
                "name": "custom",
                "description": "Custom (Default)",
                "reads_vfolder_config_files": True,
                "default_model_definition": {},
            },
            {
                "name": "cmd",
                "description": "Predefined Image Command",
                "reads_vfolder_config_files": False,
                "default_model_definition": {},
            },
        ],
        **image_rows(),
        "entity_memberships": graph["entity_memberships"],
    }
