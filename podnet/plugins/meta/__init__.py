"""podnet.plugins.meta"""
