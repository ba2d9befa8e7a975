"""podnet.plugins"""
