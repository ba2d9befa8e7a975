"""podnet.nodeipam"""
