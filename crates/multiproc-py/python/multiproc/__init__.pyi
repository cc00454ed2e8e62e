# Type stubs of multiproc: multiprocessing.Manager's drop-in.
from typing import Literal

from .managers import (
    ArrayProxy as ArrayProxy, AutoProxy as AutoProxy, BarrierProxy as BarrierProxy,
    BaseManager as BaseManager, BaseProxy as BaseProxy,
    BoundedSemaphoreProxy as BoundedSemaphoreProxy, ConditionProxy as ConditionProxy,
    DictProxy as DictProxy, EventProxy as EventProxy, JoinableQueueProxy as JoinableQueueProxy,
    ListProxy as ListProxy, LockProxy as LockProxy, ManagerGone as ManagerGone,
    NamespaceProxy as NamespaceProxy, ObjectProxy as ObjectProxy, Pickled as Pickled,
    QueueProxy as QueueProxy, RemoteError as RemoteError, RLockProxy as RLockProxy,
    SemaphoreProxy as SemaphoreProxy, SyncManager as SyncManager, ValueProxy as ValueProxy,
)

def Manager(*, codec: Literal["pickle"] | None = ...) -> SyncManager: ...
def connect(address: str, authkey: bytes, *,
            codec: Literal["pickle"] | None = ...) -> SyncManager: ...
