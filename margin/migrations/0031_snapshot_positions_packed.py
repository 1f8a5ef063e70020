"""MarginSnapshot.positions: from a JSON list of [position_id, maintenance_margin, bracket,
liquidation_price, bankruptcy_price] rows to packed big-endian records (int8, float8, int8,
float8, float8; nan for null), MarginSnapshot.POSITION_RECORD. The rows already written are
packed in place; going back leaves the snapshots without their per-position figures."""

import json
import math
import struct

from django.db import migrations, models

RECORD = struct.Struct(">qdqdd")

# int8send/float8send are the records' byte layout; a snapshot without positions gets b"".
PACK_POSTGRESQL = """
UPDATE margin_marginsnapshot s SET packed = coalesce((
    SELECT string_agg(
        int8send((p ->> 0)::int8) || float8send((p ->> 1)::float8) || int8send((p ->> 2)::int8)
        || float8send(coalesce((p ->> 3)::float8, 'NaN'))
        || float8send(coalesce((p ->> 4)::float8, 'NaN')),
        ''::bytea ORDER BY n)
    FROM jsonb_array_elements(s.positions) WITH ORDINALITY AS e(p, n)
), ''::bytea)
WHERE jsonb_typeof(s.positions) = 'array' AND jsonb_array_length(s.positions) > 0
"""


def _none_as_nan(value) -> float:
    return math.nan if value is None else value


def pack(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PACK_POSTGRESQL)
        return
    snapshots = apps.get_model("margin", "MarginSnapshot")
    packed = []
    for pk, positions in snapshots.objects.order_by().values_list("pk", "positions").iterator():
        rows = json.loads(positions) if isinstance(positions, str) else positions
        packed.append(
            snapshots(
                pk=pk,
                packed=b"".join(
                    RECORD.pack(p, mm, bracket, _none_as_nan(liq), _none_as_nan(bkr))
                    for p, mm, bracket, liq, bkr in rows
                ),
            )
        )
    snapshots.objects.bulk_update(packed, ["packed"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("margin", "0030_vol_guard"),
    ]

    operations = [
        migrations.AddField(
            model_name="marginsnapshot",
            name="packed",
            field=models.BinaryField(db_default=b""),
        ),
        migrations.RunPython(pack, migrations.RunPython.noop),
        migrations.RemoveField(model_name="marginsnapshot", name="positions"),
        migrations.RenameField(model_name="marginsnapshot", old_name="packed", new_name="positions"),
    ]
