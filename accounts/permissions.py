"""Each user's permission set, kept in the process's memory between requests.

Every request of a logged-in user asks for permissions (the second-factor check, then the view's
role check); Django's ModelBackend reads them with two queries each time. Here the set is cached
under the user's `permissions_version`, which moves in the same transaction as any change of
their groups, their own permissions, their groups' permissions, or a group or permission
deleted (the signals below). The user row, read on every request anyway, carries the version,
so the next request after a change misses the cache and reads the new set in every process:
the process's own memory (the `local` cache) does, with no round trip to a shared cache. Changes
made by raw SQL bypass the signals.
"""

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.core.cache import caches
from django.db.models import F, QuerySet
from django.db.models.signals import m2m_changed, pre_delete
from django.dispatch import receiver

from accounts.models import User

# Entries of older versions are never read again; this bounds how long they stay.
CACHE_SECONDS = 3600


def _cache_key(user: User) -> str:
    # date_joined tells a user apart from an earlier one that had the same id (a restored or
    # recreated database sharing the cache).
    joined = user.date_joined.timestamp()
    return f"permissions:{user.pk}:{joined}:{user.permissions_version}:{int(user.is_superuser)}"


class CachedPermissionsBackend(ModelBackend):
    """Django's ModelBackend, its `get_all_permissions` cached per user and version."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            key = _cache_key(user_obj)
            cached = caches["local"].get(key)
            if cached is None:
                cached = super().get_all_permissions(user_obj)
                caches["local"].set(key, cached, CACHE_SECONDS)
            user_obj._perm_cache = cached
        return user_obj._perm_cache


def _changed(users: QuerySet) -> None:
    users.update(permissions_version=F("permissions_version") + 1)


@receiver(m2m_changed, sender=User.groups.through)
@receiver(m2m_changed, sender=User.user_permissions.through)
def _membership_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A user's groups or own permissions changed, from either side of the relation."""
    if not reverse:  # `instance` is the user
        if action in ("post_add", "post_remove", "post_clear"):
            _changed(User.objects.filter(pk=instance.pk))
    elif action == "pre_clear":  # a group or permission about to lose every user
        _changed(instance.user_set.all())
    elif action in ("post_add", "post_remove"):
        _changed(User.objects.filter(pk__in=pk_set))


@receiver(m2m_changed, sender=Group.permissions.through)
def _group_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("pre_clear", "post_add", "post_remove"):
        return
    if not reverse:  # `instance` is the group
        _changed(instance.user_set.all())
    elif action == "pre_clear":  # a permission about to leave every group
        _changed(User.objects.filter(groups__permissions=instance))
    else:
        _changed(User.objects.filter(groups__in=pk_set))


@receiver(pre_delete, sender=Group)
def _group_deleted(sender, instance, **kwargs) -> None:
    _changed(instance.user_set.all())


@receiver(pre_delete, sender=Permission)
def _permission_deleted(sender, instance, **kwargs) -> None:
    _changed(User.objects.filter(user_permissions=instance))
    _changed(User.objects.filter(groups__permissions=instance))
