"""podnet.store"""
