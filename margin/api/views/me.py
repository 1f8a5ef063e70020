from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken
from accounts.roles import APPROVE, PROPOSE, TRADE, USE_DESK


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    roles = serializers.ListField(child=serializers.CharField())
    can_trade = serializers.BooleanField()
    can_use_desk = serializers.BooleanField()
    can_propose = serializers.BooleanField()
    can_approve = serializers.BooleanField()
    authenticated_by = serializers.ChoiceField(choices=["session", "token"])
    token_prefix = serializers.CharField(allow_null=True, help_text="The token used, if any.")


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer, summary="The current user and what they may do")
    def get(self, request):
        user = request.user
        token = request.auth if isinstance(request.auth, ApiToken) else None
        return Response(
            MeSerializer(
                {
                    "id": user.pk,
                    "username": user.username,
                    "email": user.email,
                    "roles": user.role_names,
                    "can_trade": user.has_perm(TRADE),
                    "can_use_desk": user.has_perm(USE_DESK),
                    "can_propose": user.has_perm(PROPOSE),
                    "can_approve": user.has_perm(APPROVE),
                    "authenticated_by": "token" if token else "session",
                    "token_prefix": token.prefix if token else None,
                }
            ).data
        )
