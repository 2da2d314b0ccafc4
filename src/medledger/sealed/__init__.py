"""Sealed documents: seal one, seal many (worker pool), open one."""

from medledger.sealed.many import *  # noqa: F403
