"""podnet.plugins.ipam"""
