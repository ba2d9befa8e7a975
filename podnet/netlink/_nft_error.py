"""The error of nftables batches, apart from podnet.netlink._nft: a plugin names it in its
`except` clauses on every pod, and only a pod with masquerade needs libnftables' binding
(ctypes, threads) loaded."""


class NftError(OSError):
    """nft refused a batch or failed to run; `errno` when its message names one."""
