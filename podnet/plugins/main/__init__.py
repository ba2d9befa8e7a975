"""podnet.plugins.main"""
