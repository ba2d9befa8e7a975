"""podnet.runtime"""
