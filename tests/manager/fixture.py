"""The manager's database content for the contract suite, written by code: ``fixture_data()`` is what
``backend.ai mgr fixture populate`` loads (domain and project ``default``, users and keypairs, memberships,
policies, presets, scaling group ``default``, resource slot types, images and aliases).
"""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

DOMAIN = "default"
PROJECT = "default"
SCALING_GROUP = "default"
VOLUME_HOST = "local:volume1"
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


#: The users: ``user`` has two keypairs (``user`` and ``user-2nd``), ``other`` is another USER of the project,
#: ``admin`` the domain's admin; ``superadmin`` is for checks of the server itself.
USERS = {
    "user": UserSpec("user", "user", "00000000-0000-4000-8000-00000000a001"),
    "other": UserSpec("other", "user", "00000000-0000-4000-8000-00000000a002"),
    "admin": UserSpec("admin", "admin", "00000000-0000-4000-8000-00000000a003"),
    "superadmin": UserSpec("superadmin", "superadmin", "00000000-0000-4000-8000-00000000a004"),
}
#: keypair name -> (user, is the user's default keypair)
KEYPAIR_OWNERS = {
    "user": ("user", True),
    "user-2nd": ("user", False),
    "other": ("other", True),
    "admin": ("admin", True),
    "superadmin": ("superadmin", True),
}
DOMAIN_ID = "00000000-0000-4000-8000-00000000d001"
PROJECT_ID = "00000000-0000-4000-8000-00000000d002"
SCALING_GROUP_ID = "00000000-0000-4000-8000-00000000d003"


def email_of(user: str) -> str:
    return f"{user}@manager.local"


def new_keypairs() -> dict[str, KeypairSpec]:
    """Fresh random keys for every keypair (access keys look like Backend.AI's: 20 upper-case characters)."""
    alphabet = string.ascii_uppercase + string.digits
    return {
        name: KeypairSpec(
            access_key="AKMGR" + "".join(secrets.choice(alphabet) for _ in range(15)),
            secret_key=secrets.token_urlsafe(30),
            email=email_of(owner),
        )
        for name, (owner, _) in KEYPAIR_OWNERS.items()
    }


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
    """The permission graph's nodes of the domain, the project and the users, and each user's membership of both.

    The manager checks a user's roles in a project through these memberships (without them: 403
    ``not-enough-permission`` on creating a session); ``permissions provision`` then gives the members the
    roles of the manager's presets.
    """
    entities = [("domain", DOMAIN_ID), ("project", PROJECT_ID)] + [("user", u.uuid) for u in USERS.values()]
    nodes = [
        {"id": _node(kind, entity_id), "entity_type": kind, "entity_id": entity_id}
        for kind, entity_id in entities
    ]
    memberships = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"member:{scope}:{user.uuid}")),
            "virtual_entity_id": _node(kind, scope),
            "member_entity_id": _node("user", user.uuid),
        }
        for kind, scope in (("domain", DOMAIN_ID), ("project", PROJECT_ID))
        for user in USERS.values()
    ]
    return {"virtual_entities": nodes, "entity_memberships": memberships}


def fixture_data(keypairs: dict[str, KeypairSpec]) -> dict[str, Any]:
    """The database's content: domain, project, users and keypairs, policies, presets, scaling group, images."""
    graph = membership_rows()
    vfolder_hosts = {VOLUME_HOST: ALL_VFOLDER_PERMISSIONS}
    users = [
        {
            "uuid": spec.uuid,
            "username": spec.name,
            "email": email_of(spec.name),
            "need_password_change": False,
            "full_name": spec.name,
            "description": "",
            "status": "active",
            "status_info": "admin-requested",
            "domain_name": DOMAIN,
            "domain_id": DOMAIN_ID,
            "resource_policy": "default",
            "role": spec.role,
        }
        for spec in USERS.values()
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
        "scaling_groups": [
            {
                "id": SCALING_GROUP_ID,
                "name": SCALING_GROUP,
                "description": "",
                "is_active": True,
                "is_public": True,
                "driver": "static",
                "driver_opts": {},
                "scheduler": "fifo",
                "scheduler_opts": {},
                "wsproxy_addr": "",
            }
        ],
        "sgroups_for_domains": [{"resource_group_id": SCALING_GROUP_ID, "domain_id": DOMAIN_ID}],
        "sgroups_for_groups": [{"resource_group_id": SCALING_GROUP_ID, "group": PROJECT_ID}],
        "users": users,
        "association_groups_users": [
            {"group_id": PROJECT_ID, "user_id": spec.uuid} for spec in USERS.values()
        ],
        "keypairs": [
            {
                "access_key": keypair.access_key,
                "secret_key": keypair.secret_key,
                "is_active": True,
                "resource_policy": "default",
                "rate_limit": 100_000,
                "num_queries": 0,
                "is_admin": USERS[KEYPAIR_OWNERS[name][0]].role != "user",
                "is_default": KEYPAIR_OWNERS[name][1],
                "user": USERS[KEYPAIR_OWNERS[name][0]].uuid,
            }
            for name, keypair in keypairs.items()
        ],
        "resource_presets": [
            {
                "name": "cpu01-small",
                "resource_slots": {"cpu": "1", "mem": str(2**30)},
                "shared_memory": 2**26,
            },
            {
                "name": "cpu02-medium",
                "resource_slots": {"cpu": "2", "mem": str(4 * 2**30)},
                "shared_memory": 2**30,
            },
        ],
        "resource_slot_types": slot_type_rows(),
        **image_rows(),
        "entity_memberships": graph["entity_memberships"],
    }
