"""Feast's own gRPC contract, feast.serving.ServingService, served by rxcast.

Feast 0.67's Python package ships the stubs but no server for it. Lookups go
through Feast's own `get_online_features`, so the answer is exactly what an
in-process Feast client gets, on the same store as rxcast's FeatureService.
"""

from __future__ import annotations

from feast.errors import FeastError, FeatureServiceNotFoundException, FeatureViewNotFoundException
from feast.protos.feast.serving import ServingService_pb2 as serving_pb2
from feast.protos.feast.serving import ServingService_pb2_grpc
from feast.version import get_version

from rxcast.feature.store import InventoryFeatureStore
from rxcast.runtime import auth
from rxcast.runtime.errors import InvalidArgument, NotFound

#: The role each RPC needs (rxcast.runtime.auth).
ROLES = auth.RoleTable(
    serving_pb2.DESCRIPTOR.services_by_name["ServingService"].full_name,
    {"GetFeastServingInfo": auth.READ, "GetOnlineFeatures": auth.READ},
)


class FeastServingServicer(ServingService_pb2_grpc.ServingServiceServicer):
    def __init__(self, store: InventoryFeatureStore):
        self.store = store

    def GetFeastServingInfo(self, request, context) -> serving_pb2.GetFeastServingInfoResponse:
        return serving_pb2.GetFeastServingInfoResponse(version=get_version())

    def GetOnlineFeatures(self, request, context) -> serving_pb2.GetOnlineFeaturesResponse:
        feast = self.store.feast
        try:
            if request.feature_service:
                features = feast.get_feature_service(request.feature_service, allow_cache=True)
            elif request.features.val:
                features = list(request.features.val)
            else:
                raise InvalidArgument("kind: give feature_service or features")
            if not request.entities:
                raise InvalidArgument("entities: give at least one join key column")
            return feast.get_online_features(
                features, entity_rows=dict(request.entities), full_feature_names=request.full_feature_names
            ).proto
        except (FeatureServiceNotFoundException, FeatureViewNotFoundException) as exc:
            raise NotFound(str(exc)) from None
        except (FeastError, ValueError, KeyError) as exc:
            raise InvalidArgument(f"{type(exc).__name__}: {exc}") from None
