"""podnet.netlink"""
