"""The TrainerService servicer: protos in, domain calls, protos out."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from rxcast.runtime import auth, timestamps
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument
from rxcast.runtime.validation import quote
from rxcast.trainer import convert
from rxcast.trainer.jobs import JobManager
from rxcast.trainer.params import TrainingParams, validate_with_lightgbm
from rxcast.trainer.pipeline import TrainingPipeline
from rxcast.trainer.promotion import AliasManager
from rxcast.trainer.registry import ModelRegistry, alias_name
from rxcast.trainer.runner import PolicyRunner
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DEFAULT_CHUNK_BYTES = 1 << 20
MAX_CHUNK_BYTES = 4 << 20


#: The role each RPC needs (rxcast.runtime.auth).
ROLES = auth.RoleTable(
    trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name,
    {
        "StartTraining": auth.OPERATE,
        "WatchTrainingJob": auth.READ,
        "GetTrainingJob": auth.READ,
        "ListModelVersions": auth.READ,
        "GetModelVersion": auth.READ,
        "GetLatestVersion": auth.READ,
        "DownloadModel": auth.READ,
        "SetAlias": auth.OPERATE,
        "Rollback": auth.OPERATE,
        "ListAliasHistory": auth.READ,
        "SubmitTrigger": auth.OPERATE,
        "SetTrainingPolicy": auth.OPERATE,
        "ListTrainingPolicies": auth.READ,
    },
)


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(
        self,
        registry: ModelRegistry,
        aliases: AliasManager,
        pipeline: TrainingPipeline,
        jobs: JobManager,
        defaults: TrainingParams,
        policies: PolicyRunner,
    ):
        self.registry = registry
        self.aliases = aliases
        self.pipeline = pipeline
        self.jobs = jobs
        self.defaults = defaults
        self.policies = policies

    # -- jobs -----------------------------------------------------------------

    def StartTraining(self, request, context):
        spec, given = convert.job_spec(request, self.defaults)
        self.pipeline.check(spec)
        validate_with_lightgbm(spec.params)
        job = self.jobs.submit(spec, given)
        return trainer_pb2.StartTrainingResponse(job=convert.job_proto(job))

    def WatchTrainingJob(self, request, context) -> Iterator[trainer_pb2.WatchTrainingJobResponse]:
        job_id = _job_id(request.job_id)
        for job in self.jobs.watch(job_id, context.is_active):
            yield trainer_pb2.WatchTrainingJobResponse(job=convert.job_proto(job))

    def GetTrainingJob(self, request, context):
        job = self.jobs.get(_job_id(request.job_id))
        return trainer_pb2.GetTrainingJobResponse(job=convert.job_proto(job))

    # -- versions ---------------------------------------------------------------

    def ListModelVersions(self, request, context):
        size = request.page_size or DEFAULT_PAGE_SIZE
        if not 0 < size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size: must be in 0..{MAX_PAGE_SIZE}, got {request.page_size}")
        below = None
        if request.page_token:
            if not request.page_token.isdigit():
                raise InvalidArgument(f"page_token: not a token this service issued: {quote(request.page_token)}")
            below = int(request.page_token)
        newest_first = self.registry.versions()[::-1]
        if below is not None:
            newest_first = [v for v in newest_first if v < below]
        page = newest_first[:size]
        aliases = self.registry.aliases_by_version()
        versions = [
            convert.version_proto(info, aliases.get(info.version, []), False) for info in self.registry.readable(page)
        ]
        token = str(page[-1]) if len(newest_first) > size else ""
        return trainer_pb2.ListModelVersionsResponse(versions=versions, next_page_token=token)

    def GetModelVersion(self, request, context):
        info = self.registry.resolve(request.version, request.alias)
        proto = convert.version_proto(info, self.registry.aliases_of(info.version), request.include_manifest)
        return trainer_pb2.GetModelVersionResponse(version=proto)

    def GetLatestVersion(self, request, context):
        alias = alias_name(request.alias)
        state = self.registry.alias(alias)
        if state is None or state.version == 0:
            return trainer_pb2.GetLatestVersionResponse(alias=alias)
        return trainer_pb2.GetLatestVersionResponse(
            alias=alias,
            version=state.version,
            sha256=self.registry.get(state.version).manifest.sha256,
            updated_time=convert.timestamp(state.updated_time),
        )

    def DownloadModel(self, request, context) -> Iterator[trainer_pb2.DownloadModelResponse]:
        chunk = request.chunk_bytes or DEFAULT_CHUNK_BYTES
        if not 0 < chunk <= MAX_CHUNK_BYTES:
            raise InvalidArgument(f"chunk_bytes: must be in 0..{MAX_CHUNK_BYTES}, got {request.chunk_bytes}")
        info = self.registry.resolve(request.version, request.alias)
        header = trainer_pb2.ModelFileHeader(
            version=info.version,
            sha256=info.manifest.sha256,
            size_bytes=info.size_bytes,
            manifest_json=info.manifest.to_json(),
        )
        yield trainer_pb2.DownloadModelResponse(header=header)
        digest = hashlib.sha256()
        with open(info.model_path, "rb") as handle:
            while block := handle.read(chunk):
                if not context.is_active():
                    return
                digest.update(block)
                yield trainer_pb2.DownloadModelResponse(chunk=block)
        if digest.hexdigest() != info.manifest.sha256:
            raise FailedPrecondition(f"stored model file of v{info.version} does not match its sha256; do not use it")

    # -- aliases ----------------------------------------------------------------

    def SetAlias(self, request, context):
        if request.version <= 0:
            raise InvalidArgument(f"version: must be > 0, got {request.version}")
        change = self.aliases.set_alias(request.alias, request.version, request.force, request.reason)
        return trainer_pb2.SetAliasResponse(change=convert.change_proto(change))

    def Rollback(self, request, context):
        if request.to_version < 0:
            raise InvalidArgument(f"to_version: must be >= 0, got {request.to_version}")
        change = self.aliases.rollback(request.alias, request.to_version, request.reason)
        return trainer_pb2.RollbackResponse(change=convert.change_proto(change))

    def ListAliasHistory(self, request, context):
        changes = self.registry.history(request.alias)
        return trainer_pb2.ListAliasHistoryResponse(changes=[convert.change_proto(c) for c in changes])

    # -- policies -----------------------------------------------------------------

    def SubmitTrigger(self, request, context):
        changed_ms = timestamps.optional_ms(request, "changed_at") or 0
        trigger, new = self.policies.submit_trigger(
            request.trigger_id, request.kind, changed_ms, request.reason, list(request.aliases)
        )
        return trainer_pb2.SubmitTriggerResponse(
            accepted=new, already_known=not new, trigger=convert.trigger_proto(trigger)
        )

    def SetTrainingPolicy(self, request, context):
        if not request.HasField("policy"):
            raise InvalidArgument("policy: required")
        policy = self.policies.set_policy(convert.policy(request.policy))
        return trainer_pb2.SetTrainingPolicyResponse(policy=convert.policy_proto(policy))

    def ListTrainingPolicies(self, request, context):
        return trainer_pb2.ListTrainingPoliciesResponse(
            policies=[convert.status_proto(s) for s in self.policies.statuses()]
        )


def _job_id(value: str) -> str:
    if not value:
        raise InvalidArgument("job_id: required")
    return value
