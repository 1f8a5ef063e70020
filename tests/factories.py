import factory

from accounts.models import User
from accounts.roles import TRADER, ensure_roles
from margin.models import CreditTier, MarginAccount
from margin.services.ledger import margin_account_open

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password(DEFAULT_PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        from django.contrib.auth.models import Group

        ensure_roles()
        self.groups.set([Group.objects.get(name=extracted or TRADER)])


class MarginAccountFactory(factory.django.DjangoModelFactory):
    """A margin account in a credit tier seeded by `reference_data_ensure` (standard unless
    `credit_tier__code` says otherwise)."""

    class Meta:
        model = MarginAccount

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Account {n}")
    credit_tier = factory.LazyFunction(lambda: CreditTier.objects.get(code="standard"))

    @classmethod
    def _create(cls, model_class, *, owner, name, credit_tier):
        """Through the service, which keeps the owner's accounts' `shares_owner`."""
        return margin_account_open(owner=owner, name=name, credit_tier=credit_tier.code)
