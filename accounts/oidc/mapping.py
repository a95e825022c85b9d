"""``OIDC_ROLE_MAPPING``: which of the identity provider's groups and roles give which memberships and roles.

The setting is JSON with up to three sections, each mapping a claim value to a list of grants::

    {
      "groups": {"/acme/finance-managers": [{"organization": "acme", "role": "manager", "department": "FIN"}]},
      "realm_roles": {"acme-auditor": [{"organization": "acme", "role": "auditor"}]},
      "client_roles": {"itdo-erp": {"globex-viewer": [{"organization": "globex", "role": "viewer"}]}}
    }

``groups`` matches the ``groups`` claim (Keycloak's full group paths), ``realm_roles`` the ``realm_access.roles``
claim and ``client_roles`` the ``resource_access.<client>.roles`` claim. A grant names an organization by slug and
optionally a role by code and a department by code (the role is then held for that department's subtree). A grant
without a role gives a membership only; every grant implies a membership of its organization.

This module only reads and checks the setting (the settings module calls it at start-up, so it imports no models);
``accounts.oidc.roles`` applies it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

SECTIONS = ("groups", "realm_roles", "client_roles")
GRANT_KEYS = {"organization", "role", "department"}


@dataclass(frozen=True)
class Grant:
    """What one claim value gives: a membership of ``organization`` and, when named, ``role`` there."""

    organization: str
    role: str | None = None
    department: str | None = None


@dataclass(frozen=True)
class RoleMapping:
    groups: Mapping[str, tuple[Grant, ...]]
    realm_roles: Mapping[str, tuple[Grant, ...]]
    client_roles: Mapping[str, Mapping[str, tuple[Grant, ...]]]

    def __bool__(self) -> bool:
        return bool(self.groups or self.realm_roles or self.client_roles)

    def grants_for(self, claims: Mapping[str, Any]) -> set[Grant]:
        """Every grant the claims imply; claim values the mapping does not name give nothing."""
        grants: set[Grant] = set()
        for group in _strings(claims.get("groups")):
            grants.update(self.groups.get(group, ()))
        realm_access = claims.get("realm_access")
        if isinstance(realm_access, Mapping):
            for role in _strings(realm_access.get("roles")):
                grants.update(self.realm_roles.get(role, ()))
        resource_access = claims.get("resource_access")
        if isinstance(resource_access, Mapping):
            for client, roles in self.client_roles.items():
                access = resource_access.get(client)
                if isinstance(access, Mapping):
                    for role in _strings(access.get("roles")):
                        grants.update(roles.get(role, ()))
        return grants


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []


def _error(where: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"OIDC_ROLE_MAPPING{where}: {problem}")


def _grant(value: Any, where: str) -> Grant:
    if not isinstance(value, Mapping):
        raise _error(where, 'a grant is an object such as {"organization": "acme", "role": "member"}.')
    unknown = sorted(set(value) - GRANT_KEYS)
    if unknown:
        raise _error(where, f"unknown key {', '.join(unknown)} (use organization, role and department).")
    for key in GRANT_KEYS:
        if key in value and value[key] is not None and (not isinstance(value[key], str) or not value[key].strip()):
            raise _error(where, f"{key} must be a non-empty string.")
    if not value.get("organization"):
        raise _error(where, "every grant names an organization (its slug).")
    if value.get("department") and not value.get("role"):
        raise _error(where, "a department limits a role: name the role too.")
    return Grant(
        organization=value["organization"].strip(),
        role=(value.get("role") or "").strip().lower() or None,
        department=(value.get("department") or "").strip().upper() or None,
    )


def _claim_values(value: Any, where: str) -> dict[str, tuple[Grant, ...]]:
    if not isinstance(value, Mapping):
        raise _error(where, "must map claim values to lists of grants.")
    mapped: dict[str, tuple[Grant, ...]] = {}
    for claim_value, grants in value.items():
        if not isinstance(grants, list):
            raise _error(f"{where}[{json.dumps(claim_value)}]", "must be a list of grants.")
        mapped[claim_value] = tuple(
            _grant(grant, f"{where}[{json.dumps(claim_value)}][{index}]") for index, grant in enumerate(grants)
        )
    return mapped


def parse_role_mapping(value: str | Mapping[str, Any] | RoleMapping | None) -> RoleMapping:
    """Read and check the setting (JSON text or already decoded); any mistake is an ``ImproperlyConfigured`` naming
    where it is. An empty value is an empty mapping: nothing follows the provider's claims."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return RoleMapping(groups={}, realm_roles={}, client_roles={})
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise _error("", f"not valid JSON ({error}).") from error
    if isinstance(value, RoleMapping):
        return value
    if not isinstance(value, Mapping):
        raise _error("", f"must be a JSON object with the sections {', '.join(SECTIONS)}.")
    unknown = sorted(set(value) - set(SECTIONS))
    if unknown:
        raise _error("", f"unknown section {', '.join(unknown)} (use {', '.join(SECTIONS)}).")
    client_roles = value.get("client_roles", {})
    if not isinstance(client_roles, Mapping):
        raise _error('["client_roles"]', "must map client ids to their roles.")
    return RoleMapping(
        groups=_claim_values(value.get("groups", {}), '["groups"]'),
        realm_roles=_claim_values(value.get("realm_roles", {}), '["realm_roles"]'),
        client_roles={
            client: _claim_values(roles, f'["client_roles"][{json.dumps(client)}]')
            for client, roles in client_roles.items()
        },
    )


def role_mapping_setting(value: str) -> dict[str, Any]:
    """The setting's value as the settings module keeps it: the decoded JSON, checked (so that a mistake stops the
    start-up rather than the first sign-in)."""
    parse_role_mapping(value)
    return json.loads(value) if value.strip() else {}
