"""Notifications to traders: in the app (Notification rows) and by e-mail."""

from celery import signature
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from margin.models import MarginAccount, Notification

# The task that e-mails a notification, queued by name: `margin.tasks` imports the services,
# never the other way round.
NOTIFICATION_EMAIL_TASK = "margin.notification_email"


def notification_create(*, account: MarginAccount, kind: str, text: str) -> Notification:
    return Notification.objects.create(
        user_id=account.owner_id, account=account, kind=kind, text=text
    )


def notification_send(*, account: MarginAccount, kind: str, text: str) -> Notification:
    """A notification in the app now, and its e-mail once the caller's transaction commits
    (a rolled-back action sends nothing)."""
    notification = notification_create(account=account, kind=kind, text=text)
    transaction.on_commit(
        lambda: signature(NOTIFICATION_EMAIL_TASK, args=(notification.pk,)).delay()
    )
    return notification


def notifications_acknowledge(*, user, account: MarginAccount) -> int:
    """The trader has read every notice on this account: they leave its page."""
    return notifications_mark_read(
        user=user, ids=Notification.objects.filter(user=user, account=account).values("pk")
    )


@transaction.atomic
def notification_email_send(*, notification_id: int) -> bool:
    """E-mail a notification to its user once (a redelivered task finds it sent)."""
    # OF self: not the joined user row, which every write of the user's names (an idempotency
    # record, a journal) checks at its commit, while the mail goes out.
    notification = (
        Notification.objects.select_for_update(of=("self",))
        .select_related("user")
        .get(pk=notification_id)
    )
    if notification.emailed_at is not None or not notification.user.email:
        return False
    send_mail(
        subject=f"[Risk] {notification.get_kind_display()}",
        message=notification.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[notification.user.email],
    )
    notification.emailed_at = timezone.now()
    notification.save(update_fields=["emailed_at"])
    return True


def notifications_mark_read(*, user, ids=None) -> int:
    """Mark the user's unread notifications (or those of `ids`) read."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())
