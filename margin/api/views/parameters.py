"""The risk parameters, public like the disclosure page: every version, the one in force
marked. They change only through a desk proposal (`/desk/parameter-changes/`)."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from margin.api.desk_serializers import ParameterVersionSerializer
from margin.selectors.parameters import disclosed_versions, version_terms
from margin.services.parameters import SCALAR_FIELDS

# The version's own columns; its child tables are grouped by symbol beside them.
SCALARS = ("number", "effective_at", "note", *SCALAR_FIELDS)


class Parameters(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Every risk parameter version, newest first (public)",
        responses=ParameterVersionSerializer(many=True),
    )
    def get(self, request):
        _, versions = disclosed_versions()
        rows = []
        for entry in versions:
            version = entry["version"]
            terms = version_terms(version)
            rows.append(
                {name: getattr(version, name) for name in SCALARS}
                | {
                    "in_force": entry["in_force"],
                    "scheduled": entry["scheduled"],
                    "brackets": terms["brackets"],
                    "haircuts": terms["haircuts"],
                    "credit_terms": terms["credit_terms"],
                }
            )
        return Response(ParameterVersionSerializer(rows, many=True).data)
