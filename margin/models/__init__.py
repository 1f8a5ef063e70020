from margin.models.ops import Heartbeat

__all__ = ["Heartbeat"]
