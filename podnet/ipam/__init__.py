"""podnet.ipam"""
