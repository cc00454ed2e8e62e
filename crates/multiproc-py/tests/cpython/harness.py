"""CPython's own manager tests, run against multiproc's Manager.

The tests are read from the running interpreter's `test._test_multiprocessing` (nothing of
CPython's is copied here), exactly as CPython's own `test_multiprocessing_<method>` wrappers
install them, with three swaps: the manager mixin starts `multiproc.Manager()`,
`TestSyncManagerTypes` uses `multiproc.SyncManager`, and `_TestMyManager`'s manager is a
`multiproc.managers.BaseManager` with the same registrations. Divergences by design are expected
failures, each with its reason, so that a test that starts passing shows.

    python harness.py spawn        # or fork, forkserver; unittest's options follow

The start method travels in the environment (`MP_HARNESS_START`) as well, because spawned
children import this module again (as `__mp_main__`).
"""
import os
import sys
import unittest

if __name__ == "__main__" and len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    os.environ["MP_HARNESS_START"] = sys.argv.pop(1)
START = os.environ.get("MP_HARNESS_START", "spawn")

from test import _test_multiprocessing as cpython  # noqa: E402

import multiproc  # noqa: E402
from multiproc import managers  # noqa: E402


class ManagerMixin(cpython.ManagerMixin):
    """CPython's mixin, its manager ours."""

    @classmethod
    def setUpClass(cls):
        cpython.BaseMixin.setUpClass.__func__(cls)
        cls.manager = multiproc.Manager()


class MyManager(managers.BaseManager):
    """`_TestMyManager`'s manager, on ours, with CPython's registrations."""


MyManager.register("Foo", callable=cpython.FooBar)
MyManager.register("Bar", callable=cpython.FooBar, exposed=("f", "_h"))
IteratorProxy = type("IteratorProxy", (managers.BaseProxy,), {
    name: value for name, value in vars(cpython.IteratorProxy).items()
    if name not in ("__dict__", "__weakref__")
})
MyManager.register("baz", callable=cpython.baz, proxytype=IteratorProxy)

cpython.ManagerMixin = ManagerMixin
cpython.MyManager = MyManager


class TestSyncManagerTypes(cpython.TestSyncManagerTypes):
    manager_class = managers.SyncManager


# Divergences by design: (class, test) -> why.
DIVERGENCES = {
    ("TestSyncManagerTypes", "test_lock"):
        "a lock whose holder died is released for the next acquirer (owner_died set); CPython "
        "keeps it held by the dead process, and the test releases it from the parent",
    ("TestSyncManagerTypes", "test_pool"):
        "manager.Pool would run pickled functions in the manager: the server never unpickles",
    ("WithManagerTestBarrier", "test_action"):
        "Barrier(action=...) would pickle code into the manager: the server never unpickles",
}

# Tests that run CPython's own manager classes (QueueManager), not the manager under test: their
# passing would say nothing about ours.
NOT_OURS = {
    "WithManagerTestRemoteManager":
        "runs CPython's own BaseManager subclasses (QueueManager, serializer='xmlrpclib')",
    "WithManagerTestManagerRestart":
        "runs CPython's own BaseManager subclass and its server's internals (get_server())",
}

cpython.install_tests_in_module_dict(globals(), START, only_type="manager")
globals()["TestSyncManagerTypes"] = TestSyncManagerTypes



def _mark(names):
    """Marks the divergences as expected failures (their reason as their description) and skips
    the classes that are not ours (a function: a test class left in a module variable would
    be collected twice)."""
    for (cls_name, test_name), reason in DIVERGENCES.items():
        cls = names[cls_name]
        test = getattr(cls, test_name)
        setattr(cls, test_name, unittest.expectedFailure(test))
        getattr(cls, test_name).__doc__ = reason
    for cls_name, reason in NOT_OURS.items():
        names[cls_name] = unittest.skip(reason)(names[cls_name])


# Pool: every test of it runs pickled functions in the manager.
NOT_OURS["WithManagerTestPool"] = (
    "manager.Pool runs pickled functions in the manager: the server never unpickles")
_mark(globals())


if __name__ == "__main__":
    unittest.main()
